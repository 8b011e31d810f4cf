"""PSIRT: SBOM ingestion, NVD / CVE 5 import, matching, triage, reports, security.txt."""
from __future__ import annotations

import csv
import io
import json

import pytest

from conftest import need_realdata

SPDX3 = "sbom/core-image-minimal-qemux86-64.rootfs.spdx.json"
SPDX22 = "sbom/example.rootfs.spdx.tar.zst"

# Worked out by hand from each record in ../shared/realdata/cve/nvd and the SPDX 3 SBOM (busybox 1.37.0,
# glibc 2.41, linux_kernel 6.12.38, openssl:openssl 3.4.2, gnu:tar 1.35, util-linux 2.40.4, xz 5.6.4 and
# zlib:zlib 1.3.1; CPEs without a vendor match any vendor). None = must not be reported at all.
EXPECTED = {
    # Yocto's VEX in the SBOM wins over CPE data
    "CVE-2022-28391": "fixed",               # busybox <= 1.35.0, VEX fixedIn
    "CVE-2023-39810": "fixed",               # busybox 1.30.1 / 1.33.2, VEX fixedIn
    "CVE-2025-31115": "fixed",               # xz, NVD Received (no CPE), VEX fixedIn
    "CVE-2019-1010025": "not_affected",      # gnu:glibc `-` (every version), VEX doesNotAffect
    "CVE-2023-45853": "not_affected",        # zlib <= 1.3, VEX doesNotAffect
    "CVE-1999-0656": "not_affected",         # linux_kernel `*`, VEX doesNotAffect
    "CVE-2023-23005": "not_affected",        # linux_kernel < 6.2, VEX doesNotAffect
    # CPE configuration + version range include the SBOM's version
    "CVE-2019-1010022": "affected",          # gnu:glibc `-`: every version, no VEX for it
    "CVE-2019-1010024": "affected",          # same
    # no CPE data yet (Received / Awaiting Analysis), the description names an SBOM product
    "CVE-2025-38352": "under_investigation",  # "In the Linux kernel ..."
    "CVE-2024-58251": "under_investigation",  # "netstat in BusyBox through 1.37.0"
    "CVE-2025-0395": "under_investigation",   # "GNU C Library versions 2.13 to 2.40"
    "CVE-2025-8058": "under_investigation",   # "GNU C library version from 2.4 to 2.41"
    "CVE-2025-9230": "under_investigation",   # OpenSSL CMS decryption
    "CVE-2024-28085": "under_investigation",  # "wall in util-linux through 2.40"
    "CVE-2025-45582": "under_investigation",  # "GNU Tar through 1.35"
    # ranges that exclude the SBOM's version
    "CVE-2022-48174": None,                  # busybox <= 1.36.1 (SBOM 1.37.0)
    "CVE-2023-42363": None,                  # busybox = 1.36.1
    "CVE-2023-6246": None,                   # gnu:glibc 2.36 <= v < 2.39 (SBOM 2.41)
    "CVE-2022-48303": None,                  # gnu:tar <= 1.34 (SBOM 1.35)
    "CVE-2023-5363": None,                   # openssl 3.0.0-3.0.12, 3.1.0-3.1.4 (SBOM 3.4.2)
    "CVE-2024-53104": None,                  # linux_kernel ranges end at 6.12.1 for 6.12 (SBOM 6.12.38)
    "CVE-2021-37600": None,                  # kernel:util-linux <= 2.37.1 (SBOM 2.40.4)
    "CVE-2022-37434": None,                  # zlib <= 1.2.12
    "CVE-2024-3094": None,                   # tukaani:xz 5.6.0 and 5.6.1 only (SBOM 5.6.4)
    # other vendors' products of the same name
    "CVE-2021-29482": None,                  # xz_project:xz, the Go library (< 0.5.8)
    "CVE-2021-32803": None,                  # tar_project:tar, node-tar; the SBOM's tar is gnu:tar
    # AND configurations whose other half is not in the SBOM; VEX says not affected as well
    "CVE-2023-3079": "not_affected",         # chrome on linux_kernel
    "CVE-2007-2764": "not_affected",         # linux_kernel AND brocade silkworm switches
}


@pytest.fixture
def nvd_project(project, cli):
    r = cli.json("-C", project, "cve", "import", need_realdata("cve/nvd"))
    assert r["records"] >= 40 and r["new"]
    return project


def test_expected_statuses_on_the_real_spdx3_sbom(nvd_project, cli):
    recs = {p.stem: json.loads(p.read_text()) for p in need_realdata("cve/nvd").glob("CVE-*.json")}
    assert len([k for k in EXPECTED if k in recs]) >= 15
    out = cli.json("-C", nvd_project, "cve", "scan", "--sbom", need_realdata(SPDX3))
    by_cve: dict[str, set] = {}
    for f in out["findings"]:
        by_cve.setdefault(f["cve"], set()).add(f["status"])
        assert f["status"] in ("affected", "under_investigation", "fixed", "not_affected")
    for cve, status in EXPECTED.items():
        got = by_cve.get(cve)
        assert (got or None) == ({status} if status else None), (cve, got)
    for f in out["findings"]:
        if f["status"] == "affected":
            # explained by a CPE and range that are really in the record
            ev = f["evidence"]
            crits = [m for c in recs[f["cve"]]["configurations"] for n in c["nodes"] for m in n["cpeMatch"]]
            assert ev["match"] in crits and ev["cpe"].split(":")[4] == f["product"]
        if f["status"] == "under_investigation":
            assert "awaiting NVD analysis" in f["reason"]
            assert f["evidence"]["named"].lower() in recs[f["cve"]]["descriptions"][0]["value"].lower()
        if f["status"] in ("fixed", "not_affected") and f["cve"] in EXPECTED:
            assert f["reason"].startswith("SBOM VEX")


def test_spdx22_archive(nvd_project, cli):
    out = cli.json("-C", nvd_project, "cve", "scan", "--sbom", need_realdata(SPDX22))
    st = {(f["cve"], f["package"]): f["status"] for f in out["findings"]}
    # busybox 1.36.1 here: the recipe's sourceInfo lists CVE-2023-42363 and CVE-2022-28391 as fixed
    assert st[("CVE-2023-42363", "busybox")] == "fixed"
    assert st[("CVE-2022-28391", "busybox")] == "fixed"
    assert st[("CVE-2022-48174", "busybox")] == "affected"      # <= 1.36.1, not in the fixed list


def test_standalone_sbom_without_a_project(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = cli.json("cve", "scan", "--sbom", need_realdata(SPDX3))
    assert {f["status"] for f in out["findings"]} == {"fixed", "not_affected"}     # VEX only: no records here
    bad = tmp_path / "x.spdx.json"
    bad.write_text("{}")
    r = cli("cve", "scan", "--sbom", bad, ok=False)
    assert r.exit_code == 1 and str(bad) in r.stderr and len(r.stderr.strip().splitlines()) == 1


def _cve5(tmp_path, cve="CVE-2099-0001", less_than="1.37.0"):
    rec = {"dataType": "CVE_RECORD", "dataVersion": "5.1",
           "cveMetadata": {"cveId": cve, "state": "PUBLISHED", "datePublished": "2099-01-01T00:00:00",
                           "dateUpdated": "2099-01-02T00:00:00"},
           "containers": {"cna": {"descriptions": [{"lang": "en", "value": "A flaw in BusyBox ash."}],
                                  "affected": [{"vendor": "busybox", "product": "busybox",
                                                "versions": [{"version": "1.0", "lessThan": less_than,
                                                              "status": "affected", "versionType": "custom"}]}],
                                  "metrics": [{"cvssV3_1": {"baseScore": 9.8, "baseSeverity": "CRITICAL"}}]}}}
    p = tmp_path / f"{cve}.json"
    p.write_text(json.dumps(rec))
    return p


def test_cve5_records_and_incremental_import(nvd_project, cli, tmp_path):
    again = cli.json("-C", nvd_project, "cve", "import", need_realdata("cve/nvd"))
    assert again["new"] == [] and again["updated"] == [] and again["unchanged"] == again["records"]
    rec = _cve5(tmp_path, less_than="1.38")
    r = cli.json("-C", nvd_project, "cve", "import", rec)
    assert r["new"] == ["CVE-2099-0001"]
    out = cli.json("-C", nvd_project, "cve", "scan", "--sbom", need_realdata(SPDX3))
    f = [f for f in out["findings"] if f["cve"] == "CVE-2099-0001"]
    assert [x["status"] for x in f] == ["affected"] and f[0]["severity"] == "critical"
    # a changed record is an update; a version outside the range is no finding
    rec = _cve5(tmp_path, less_than="1.37.0")
    assert cli.json("-C", nvd_project, "cve", "import", rec)["updated"] == ["CVE-2099-0001"]
    out = cli.json("-C", nvd_project, "cve", "scan", "--sbom", need_realdata(SPDX3))
    assert not [f for f in out["findings"] if f["cve"] == "CVE-2099-0001"]


def test_release_scan_triage_reports_and_sla(demo, cli, tmp_path):
    d = demo
    cli.json("-C", d, "cve", "import", need_realdata("cve/nvd"))
    first = cli.json("-C", d, "cve", "scan", "--all-releases")
    names = [r["release"] for r in first["releases"]]
    assert names == ["1.1", "1.2", "1.3"]
    newest = first["releases"][-1]
    st = {f["cve"]: f["status"] for f in newest["findings"]}
    # the sample's busybox is 1.36.1: <= 1.36.1 and == 1.36.1 records apply; its VEX marks two fixed
    assert st["CVE-2022-48174"] == "affected" and st["CVE-2023-42363"] == "affected"
    assert st["CVE-2022-28391"] == "fixed" and st["CVE-2019-1010025"] == "not_affected"
    assert st["CVE-2024-58251"] == "under_investigation"
    # nothing new: a second scan changes nothing
    again = cli.json("-C", d, "cve", "scan", "--all-releases")
    assert all(r["changes"] == [] for r in again["releases"])
    # one new record changes only its own findings
    cli.json("-C", d, "cve", "import", _cve5(tmp_path, "CVE-2099-0002", "1.38"))
    third = cli.json("-C", d, "cve", "scan", "--all-releases")
    for r in third["releases"]:
        assert {c["cve"] for c in r["changes"]} == {"CVE-2099-0002"}
    # triage, with history
    cli("-C", d, "cve", "triage", "CVE-2023-42363", "--release", "1.3", "--status", "under_investigation",
        "--note", "checking the ash patch")
    cli("-C", d, "cve", "triage", "CVE-2023-42363", "--release", "1.3", "--status", "not_affected",
        "--justification", "vulnerable_code_not_in_execute_path", "--note", "xasprintf path unused")
    r = cli("-C", d, "cve", "triage", "CVE-2023-42363", "--release", "1.3", "--status", "not_affected", ok=False)
    assert r.exit_code == 1 and "justification" in r.stderr
    hist = cli.json("-C", d, "cve", "history", "--release", "1.3")["triage"]
    assert [h["status"] for h in hist if h["cve"] == "CVE-2023-42363"] == ["under_investigation", "not_affected"]
    rep = cli.json("-C", d, "cve", "report", "--release", "1.3")
    f = next(f for f in rep["releases"][0]["findings"] if f["cve"] == "CVE-2023-42363")
    assert f["status"] == "not_affected" and "xasprintf" in f["reason"]
    # OpenVEX
    vex = json.loads(cli("-C", d, "cve", "report", "--release", "1.3", "--format", "openvex").stdout)
    assert vex["@context"].startswith("https://openvex.dev/ns/")
    s = next(s for s in vex["statements"] if s["vulnerability"]["name"] == "CVE-2023-42363")
    assert s["status"] == "not_affected" and s["justification"] == "vulnerable_code_not_in_execute_path"
    assert all(s.get("action_statement") for s in vex["statements"] if s["status"] == "affected")
    # CSV, HTML, cve-check layout
    rows = list(csv.DictReader(io.StringIO(cli("-C", d, "cve", "report", "--format", "csv").stdout)))
    assert {r["release"] for r in rows} == {"1.1", "1.2", "1.3"} and "days_open" in rows[0]
    page = cli("-C", d, "cve", "report", "--format", "html").stdout
    assert page.startswith("<!doctype html>") and "CVE-2022-48174" in page
    cc = json.loads(cli("-C", d, "cve", "report", "--release", "1.3", "--format", "cve-check").stdout)
    assert cc["version"] == "1"
    bb = next(p for p in cc["package"] if p["name"] == "busybox")
    assert {"product": "busybox", "cvesInRecord": "Yes"} in bb["products"]
    assert {i["id"]: i["status"] for i in bb["issue"]}["CVE-2022-48174"] == "Unpatched"
    # SLA: nothing is overdue today; everything open is, years from now
    assert cli("-C", d, "cve", "report", "--fail-on-overdue").exit_code == 0
    late = cli("-C", d, "cve", "report", "--fail-on-overdue", "--today", "2040-01-01", ok=False)
    assert late.exit_code == 1 and "past their SLA" in late.stderr and "OVERDUE" in late.stdout
    js = cli.json("-C", d, "cve", "report", "--today", "2040-01-01", ok=None)
    crit = [f for r in js["releases"] for f in r["findings"] if f["cve"] == "CVE-2022-48174"]
    assert crit and all(f["overdue"] and f["sla_days"] == 7 for f in crit)     # CVSS 9.8: critical, 7 days


def test_security_txt_and_policy(demo):
    txt = (demo / "publish" / ".well-known" / "security.txt").read_text()
    fields = dict(line.split(": ", 1) for line in txt.splitlines())
    assert fields["Contact"].startswith("mailto:") and fields["Expires"].endswith("Z")
    assert fields["Encryption"].endswith(".asc") and fields["Policy"].endswith("/SECURITY.md")
    page = (demo / "publish" / "SECURITY.md").read_text()
    assert "| 1.3 |" in page and "supported" in page and "| critical | 7 days |" in page
