"""CVE report outputs: the report model, OpenVEX, CSV, HTML and the cve-check JSON layout."""
from __future__ import annotations

import csv
import datetime as dt
import html
import io
import json

from ..model import CVE_STATUSES

OPENVEX_STATUS = {"affected": "affected", "under_investigation": "under_investigation", "fixed": "fixed",
                  "not_affected": "not_affected"}
# cve-check / sbom-cve-check vocabulary
CVE_CHECK_STATUS = {"affected": "Unpatched", "under_investigation": "Unpatched", "fixed": "Patched",
                    "not_affected": "Ignored"}


def build(releases: list[tuple[str, list[dict]]], today: dt.date) -> dict:
    """releases: (name, findings with SLA fields), oldest first. Adds 'fixed in' across releases."""
    out = []
    open_in: dict[str, str] = {}       # cve|package -> first release where it was open
    fixed_in: dict[str, str] = {}
    for name, findings in releases:
        keys = {}
        for f in findings:
            k = f"{f['cve']}|{f['package']}"
            keys[k] = f["status"]
            if f["status"] in ("affected", "under_investigation"):
                open_in.setdefault(k, name)
            elif f["status"] == "fixed" and k in open_in and k not in fixed_in:
                fixed_in[k] = name
        for k in open_in:
            if k not in keys and k not in fixed_in and open_in[k] != name:
                fixed_in[k] = name      # gone from the newer release's SBOM: fixed by an upgrade
        counts = {s: sum(1 for f in findings if f["status"] == s) for s in CVE_STATUSES}
        overdue = [f for f in findings if f.get("overdue")]
        out.append({"release": name, "counts": counts, "overdue": len(overdue), "findings": findings})
    return {"generated": today.isoformat(), "releases": out,
            "fixed_in": [{"cve": k.split("|")[0], "package": k.split("|")[1], "opened_in": open_in[k], "fixed_in": v}
                         for k, v in sorted(fixed_in.items())]}


def to_openvex(product: str, release: str, findings: list[dict], author: str) -> str:
    ts = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    statements = []
    for f in findings:
        st = {"vulnerability": {"name": f["cve"]},
              "products": [{"@id": f"pkg:generic/{p}@{f['version']}"} for p in f.get("packages") or [f["package"]]],
              "status": OPENVEX_STATUS[f["status"]], "status_notes": f["reason"]}
        if f["status"] == "not_affected":
            just = (f.get("triage") or {}).get("justification") or _vex_justification(f)
            if just:
                st["justification"] = just
            st["impact_statement"] = f["reason"]
        if f["status"] == "affected":
            st["action_statement"] = "Under triage by the distribution's security team; see the security policy."
        statements.append(st)
    doc = {"@context": "https://openvex.dev/ns/v0.2.0", "@id": f"urn:bindistro:{product}:{release}:vex",
           "author": author, "timestamp": ts, "version": 1, "statements": statements}
    return json.dumps(doc, indent=2) + "\n"


def _vex_justification(f: dict) -> str:
    # SPDX 3 justification names (camelCase) map onto OpenVEX's
    j = ((f.get("evidence") or {}).get("vex") or {}).get("justification", "")
    m = {"componentNotPresent": "component_not_present", "vulnerableCodeNotPresent": "vulnerable_code_not_present",
         "vulnerableCodeNotInExecutePath": "vulnerable_code_not_in_execute_path",
         "vulnerableCodeCannotBeControlledByAdversary": "vulnerable_code_cannot_be_controlled_by_adversary",
         "inlineMitigationsAlreadyExist": "inline_mitigations_already_exist"}
    return m.get(j, "")


CSV_FIELDS = ["release", "cve", "package", "version", "status", "severity", "score", "reason", "first_seen",
              "days_open", "sla_days", "overdue"]


def to_csv(report: dict) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in report["releases"]:
        for f in r["findings"]:
            w.writerow({**f, "release": r["release"]})
    return buf.getvalue()


def to_cve_check(findings: list[dict]) -> str:
    """The `yocto-cve-check-manifest` layout (cve-summary.json) that existing tools read."""
    by_pkg: dict[str, dict] = {}
    for f in findings:
        p = by_pkg.setdefault(f["package"], {"name": f["package"], "layer": "", "version": f["version"],
                                               "products": [], "issue": []})
        if f.get("product") and {"product": f["product"], "cvesInRecord": "Yes"} not in p["products"]:
            p["products"].append({"product": f["product"], "cvesInRecord": "Yes"})
        issue = {"id": f["cve"], "summary": f.get("summary", ""), "status": CVE_CHECK_STATUS[f["status"]],
                 "link": f"https://nvd.nist.gov/vuln/detail/{f['cve']}", "detail": f["status"].replace("_", "-"),
                 "description": f["reason"]}
        if f.get("score") is not None:
            issue["scorev3"] = str(f["score"])
        p["issue"].append(issue)
    return json.dumps({"version": "1", "package": list(by_pkg.values())}, indent=2) + "\n"


def to_html(report: dict, title: str) -> str:
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title><style>"
             "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:2em}"
             "td,th{border:1px solid #ccc;padding:.3em .6em;font-size:90%}th{background:#eee}"
             ".affected{background:#fdd}.under_investigation{background:#ffd}.fixed{background:#dfd}"
             ".not_affected{background:#eef}.overdue{font-weight:bold;color:#a00}</style></head><body>",
             f"<h1>{esc(title)}</h1><p>Generated {esc(report['generated'])}.</p>"]
    for r in report["releases"]:
        c = r["counts"]
        parts.append(f"<h2>Release {esc(r['release'])}</h2><p>" + ", ".join(
            f"{esc(k.replace('_', ' '))}: {v}" for k, v in c.items()) + f"; overdue: {r['overdue']}</p>")
        parts.append("<table><tr><th>CVE</th><th>package</th><th>version</th><th>status</th><th>severity</th>"
                     "<th>days open / SLA</th><th>reason</th></tr>")
        for f in r["findings"]:
            sla = f"{f['days_open']} / {f['sla_days']}" if "days_open" in f else ""
            cls = " class='overdue'" if f.get("overdue") else ""
            parts.append(f"<tr class='{esc(f['status'])}'><td>{esc(f['cve'])}</td><td>{esc(f['package'])}</td>"
                         f"<td>{esc(f['version'])}</td><td>{esc(f['status'].replace('_', ' '))}</td>"
                         f"<td>{esc(str(f.get('severity')))} {esc(str(f.get('score') or ''))}</td>"
                         f"<td{cls}>{esc(sla)}</td><td>{esc(f['reason'])}</td></tr>")
        parts.append("</table>")
    if report["fixed_in"]:
        parts.append("<h2>Fixed in a later release</h2><table><tr><th>CVE</th><th>package</th><th>open in</th>"
                     "<th>fixed in</th></tr>")
        for x in report["fixed_in"]:
            parts.append(f"<tr><td>{esc(x['cve'])}</td><td>{esc(x['package'])}</td><td>{esc(x['opened_in'])}</td>"
                         f"<td>{esc(x['fixed_in'])}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    return "".join(parts)
