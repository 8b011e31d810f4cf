"""Closure: every package of the candidate installs from the feeds its machine uses (libsolv)."""
from __future__ import annotations

from ... import model
from ...formats import get as get_format
from ...solve import Pool
from ..finding import Finding

NAME = "closure"


def feed_set(ctx, fmt: str, machine) -> tuple[list, list]:
    """(cumulative feed contents after this candidate, the candidate's own packages) for a machine."""
    names = {get_format(fmt).feed_name(a) for a in machine.archs}
    cand = [a for a in ctx.artifacts if a.kind == model.PACKAGE and a.format == fmt and a.arch in names]
    keys = {(a.arch, a.filename) for a in cand}
    old = [a for a in ctx.store.db.released_packages()
           if a.format == fmt and a.arch in names and (a.arch, a.filename) not in keys]
    return old + cand, cand


def run(ctx) -> list[Finding]:
    out = []
    for fmt in ctx.spec.formats:
        for m in ctx.spec.machines:
            allpkgs, cand = feed_set(ctx, fmt, m)
            if not cand:
                continue
            pool = Pool(fmt)
            pool.add("feeds", allpkgs)
            pool.ready()
            for a in cand:
                for s in pool.by_key.get((a.name, a.version), [])[:1]:
                    problems, _ = pool.solve([pool.install_job(s)])
                    for p in problems:
                        out.append(Finding("error", NAME, a.name, f"{fmt} {a.name} {a.version} cannot be installed on "
                                           f"{m.name}: {p}", {"machine": m.name, "format": fmt}))
    return out
