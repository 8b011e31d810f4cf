"""`bindistro notes CAND`: markdown release notes against the last release."""
from __future__ import annotations

from . import model
from .formats import get as get_format
from .spec import Spec
from .store import Store


def release_notes(spec: Spec, store: Store, cid: int) -> str:
    _row, arts = store.db.candidate(cid)
    rels = [r for r in store.db.releases() if r.candidate < cid]
    last = rels[-1] if rels else None
    old_arts = store.db.candidate(last.candidate)[1] if last else []
    fmt = next((f for f in spec.formats if any(a.format == f for a in arts)), spec.formats[0])
    vcmp = get_format(fmt).version_cmp

    def table(items):
        return {(a.name, a.arch): a.version for a in items if a.kind == model.PACKAGE and a.format == fmt}
    new, old = table(arts), table(old_arts)
    added = sorted(k for k in new if k not in old)
    removed = sorted(k for k in old if k not in new)
    up = sorted(k for k in new if k in old and vcmp(new[k], old[k]) > 0)
    down = sorted(k for k in new if k in old and vcmp(new[k], old[k]) < 0)
    lines = [f"# {spec.product}: release notes for candidate {cid}", "",
             f"Compared with {'release ' + last.name if last else 'nothing (first release)'}; {fmt} packages.", ""]
    for title, keys, show in (("Added", added, lambda k: f"{new[k]}"), ("Upgraded", up, lambda k: f"{old[k]} → {new[k]}"),
                              ("Downgraded", down, lambda k: f"{old[k]} → {new[k]}"), ("Removed", removed, lambda k: f"{old[k]}")):
        lines.append(f"## {title} ({len(keys)})")
        lines += [f"- `{n}` ({arch}): {show((n, arch))}" for n, arch in keys] or ["- none"]
        lines.append("")

    def images(items):
        return {a.meta.get("machine"): a.size for a in items if a.kind == model.IMAGE and not a.name.endswith(".manifest")}
    ni, oi = images(arts), images(old_arts)
    lines.append("## Images")
    for m in sorted(ni):
        if m in oi and oi[m]:
            lines.append(f"- {m}: {oi[m]:,} → {ni[m]:,} bytes ({(ni[m] - oi[m]) * 100 / oi[m]:+.1f} %)")
        else:
            lines.append(f"- {m}: {ni[m]:,} bytes (new)")
    return "\n".join(lines) + "\n"
