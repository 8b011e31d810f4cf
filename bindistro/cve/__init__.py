"""PSIRT: keep checking what was released against vulnerability data imported from files.

Records, scan results per release and triage decisions live in the metadata DB. A scan re-evaluates
a release's stored SBOMs; its result replaces the last one and the difference is reported. Triage
is append-only: the newest decision for (release, CVE[, package]) wins and the history stays.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from sqlalchemy import delete, insert, select, update

from ..errors import BadInput, BindistroError
from ..model import CVE_STATUSES, IMAGE, SBOM
from ..store import Store
from ..store.schema import cve_records, cve_scans, cve_triage
from . import match, records, sbom as sbommod

JUSTIFICATIONS = ("component_not_present", "vulnerable_code_not_present", "vulnerable_code_not_in_execute_path",
                  "vulnerable_code_cannot_be_controlled_by_adversary", "inline_mitigations_already_exist")


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def import_records(store: Store, paths: list[Path]) -> dict:
    """Add or update records; a record whose content did not change is left as it was. A record
    that is not usable is skipped and reported; the others are imported."""
    files = records.find_files(paths)
    problems, parsed = [], {}
    for f in files:
        rs, ps = records.parse_file(f)
        problems += ps
        for r in rs:
            parsed[r.id] = r
    if problems and not parsed:
        raise BadInput(problems)
    with store.db.engine.connect() as c:
        old = {r.id: r.digest for r in c.execute(select(cve_records.c.id, cve_records.c.digest))}
    new, changed = [], []
    when = now()
    with store.db.begin() as c:
        for r in parsed.values():
            if r.id not in old:
                c.execute(insert(cve_records).values(id=r.id, source=r.source, digest=r.digest, data=r.to_dict(), imported=when))
                new.append(r.id)
            elif old[r.id] != r.digest:
                c.execute(update(cve_records).where(cve_records.c.id == r.id).values(
                    source=r.source, digest=r.digest, data=r.to_dict(), imported=when))
                changed.append(r.id)
    return {"files": len(files), "records": len(parsed), "new": sorted(new), "updated": sorted(changed),
            "unchanged": len(parsed) - len(new) - len(changed),
            "rejected": [{"path": p.path, "message": p.message} for p in problems]}


def load_records(store: Store) -> dict[str, records.Record]:
    with store.db.engine.connect() as c:
        return {r.id: records.Record(**r.data) for r in c.execute(select(cve_records.c.id, cve_records.c.data))}


def release_sboms(store: Store, name: str) -> list[tuple[str, Path]]:
    rel = next((r for r in store.db.releases() if r.name == name), None)
    if rel is None:
        raise BindistroError(f"release {name}: no such release (see `bindistro releases`)")
    _row, arts = store.db.candidate(rel.candidate)
    return [(a.path, store.objects.path(a.sha256)) for a in arts
            if a.kind in (IMAGE, SBOM) and (a.name or "").endswith((".spdx.json", ".spdx.tar.zst"))]


def supported(spec, store: Store, today: dt.date | None = None, rels: list | None = None) -> list:
    from .. import series
    today = today or dt.date.today()
    if spec.product_eol and today >= spec.product_eol:
        return []
    return [r for r in (series.releases(spec, store) if rels is None else rels)
            if not r.eol or dt.date.fromisoformat(r.eol[:10]) > today]


def triage_map(store: Store, release: str) -> dict[tuple[str, str], dict]:
    with store.db.engine.connect() as c:
        rows = c.execute(select(cve_triage).where(cve_triage.c.release == release).order_by(cve_triage.c.seq)).all()
    return {(r.cve, r.package): r._asdict() for r in rows}


def evaluate(sboms: list[tuple[str, Path]], recs: dict, triage: dict | None = None) -> list[dict]:
    found: dict[str, dict] = {}
    for label, path in sboms:
        for f in match.evaluate(sbommod.load(path), recs):
            d = found.setdefault(f.key, f.to_dict() | {"sboms": []})
            d["sboms"].append(label)
    for d in found.values():
        t = (triage or {}).get((d["cve"], d["package"])) or (triage or {}).get((d["cve"], ""))
        if t:
            d["computed"] = {"status": d["status"], "reason": d["reason"]}
            d["status"] = t["status"]
            d["reason"] = f"triage {t['created'][:10]}: {t['status']}" + \
                (f" ({t['justification']})" if t["justification"] else "") + (f": {t['note']}" if t["note"] else "")
            d["triage"] = t
    return sorted(found.values(), key=lambda d: (d["cve"], d["package"]))


def scan_release(store: Store, name: str, recs: dict | None = None) -> dict:
    """Evaluate one release, keep the result, say what changed since its last scan."""
    recs = load_records(store) if recs is None else recs
    sboms = release_sboms(store, name)
    findings = evaluate(sboms, recs, triage_map(store, name))
    when = now()
    with store.db.engine.connect() as c:
        old = {r.key: r for r in c.execute(select(cve_scans).where(cve_scans.c.release == name))}
    changes = []
    with store.db.begin() as c:
        c.execute(delete(cve_scans).where(cve_scans.c.release == name))
        for f in findings:
            key = f"{f['cve']}|{f['package']}"
            prev = old.get(key)
            if prev is None:
                changes.append({"cve": f["cve"], "package": f["package"], "old": None, "new": f["status"]})
            elif prev.status != f["status"]:
                changes.append({"cve": f["cve"], "package": f["package"], "old": prev.status, "new": f["status"]})
            first = prev.first_seen if prev else when
            changed = when if (prev is None or prev.status != f["status"]) else prev.changed
            f["first_seen"], f["changed"] = first, changed
            c.execute(insert(cve_scans).values(release=name, key=key, status=f["status"], data=f,
                                               first_seen=first, changed=changed))
        now_keys = {f"{f['cve']}|{f['package']}" for f in findings}
        for key, prev in old.items():
            if key not in now_keys:
                changes.append({"cve": prev.data["cve"], "package": prev.data["package"], "old": prev.status, "new": None})
    return {"release": name, "sboms": [s for s, _ in sboms], "findings": findings, "changes": changes}


def last_scan(store: Store, name: str) -> list[dict]:
    with store.db.engine.connect() as c:
        return [r.data for r in c.execute(select(cve_scans).where(cve_scans.c.release == name).order_by(cve_scans.c.key))]


def scan_sbom(store: Store | None, path: Path) -> list[dict]:
    return evaluate([(str(path), path)], load_records(store) if store else {})


def triage(store: Store, release: str, cve: str, status: str, justification: str = "", note: str = "",
           package: str = "") -> dict:
    if not any(r.name == release for r in store.db.releases()):
        raise BindistroError(f"release {release}: no such release (see `bindistro releases`)")
    if status not in CVE_STATUSES:
        raise BindistroError(f"--status {status!r}: must be one of {', '.join(CVE_STATUSES)}")
    if status == "not_affected" and not justification and not note:
        raise BindistroError("--status not_affected needs --justification or --note (VEX requires a reason)")
    if justification and justification not in JUSTIFICATIONS:
        raise BindistroError(f"--justification {justification!r}: must be one of {', '.join(JUSTIFICATIONS)}")
    row = {"release": release, "cve": cve, "package": package, "status": status, "justification": justification,
           "note": note, "created": now()}
    with store.db.begin() as c:
        c.execute(insert(cve_triage).values(**row))
    return row


def triage_history(store: Store, release: str | None = None) -> list[dict]:
    q = select(cve_triage).order_by(cve_triage.c.seq)
    if release:
        q = q.where(cve_triage.c.release == release)
    with store.db.engine.connect() as c:
        return [r._asdict() for r in c.execute(q)]


def sla_view(findings: list[dict], sla_days: dict[str, int], today: dt.date) -> list[dict]:
    """Days open and overdue for findings still open (affected / under investigation)."""
    out = []
    for f in findings:
        f = dict(f)
        if f["status"] in ("affected", "under_investigation"):
            first = dt.date.fromisoformat(f.get("first_seen", today.isoformat())[:10])
            f["days_open"] = (today - first).days
            limit = sla_days.get(f.get("severity") or "unknown", sla_days.get("unknown"))
            f["sla_days"] = limit
            f["overdue"] = limit is not None and f["days_open"] > limit
        out.append(f)
    return out
