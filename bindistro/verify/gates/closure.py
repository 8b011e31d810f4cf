"""Closure: every package of the candidate installs from the feeds its machine uses (libsolv)."""
from __future__ import annotations

from ..finding import Finding

NAME = "closure"
SPLIT = ("format", "machine")    # verify jobs: one per slice (verify/jobs.py)


def run(ctx) -> list[Finding]:
    out = []
    for fmt in ctx.formats():
        for m in ctx.machines():
            cand = ctx.packages(fmt, m)
            if not cand:
                continue
            pool = ctx.feed_pool(fmt, m)
            sols = {a.name + " " + a.version: s for a in cand for s in pool.by_key.get((a.name, a.version), [])[:1]}
            bad = pool.installable(list(sols.values()))
            for a in cand:
                for s in pool.by_key.get((a.name, a.version), [])[:1]:
                    for p in bad.get(s.id, []):
                        out.append(Finding("error", NAME, "closure.uninstallable", a.name, f"{fmt} {a.name} {a.version} cannot be installed on "
                                           f"{m.name}: {p}", {"machine": m.name, "format": fmt}, scope=f'{fmt}/{m.name}/{a.version}'))
    return out
