"""The prototype's format for real: an ipk-only project (`bindistro init` defaults) whose verify
upgrades every path with the real opkg on qemux86-64 and qemuarm64 (scripts through qemu-user),
boots each upgraded system, and compares its boot checks and ptests with the fresh image and the
last release (britney's PASS / FAIL / ALWAYSFAIL / REGRESSION)."""
from __future__ import annotations

import json

import pytest

from bindistro import upgrade_boot
from bindistro.boot import BootResult, CheckResult
from bindistro_sample.build import generate
from bindistro.spec import Boot, BootCheck
from conftest import Cli, carry_pr

pytestmark = pytest.mark.slow

MACHINES = ("qemux86-64", "qemuarm64")
DEFECTS = [
    # defect, what the error names
    ("postinst-fails-on-upgrade", "bindistro-hello"),
    ("conffile-not-noreplace", "/etc/login.defs"),
    ("file-conflict", "/usr/bin/dbus"),
    ("breaks-after-upgrade", "settings-migrated"),
]


@pytest.fixture(scope="module")
def ipk_project(tmp_path_factory, sample_build):
    """`bindistro init` as a new user runs it (ipk only, boot gate on); releases 1 and 2 published.
    Release 2's fresh-image boots are the baseline the boots after upgrade are compared with (the
    last release's boot gate findings); 1.1 needs none. (`release` running every gate itself when no
    report was made: test_verify.py.)"""
    cli = Cli()
    d = tmp_path_factory.mktemp("ipk-upgrade")
    cli("-C", d / "p", "init")
    for n, gate in ((1, "closure"), (2, "boot")):
        cand = cli.json("-C", d / "p", "stage", sample_build(n))["candidate"]
        cli("-C", d / "p", "verify", cand, "--gate", gate)
        cli("-C", d / "p", "release", cand)
    return d


def candidate3(cli, proj, sample_build, inject: str | None):
    out = carry_pr(sample_build(2), proj / f"b3-{inject or 'clean'}")
    generate(out, 3, 1, inject=[inject] if inject else [], formats=("ipk",))
    return cli.json("-C", proj / "p", "stage", out)["candidate"]


def verify(cli, proj, cand, gates=()):
    r = cli("-C", proj / "p", "verify", cand, *[a for g in gates for a in ("--gate", g)], "--json", ok=None)
    return r.exit_code, json.loads(r.stdout)["findings"]


def test_clean_release_3_passes_every_path_and_boots(ipk_project, cli, sample_build):
    code, findings = verify(cli, ipk_project, candidate3(cli, ipk_project, sample_build, None))
    assert code == 0, [f["subject"] + ": " + f["message"] for f in findings if f["severity"] == "error"]
    upgraded = {(f["details"]["machine"], f["details"]["path"]) for f in findings if "upgrade passed" in f["message"]}
    booted = {(f["details"]["machine"], f["details"]["path"]) for f in findings
              if f["gate"] == "pm-upgrade" and f["details"].get("verdict") == "PASS"}
    want = {(m, p) for m in MACHINES for p in ("first", "last")}
    assert want <= upgraded and want <= booted
    # and back: the cumulative feed lets a device downgrade what the upgrade changed
    assert all("reverted to their" in f["message"] for f in findings if "upgrade passed" in f["message"])
    # every earlier release is solved, not only the four paths the package managers run
    solved = {f["details"]["from"] for f in findings if f["gate"] == "upgrade" and "upgrades cleanly" in f["message"]}
    assert solved == {"1.1", "1.2"}


@pytest.mark.parametrize("defect,names", DEFECTS, ids=[d[0] for d in DEFECTS])
def test_defect_is_caught_on_both_machines(ipk_project, cli, sample_build, defect, names):
    # the real opkg is what catches these (the clean run above shows every gate). The boot after
    # upgrade is compared with the last release's fresh boots here (the fixture's release 2), with
    # the candidate's own fresh boots in the clean run above
    code, findings = verify(cli, ipk_project, candidate3(cli, ipk_project, sample_build, defect), ("pm-upgrade",))
    errs = [f for f in findings if f["severity"] == "error"]
    assert code == 1 and errs
    for m in MACHINES:
        assert any(names in f["subject"] + " " + f["message"] and f"ipk/{m}" in f["message"] for f in errs), \
            (m, [f["subject"] + ": " + f["message"] for f in errs])
    if defect == "breaks-after-upgrade":
        # only the boot of the upgraded system sees it: the upgrade itself went through
        assert all(f["gate"] == "pm-upgrade" and "REGRESSION" in f["message"] and "release 1.2: passed" in f["message"]
                   for f in errs), [f["message"] for f in errs]
        assert sum("upgrade passed" in f["message"] for f in findings) >= 4


def _res(status: str, checks: dict[str, bool], ptests: dict | None = None) -> BootResult:
    r = BootResult("qemux86-64", "x.conf", status, "")
    r.checks = [CheckResult(n, n, 0 if ok else 1, "", ok, "" if ok else "exit status 1") for n, ok in checks.items()]
    r.ptests = ptests
    return r


def test_britney_classification():
    cfg = Boot(checks=[BootCheck("a", "a"), BootCheck("b", "b"), BootCheck("c", "c"), BootCheck("d", "d")])
    now = _res("check-failed", {"a": True, "b": False, "c": False, "d": False},
               {"hello/x": "FAIL", "hello/y": "SKIP", "hello/z": "PASS"})
    fresh = _res("passed", {"a": True, "b": True, "c": False}, {"hello/x": "PASS"}).to_dict()
    prev = {"status": "check-failed", "checks": [{"name": "c", "ok": False}]}
    got = {v.check: v.status for v in upgrade_boot.verdicts(now, cfg, {"fresh": fresh, "release 1.1": prev})}
    assert got == {"boot": "PASS", "a": "PASS", "b": "REGRESSION", "c": "ALWAYSFAIL", "d": "FAIL",
                   "ptest hello/x": "REGRESSION", "ptest hello/z": "PASS"}
    # an upgraded system that does not boot where the fresh image did is a regression too
    dead = _res("panic", {})
    assert [v.status for v in upgrade_boot.verdicts(dead, cfg, {"fresh": fresh})] == ["REGRESSION"]


def test_ptest_runner_output_is_read_as_oe_writes_it():
    from bindistro import ptest
    # the shape of a real ptest-runner 2 log (mbedtls on an adsp-sc598, and a jq ptest killed by
    # ptest-runner's timeout): dates, DURATION, TIMEOUT and the TOTAL line after STOP
    log = ("root@board:~# ptest-runner\nSTART: ptest-runner\n2024-09-17T12:44\nBEGIN: /usr/lib/mbedtls/ptest\n"
           "PASS: test_suite_aes.cbc\nFAIL: test_suite_x509parse\nSKIP: test_suite_pkcs11\nsome output of a test\n"
           "DURATION: 556\nEND: /usr/lib/mbedtls/ptest\nBEGIN: /usr/lib/jq/ptest\nPASS: optionaltest\n"
           "Timeout! System state:\nERROR: Exited from signal Killed (9)\nDURATION: 451\nTIMEOUT: /usr/lib/jq/ptest\n"
           "END: /usr/lib/jq/ptest\n2024-09-17T12:53\nSTOP: ptest-runner\nTOTAL: 2 FAIL: 1\n")
    assert ptest.parse(log) == {"mbedtls/test_suite_aes.cbc": "PASS", "mbedtls/test_suite_x509parse": "FAIL",
                                "mbedtls/test_suite_pkcs11": "SKIP", "jq/optionaltest": "PASS",
                                "jq/(run-ptest)": "FAIL", "jq/(timeout)": "FAIL"}
    assert ptest.parse("no runner here") is None
