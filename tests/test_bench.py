"""Benchmarks never rot: each one runs at its --smoke size and prints its figures (never judged here:
speed goals are ratios the benches print, not test assertions)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def smoke(name: str, *args: str) -> str:
    r = subprocess.run([sys.executable, str(BENCH / name), "--smoke", *args], capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


def test_every_bench_has_a_smoke_test():
    here = Path(__file__).read_text()
    assert all(f'"{p.name}"' in here for p in BENCH.glob("*.py") if not p.name.startswith("_"))     # (_x.py: helpers)


def test_index_ipk():
    assert "bindistro feed index, full:" in smoke("index_ipk.py")


def test_stage_realsize():
    assert "stage of a real-size feed: " in smoke("stage_realsize.py")


@pytest.mark.slow         # rpmbuild of 22 packages
def test_publish_rpm():
    assert "ratio, the release's index step:" in smoke("publish_rpm.py")


@pytest.mark.slow
def test_release_growth(tmp_path):
    out = smoke("release_growth.py")
    assert "median of the last 3" in out, out


@pytest.mark.slow
def test_upgrade_matrix(tmp_path):
    out = smoke("upgrade_matrix.py", str(tmp_path / "w"))
    assert "upgrade matrix:" in out and "wall time" in out, out


@pytest.mark.slow
def test_scale(tmp_path):
    """Two releases, in two runs: the second goes on in the first's --keep directory."""
    smoke("scale.py", "--releases", "1", "--keep", str(tmp_path))
    out = smoke("scale.py", "--keep", str(tmp_path))
    assert "scale: 300 packages x ipk x 2 machines, 2 releases" in out and "peak RSS" in out, out
    rows = [json.loads(x) for x in (tmp_path / "rows.jsonl").read_text().splitlines()]
    assert [r.get("number") for r in rows] == [None, 1, 2], rows
    # the gpg-agents the steps started are counted in them and stopped with them (none runs on)
    assert all("daemons_cpu_s" in r["release"] for r in rows[1:]), rows
    from conftest import gpg_agents
    home = (tmp_path / "proj" / "state" / "gnupg").resolve()
    running = [pid for pid, named in gpg_agents().items() if Path(os.path.realpath(named)) == home]
    assert not running, running


@pytest.mark.slow         # a local S3 server, two releases into it
def test_s3_publish():
    out = smoke("s3_publish.py")
    assert "s3 publish: 40 packages" in out and "a second upload sent 0" in out, out


@pytest.mark.slow         # a 300-package sample released three times, a browser searching it
def test_site():
    out = smoke("site.py")
    # the byte budgets hold on any machine; the browser's milliseconds are printed, never judged here
    assert "first page" in out and "sizes within budget: True" in out, out
