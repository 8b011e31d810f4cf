"""Closure: every package of the candidate installs from the feeds its machine uses (libsolv)."""
from __future__ import annotations

from ...solve import Pool
from ..finding import Finding

NAME = "closure"


def run(ctx) -> list[Finding]:
    out = []
    for fmt in ctx.spec.formats:
        for m in ctx.spec.machines:
            allpkgs, cand = ctx.feed_set(fmt, m)
            if not cand:
                continue
            pool = Pool(fmt)
            pool.add("feeds", allpkgs)
            pool.ready()
            for a in cand:
                for s in pool.by_key.get((a.name, a.version), [])[:1]:
                    problems, _ = pool.solve([pool.install_job(s)])
                    for p in problems:
                        out.append(Finding("error", NAME, "closure.uninstallable", a.name, f"{fmt} {a.name} {a.version} cannot be installed on "
                                           f"{m.name}: {p}", {"machine": m.name, "format": fmt}, scope=f'{fmt}/{m.name}/{a.version}'))
    return out
