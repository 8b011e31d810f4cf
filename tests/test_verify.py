"""verify gates I: a clean candidate passes; each injected defect is caught by the right gate."""
import json
import shutil
import subprocess
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest

from conftest import Cli, need_realdata

DEFECTS = [
    ("pr-backwards", "buildhistory", "bash", "version went backwards: 5.2.21-r1.0 -> 5.2.21-r0.0"),
    ("same-version-new-content", "buildhistory", "acl", "other content than the released package"),
    ("removed-package", "buildhistory", "less", "dropped and nothing provides or replaces it"),
    ("broken-dependency", "closure", "htop", "nothing provides libdoesnotexist1"),
    ("debug-tweaks", "config", "conf/local.conf", "debug-tweaks"),
    ("log-error", "logs", "tmp/log/cooker/qemux86-64/", "failed with exit code"),
    ("unsolvable-upgrade", "upgrade", "1.1->candidate", "conflicts with busybox"),
]


@pytest.fixture(scope="module")
def ipk_project(tmp_path_factory):
    """Release 1 of the sample (ipk only) published; builds of release 2 made on demand."""
    cli = Cli()
    d = tmp_path_factory.mktemp("verify")
    cli("sample-build", d / "b1", "--release", 1, "--formats", "ipk")
    cli("-C", d / "p", "init", "--no-boot")
    c = cli.json("-C", d / "p", "stage", d / "b1")["candidate"]
    cli("-C", d / "p", "release", c)
    return d


def stage_build(cli, proj, out: Path, *inject):
    cli("-C", proj / "p", "restore", out)      # as every next build starts
    args = ["sample-build", out, "--release", 2, "--formats", "ipk"]
    for i in inject:
        args += ["--inject", i]
    cli(*args)
    return cli.json("-C", proj / "p", "stage", out)["candidate"]


def test_clean_candidates_pass(demo, cli):
    # the reports `demo` stored when it verified its candidates (every gate, real PMs too; the boots
    # are test_boot.py's and, after upgrades, test_ipk_upgrade.py's)
    for cand in (1, 2, 3):
        rep = cli.json("-C", demo, "verify", cand, "--last")
        assert rep["summary"]["error"] == 0, [f for f in rep["findings"] if f["severity"] == "error"][:5]
        assert {"logs", "config", "buildhistory", "closure", "upgrade", "prdb", "boot", "pm-upgrade",
                "abi", "image-security"} <= set(rep["gates"])
        assert any(f["rule"] == "boot.disabled" for f in rep["findings"])
        assert all(f.get("rule") for f in rep["findings"])
    # release 3 upgrade paths: first, last and n-2 (= first here), for every format and machine
    paths = {(f["details"]["format"], f["details"]["machine"], f["details"]["path"])
             for f in rep["findings"] if f["gate"] == "upgrade" and f["severity"] == "info" and f["details"]}
    assert {("rpm", "qemux86-64", "first"), ("deb", "qemuarm64", "last"), ("ipk", "qemux86-64", "last")} <= paths
    # the removal replaced through Provides/Replaces (ifupdown -> iproute2) is not an error
    assert any(f["subject"] == "ifupdown" and "provided or replaced" in f["message"] for f in rep["findings"])


@pytest.mark.parametrize("defect,gate,subject,words", DEFECTS)
def test_injected_defect_is_caught(ipk_project, cli, defect, gate, subject, words):
    cand = stage_build(cli, ipk_project, ipk_project / f"d-{defect}", defect)
    r = cli("-C", ipk_project / "p", "verify", cand, "--json", ok=False)
    assert r.exit_code == 1
    errors = [f for f in json.loads(r.stdout)["findings"] if f["severity"] == "error"]
    assert any(f["gate"] == gate and f["subject"].startswith(subject) and words in f["message"] for f in errors), errors
    # and nothing else fails: each defect is caught by its own gate
    assert {f["gate"] for f in errors} == {gate}


def test_release_refuses_errors_until_waived(ipk_project, cli, tmp_path):
    cand = stage_build(cli, ipk_project, tmp_path / "b", "log-error")
    pub = ipk_project / "p" / "publish"
    before = sorted(p for p in pub.rglob("*"))
    r = cli("-C", ipk_project / "p", "release", cand, ok=False)
    assert r.exit_code == 1 and "[logs " in r.stderr and "bindistro waive" in r.stderr
    assert sorted(p for p in pub.rglob("*")) == before
    rep = cli.json("-C", ipk_project / "p", "verify", cand, "--last", ok=False)      # the report release made
    for f in rep["findings"]:
        if f["severity"] == "error":
            cli("-C", ipk_project / "p", "waive", cand, f["id"], "--reason", "known flaky task, rebuilt by hand")
    assert cli.json("-C", ipk_project / "p", "verify", cand)["summary"]["waived"] >= 1
    rel = cli.json("-C", ipk_project / "p", "release", cand)
    manifest = json.loads((pub / "releases" / rel["release"] / "manifest.json").read_text())
    assert manifest["waivers"] and all(w["reason"] == "known flaky task, rebuilt by hand" for w in manifest["waivers"])
    assert cli("-C", ipk_project / "p", "waive", cand, "nope", "--reason", "x", ok=False).exit_code == 1


def test_reports_html_and_junit(ipk_project, cli, tmp_path):
    cand = stage_build(cli, ipk_project, tmp_path / "b", "broken-dependency")
    html, junit = tmp_path / "r.html", tmp_path / "r.xml"
    cli("-C", ipk_project / "p", "verify", cand, "--html", html, "--junit", junit, ok=False)
    root = ET.parse(junit).getroot()
    closure = next(s for s in root if s.get("name") == "closure")
    assert int(closure.get("failures")) >= 1 and closure.find("testcase/failure") is not None
    text = html.read_text()
    assert "<!DOCTYPE html>" in text and "libdoesnotexist1" in text and "<script" not in text
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.fail("chromium missing: scripts/setup.sh installs it")
    png = tmp_path / "shot.png"
    r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'prof'}",
                        "--window-size=1200,900", f"--screenshot={png}", f"file://{html}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    assert "Uncaught" not in r.stderr


def test_notes(demo, cli):
    r = cli("-C", demo, "notes", 2)
    text = r.stdout
    assert text.startswith("# sample-distro: release notes for candidate 2")
    assert "## Added" in text and "`util-linux-fdisk`" in text and "`jq`" in text
    assert "## Upgraded" in text and "`busybox`" in text
    assert "## Images" in text
    data = cli.json("-C", demo, "notes", 3)
    assert data["against"] == "1.2" and {"name": "ifupdown", "arch": "core2-64", "version": "0.8.41-r0.0"} in data["removed"]
    assert any(x["name"] == "htop" and x["new"].startswith("3.3.1") for x in data["upgraded"])


def test_kas_file_of_real_project_raises_debug_tweaks(cli, tmp_path, sample_build):
    kas = need_realdata("layers/meta-pcengines/kas.yml")
    proj = tmp_path / "p"
    cli("-C", proj, "init", "--no-boot")
    cand = cli.json("-C", proj, "stage", sample_build(1), "--kas", kas)["candidate"]
    rep = cli.json("-C", proj, "verify", cand, "--gate", "config", ok=False)
    errs = [f for f in rep["findings"] if f["severity"] == "error"]
    assert any(f["subject"] == "kas/kas.yml" and "debug-tweaks" in f["message"] for f in errs), errs
    # its kas.lock.yml pins every remote repository
    assert not any("not pinned" in f["message"] for f in errs)


@pytest.mark.parametrize("pairs", [pytest.param(3, id="first-3"), pytest.param(25, id="all", marks=pytest.mark.slow)])
def test_history_diff_on_real_buildhistory(cli, tmp_path, pairs):
    bundle = need_realdata("buildhistory/poky-2.0-qemux86-64-rpm.bundle")
    repo = tmp_path / "bh"
    subprocess.run(["git", "clone", "-q", str(bundle), str(repo)], check=True, capture_output=True)
    revs = subprocess.run(["git", "-C", str(repo), "rev-list", "--reverse", "origin/main"], capture_output=True,
                          text=True, check=True).stdout.split()
    assert len(revs) == 26
    total = 0
    for a, b in list(zip(revs, revs[1:]))[:pairs]:
        r = cli("history-diff", a, b, "-C", repo, "--json", ok=None)
        assert r.exit_code in (0, 1), r.stderr
        data = json.loads(r.stdout)
        assert all(set(f) >= {"id", "severity", "gate", "subject", "message"} for f in data["findings"])
        total += len(data["findings"])
    assert total > 0


def test_history_diff_reports_version_regression(cli, ipk_project):
    repo = ipk_project / "d-pr-backwards" / "buildhistory"
    if not repo.exists():
        stage_build(cli, ipk_project, ipk_project / "d-pr-backwards", "pr-backwards")
    r = cli("history-diff", "HEAD~1", "HEAD", "-C", repo, "--json", ok=False)
    assert r.exit_code == 1
    f = next(f for f in json.loads(r.stdout)["findings"] if f["severity"] == "error" and f["subject"] == "bash")
    assert f["gate"] == "buildhistory" and "5.2.21-r1.0" in f["message"] and "5.2.21-r0.0" in f["message"]
    assert cli("history-diff", "nope", "HEAD", "-C", repo, ok=False).exit_code == 1
