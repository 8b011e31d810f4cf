"""The world-sized sample (`sample-build --packages N`): real packages from the real tools, about N
names per machine's feeds, a closed dependency graph, ~5 % churn per release, deterministic."""
from __future__ import annotations

import os
import subprocess
from collections import Counter

import pytest

from bindistro_sample import world
from bindistro_sample.build import MACHINES
from bindistro_sample.ipkbuild import ar_archive
from bindistro_sample.rpmbuild import BATCH_MAIN


def test_ar_archive_is_what_gnu_ar_writes(tmp_path):
    members = [("debian-binary", b"2.0\n"), ("control.tar.gz", os.urandom(101)), ("data.tar.zst", os.urandom(50))]
    for name, data in members:
        (tmp_path / name).write_bytes(data)
    subprocess.run(["ar", "rcD", "ref.ipk", *(n for n, _ in members)], cwd=tmp_path, check=True)
    assert ar_archive(members) == (tmp_path / "ref.ipk").read_bytes()


def test_world_plan_is_sized_deterministic_and_churns():
    r1 = world.at_release(1, 1, 3000)
    assert [w.recipe.version for w in r1] == [w.recipe.version for w in world.at_release(1, 1, 3000)]
    pkgs = world.all_packages(r1, MACHINES)
    for m in MACHINES:
        names = {p.name for p in pkgs if p.arch in m.archs}
        assert 3000 - world.BASE_NAMES - 50 <= len(names) <= 3000 - world.BASE_NAMES + 50, len(names)
    assert max(Counter((p.name, p.arch) for p in pkgs).values()) == 1
    sizes = sorted(p.size for p in pkgs)
    assert sizes[0] < 1000 and sizes[len(sizes) // 2] < 50_000 and sizes[-1] > 1_000_000    # a long tail
    r2 = world.at_release(1, 2, 3000)
    changed = sum(a.recipe.version != b.recipe.version for a, b in zip(r1, r2))
    assert 0.03 * len(r1) <= changed <= 0.06 * len(r1), changed
    # the world does not depend on the release: each recipe keeps its packages from release to release
    plan = {w.recipe.pn: w.npkgs for w in r1}
    assert all(plan[w.recipe.pn] == w.npkgs for w in world.at_release(1, 5, 3000))


def test_next_series_world_sorts_above_every_release_of_the_first():
    """`demo --packages`: the next branch's first build must upgrade devices of the first series'
    latest release, however many it had (the upgrade gate refuses a newer build in an older series)."""
    from bb.utils import vercmp_string
    nxt = {w.recipe.pn: w.recipe.version for w in world.at_release(1, 1, 3000, "scarthgap")}
    for k in (3, 8):
        old = {w.recipe.pn: w.recipe.version for w in world.at_release(1, k, 3000)}
        assert old.keys() == nxt.keys()
        assert all(vercmp_string(nxt[pn], v) > 0 for pn, v in old.items())
    r2 = world.at_release(1, 2, 3000, "scarthgap")
    assert 0.03 * len(r2) <= sum(nxt[w.recipe.pn] != w.recipe.version for w in r2) <= 0.06 * len(r2)


@pytest.mark.slow
def test_world_sample_builds_real_closed_feeds(cli, tmp_path):
    out = tmp_path / "b"
    r = cli.json("sample-build", out, "--release", 1, "--packages", 500)
    assert r["world_packages"] > 0 and r["packages"] == r["world_packages"] + 332
    deploy = out / "tmp" / "deploy"
    # rpms built in batches carry each recipe's own version, release and licence
    rpms = sorted((deploy / "rpm" / "core2_64").glob("*-world-*.rpm"))
    q = subprocess.run(["rpm", "-qp", "--qf", "%{NAME} %{VERSION}-%{RELEASE} %{LICENSE}\n", *map(str, rpms[:20])],
                       capture_output=True, text=True, check=True, env=dict(os.environ, HOME=str(tmp_path)))
    for line, f in zip(q.stdout.splitlines(), rpms):
        name, vr, _lic = line.split(" ", 2)
        assert f.name == f"{name}-{vr}.core2_64.rpm"
    debs = sorted((deploy / "deb" / "core2-64").glob("*-world*.deb"))
    assert subprocess.run(["dpkg-deb", "--info", str(debs[0])], capture_output=True).returncode == 0
    # every package installs from its machine's feeds (the closure gate, libsolv)
    proj = tmp_path / "p"
    cli("-C", proj, "init", "--no-boot")
    spec = proj / "bindistro.yml"
    spec.write_text(spec.read_text().replace("- ipk\n", "- ipk\n- rpm\n- deb\n"))
    cand = cli.json("-C", proj, "stage", out)["candidate"]
    rep = cli.json("-C", proj, "verify", cand, "--gate", "closure")
    assert rep["summary"]["error"] == 0, [f["message"] for f in rep["findings"] if f["severity"] == "error"][:3]
    # every copyleft world recipe has its archiver output; only the batches' source rpm name does not,
    # which the demo's spec excepts
    rep = cli.json("-C", proj, "verify", cand, "--gate", "sources", ok=None)
    assert {f["subject"] for f in rep["findings"] if f["severity"] == "error"} == {BATCH_MAIN}
    spec.write_text(spec.read_text().replace("  exceptions: {}\n", f"  exceptions:\n    {BATCH_MAIN}: batches\n"))
    rep = cli.json("-C", proj, "verify", cand, "--gate", "sources")
    assert rep["summary"]["error"] == 0, [f["message"] for f in rep["findings"] if f["severity"] == "error"][:3]
    # release 2: unchanged package files stay (same inode), so staging it reads only what changed
    inode = {p.name: p.stat().st_ino for p in (deploy / "ipk" / "core2-64").glob("*.ipk")}
    r2 = cli.json("sample-build", out, "--release", 2, "--packages", 500)
    kept = [p for p in (deploy / "ipk" / "core2-64").glob("*.ipk") if inode.get(p.name) == p.stat().st_ino]
    assert len(kept) > 0.8 * len(inode)
    st = cli.json("-C", proj, "stage", out)
    assert st["hash_cache_hits"] > 0.75 * st["artifacts"] and r2["release"] == 2      # ~10 % of the base changes
