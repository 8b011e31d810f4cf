"""`bindistro cve ...`: import vulnerability data, scan releases or any SBOM, triage, report."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from .base import Project, emit, json_opt, out
from ..errors import BadInput, BindistroError, Problem
from ..model import CVE_STATUSES as STATUSES

# the cve package (SQL tables, bitbake's version order, SBOM readers) is imported by the command that
# runs, not by every command line


@click.group()
def cve():
    """PSIRT: CVE monitoring of released SBOMs, triage, SLA, VEX."""


@cve.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@json_opt
@click.pass_obj
def import_cmd(proj: Project, paths, as_json):
    """Import NVD API 2.0 / CVE JSON 5 records (files or directories); unchanged records stay as they are."""
    from ..cve import import_records
    r = import_records(proj.store, list(paths))
    emit(as_json, r, lambda r: out.print(
        f"{r['records']} records from {r['files']} files: {len(r['new'])} new, {len(r['updated'])} updated, "
        f"{r['unchanged']} unchanged" + (f", {len(r['rejected'])} rejected" if r["rejected"] else "")))
    if r["rejected"]:      # the good ones are in; the exit status still says something was refused
        e = BadInput([Problem(x["path"], x["message"]) for x in r["rejected"]])
        e.reported = as_json
        raise e


def _print_findings(findings: list[dict]) -> None:
    for f in findings:
        out.print(f"{f['cve']:<18} {f['status']:<20} {f['package']} {f['version']}: {f['reason']}", markup=False)


@cve.command("scan")
@click.option("--release", "rel", help="Scan this release (default: the newest).")
@click.option("--all-releases", "all_rel", is_flag=True, help="Re-evaluate every supported release; list what changed.")
@click.option("--sbom", "sbom_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Evaluate a standalone SBOM (SPDX 3.0 JSON-LD or SPDX 2.2 .spdx.tar.zst).")
@json_opt
@click.pass_obj
def scan_cmd(proj: Project, rel, all_rel, sbom_file, as_json):
    """Evaluate SBOMs against the imported records."""
    from ..cve import load_records, scan_release, scan_sbom, supported
    if sbom_file:
        try:
            store = proj.store
        except BindistroError:
            store = None          # no project here: an empty record set, VEX of the SBOM only
        findings = scan_sbom(store, sbom_file)
        emit(as_json, {"sbom": str(sbom_file), "findings": findings}, lambda d: _print_findings(d["findings"]))
        return
    store = proj.store
    if all_rel:
        names = [r.name for r in supported(proj.spec, store)]
    else:
        rels = store.db.releases()
        if not rels:
            raise BindistroError("no releases yet: nothing to scan (or pass --sbom FILE)")
        names = [rel or rels[-1].name]
    recs = load_records(store)
    results = [scan_release(store, n, recs) for n in names]

    def human(d):
        for r in d["releases"]:
            counts = {s: sum(1 for f in r["findings"] if f["status"] == s) for s in STATUSES}
            out.print(f"release {r['release']}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) +
                      f"; {len(r['changes'])} changed", markup=False)
            for c in r["changes"]:
                out.print(f"  {c['cve']} {c['package']}: {c['old'] or '-'} -> {c['new'] or 'gone'}", markup=False)
    emit(as_json, {"releases": results}, human)


@cve.command("triage")
@click.argument("cve_id", metavar="CVE")
@click.option("--release", "rel", required=True)
@click.option("--status", type=click.Choice(STATUSES), required=True)
@click.option("--justification", default="", help="For not_affected: an OpenVEX justification.")
@click.option("--note", default="", help="Free text kept with the decision.")
@click.option("--package", default="", help="Only this package (default: every package the CVE is found in).")
@json_opt
@click.pass_obj
def triage_cmd(proj: Project, cve_id, rel, status, justification, note, package, as_json):
    """Record a triage decision (kept with its history); the next scan applies it."""
    from ..cve import scan_release, triage as do_triage
    row = do_triage(proj.store, rel, cve_id, status, justification, note, package)
    scan_release(proj.store, rel)
    emit(as_json, row, lambda r: out.print(f"{cve_id} in {rel}: {status}", markup=False))


@cve.command("history")
@click.option("--release", "rel")
@json_opt
@click.pass_obj
def history_cmd(proj: Project, rel, as_json):
    """Every triage decision, oldest first."""
    from ..cve import triage_history
    rows = triage_history(proj.store, rel)
    emit(as_json, {"triage": rows}, lambda d: [out.print(
        f"{r['created']} {r['release']} {r['cve']} {r['package'] or '*'}: {r['status']} {r['justification']} {r['note']}",
        markup=False) for r in d["triage"]])


@cve.command("report")
@click.option("--release", "rel", help="One release (default: every supported release).")
@click.option("--format", "fmt", type=click.Choice(["text", "openvex", "csv", "html", "cve-check"]), default="text",
              show_default=True)
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), help="Write here instead of stdout.")
@click.option("--today", type=click.DateTime(["%Y-%m-%d"]), help="Evaluate the SLA as of this day.")
@click.option("--fail-on-overdue", is_flag=True, help="Exit 1 when an open issue is past its SLA (for CI).")
@json_opt
@click.pass_obj
def report_cmd(proj: Project, rel, fmt, out_file, today, fail_on_overdue, as_json):
    """Known, under investigation, fixed and not-affected issues per release, with SLA."""
    from ..cve import last_scan, report as rep, scan_release, sla_view, supported
    spec, store = proj.spec, proj.store
    day = today.date() if today else dt.date.today()
    names = [rel] if rel else [r.name for r in supported(spec, store, day)]
    rels = []
    for n in names:
        findings = last_scan(store, n) or scan_release(store, n)["findings"]
        rels.append((n, sla_view(findings, spec.security.sla_days, day)))
    data = rep.build(rels, day)
    overdue = sum(r["overdue"] for r in data["releases"])
    if as_json or fmt == "text":
        def human(d):
            for r in d["releases"]:
                c = r["counts"]
                out.print(f"release {r['release']}: affected {c['affected']}, under investigation "
                          f"{c['under_investigation']}, fixed {c['fixed']}, not affected {c['not_affected']}; "
                          f"overdue {r['overdue']}", markup=False)
                for f in r["findings"]:
                    if f["status"] in ("affected", "under_investigation"):
                        late = " OVERDUE" if f.get("overdue") else ""
                        out.print(f"  {f['cve']:<18} {f['status']:<20} {f['package']} ({f['severity']}, "
                                  f"{f['days_open']}/{f['sla_days']} days){late}", markup=False)
            for x in d["fixed_in"]:
                out.print(f"  fixed: {x['cve']} {x['package']} in {x['fixed_in']} (open in {x['opened_in']})", markup=False)
        emit(as_json, data, human)
    else:
        if fmt == "openvex":
            if len(rels) != 1:
                raise BindistroError("--format openvex describes one release: pass --release R")
            text = rep.to_openvex(spec.product, rels[0][0], rels[0][1], spec.security.contact)
        elif fmt == "csv":
            text = rep.to_csv(data)
        elif fmt == "html":
            text = rep.to_html(data, f"{spec.product} security report")
        else:
            text = rep.to_cve_check([f for _, fs in rels for f in fs])
        if out_file:
            out_file.write_text(text)
        else:
            click.echo(text, nl=False)
    if fail_on_overdue and overdue:
        raise BindistroError(f"{overdue} open issue(s) past their SLA")


@cve.command("policy")
@json_opt
@click.pass_obj
def policy_cmd(proj: Project, as_json):
    """Write .well-known/security.txt and SECURITY.md into the publish directory."""
    from ..release import relist
    stats = relist(proj.spec, proj.store, "cve policy")
    files = [".well-known/security.txt", "SECURITY.md"]
    emit(as_json, {"publish": str(proj.spec.publish_path), "files": files, "site": stats},
         lambda d: out.print("wrote " + ", ".join(d["files"]) + f" in {d['publish']}", markup=False))


COMMANDS = [cve]
