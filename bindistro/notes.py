"""`bindistro notes CAND`: markdown release notes against the last release."""
from __future__ import annotations

from . import model
from .formats import get as get_format
from .spec import Spec
from .store import Store


def release_notes(spec: Spec, store: Store, cid: int) -> str:
    d = notes_data(spec, store, cid)
    lines = [f"# {spec.product}: release notes for candidate {cid}", "",
             f"Compared with {'release ' + d['against'] if d['against'] else 'nothing (first release)'}; {d['format']} packages.", ""]
    for title, key, show in (("Added", "added", lambda x: x["version"]), ("Upgraded", "upgraded", lambda x: f"{x['old']} → {x['new']}"),
                             ("Downgraded", "downgraded", lambda x: f"{x['old']} → {x['new']}"), ("Removed", "removed", lambda x: x["version"])):
        lines.append(f"## {title} ({len(d[key])})")
        lines += [f"- `{x['name']}` ({x['arch']}): {show(x)}" for x in d[key]] or ["- none"]
        lines.append("")
    lines.append("## Images")
    for m, x in sorted(d["images"].items()):
        if x["old"]:
            lines.append(f"- {m}: {x['old']:,} → {x['new']:,} bytes ({(x['new'] - x['old']) * 100 / x['old']:+.1f} %)")
        else:
            lines.append(f"- {m}: {x['new']:,} bytes (new)")
    return "\n".join(lines) + "\n"


def notes_data(spec: Spec, store: Store, cid: int) -> dict:
    from . import series
    # (name, arch) -> version and the images only: a world's two whole builds as Artifact objects were
    # a quarter of a release's peak memory, built last, beside the site's data
    row = store.db.candidate_row(cid)
    spec = spec.in_series(row.series)
    # against its series' last release; a series' first, against the latest of the one it follows
    rels = [r for r in series.releases(spec, store, spec.current) if r.candidate < cid] or [
        r for r in (series.latest(spec, store, o, before=cid) for o in spec.upgrade_from()[-1:]) if r]
    last = rels[-1] if rels else None
    fmt, new = next(((f, v) for f in spec.formats if (v := store.db.package_versions(cid, f))), (spec.formats[0], {}))
    old = store.db.package_versions(last.candidate, fmt) if last else {}
    vcmp = get_format(fmt).version_cmp
    added = sorted(k for k in new if k not in old)
    removed = sorted(k for k in old if k not in new)
    changed = {k: vcmp(new[k], old[k]) for k in new if k in old and new[k] != old[k]}
    up = sorted(k for k, c in changed.items() if c > 0)
    down = sorted(k for k, c in changed.items() if c < 0)

    def images(items):
        return {a.meta.get("machine"): a.size for a in items if a.kind == model.IMAGE and not a.name.endswith(".manifest")}
    ni = images(store.db.candidate(cid, kinds=(model.IMAGE,), control=False)[1])
    oi = images(store.db.candidate(last.candidate, kinds=(model.IMAGE,), control=False)[1]) if last else {}
    return {"candidate": cid, "against": last.name if last else None, "format": fmt,
            "added": [{"name": n, "arch": a, "version": new[(n, a)]} for n, a in added],
            "upgraded": [{"name": n, "arch": a, "old": old[(n, a)], "new": new[(n, a)]} for n, a in up],
            "downgraded": [{"name": n, "arch": a, "old": old[(n, a)], "new": new[(n, a)]} for n, a in down],
            "removed": [{"name": n, "arch": a, "version": old[(n, a)]} for n, a in removed],
            "images": {m: {"new": ni[m], "old": oi.get(m)} for m in ni}}
