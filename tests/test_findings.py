"""The one problem model: ids from (gate, rule, subject, scope), so waivers outlive rewording."""
from __future__ import annotations

import json

import hostile as H
from conftest import copytree
from bindistro.errors import Finding, Severity


def test_id_ignores_the_wording():
    a = Finding("error", "closure", "closure.uninstallable", "hello", "cannot be installed", scope="ipk/q")
    b = Finding(Severity.ERROR, "closure", "closure.uninstallable", "hello", "is not installable", scope="ipk/q")
    c = Finding("error", "closure", "closure.uninstallable", "hello", "cannot be installed", scope="ipk/other")
    assert a.id == b.id != c.id
    assert a.to_dict().keys() == {"id", "severity", "gate", "rule", "subject", "message", "details"}
    assert json.loads(json.dumps(a.to_dict()))["severity"] == "error"


def test_rewording_keeps_the_waiver(tiny, tmp_path, cli, monkeypatch):
    """A candidate with an uninstallable package: waive the closure error, reword the gate's message,
    verify again: still waived, and release accepts it."""
    w = tmp_path / "w"
    copytree(tiny, w)
    feed = w / "build2" / "tmp" / "deploy" / "ipk" / "core2-64"
    H.write(feed / "hello_1.1-r0_core2-64.ipk",
            H.ipk(H.control("hello", "1.1-r0", "core2-64", extra="Depends: base-files, libmissing\n")))
    proj = w / "proj"
    cli("-C", proj, "stage", w / "build2")
    rep = cli.json("-C", proj, "verify", "2", "--gate", "closure", ok=None)
    err = [f for f in rep["findings"] if f["severity"] == "error"]
    assert len(err) == 1 and err[0]["rule"] == "closure.uninstallable"
    cli("-C", proj, "waive", "2", err[0]["id"], "--reason", "libmissing comes from the custom feed")

    from bindistro.verify.gates import closure
    real = closure.Finding
    monkeypatch.setattr(closure, "Finding", lambda sev, gate, rule, subj, msg, *a, **k:
                        real(sev, gate, rule, subj, "REWORDED: " + msg, *a, **k))
    rep = cli.json("-C", proj, "verify", "2", "--gate", "closure")
    again = [f for f in rep["findings"] if f["severity"] == "error"]
    assert again[0]["message"].startswith("REWORDED") and again[0]["id"] == err[0]["id"]
    assert again[0]["waived"]["reason"].startswith("libmissing")
    assert rep["summary"]["error"] == 0
