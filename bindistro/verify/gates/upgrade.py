"""Upgrade solvability: the image package set of every earlier supported release, upgraded to the
candidate's cumulative feeds (libsolv, every package to its best version): a device on any release
is covered. The first, last, a random earlier and the n-2 paths keep those labels."""
from __future__ import annotations

import solv

from ... import model
from ...solve import Pool
from ..finding import Finding
from .closure import feed_set

NAME = "upgrade"


def image_set(ctx, rel, machine) -> list[tuple[str, str]]:
    for a in ctx.release_artifacts(rel):
        if a.kind == model.IMAGE and a.name.endswith(".manifest") and a.meta.get("machine") == machine.name:
            text = ctx.store.objects.path(a.sha256).read_text()
            return [(l.split()[0], l.split()[2]) for l in text.splitlines() if len(l.split()) >= 3]
    return []


def run(ctx) -> list[Finding]:
    out = []
    sources = ctx.solver_sources()      # every path a device can take; the real PMs run four of them
    if not sources:
        return [Finding("info", NAME, "-", "first release: no earlier release to upgrade from")]
    for fmt in ctx.spec.formats:
        for m in ctx.spec.machines:
            allpkgs, _cand = feed_set(ctx, fmt, m)
            by_nv = {(a.name, a.version): a for a in allpkgs}
            for why, rel in sources:
                wanted = image_set(ctx, rel, m)
                if not wanted:
                    continue
                installed = [by_nv[k] for k in wanted if k in by_nv]
                subject = f"{rel.name}->candidate"
                if len(installed) < len(wanted):
                    out.append(Finding("warning", NAME, subject, f"{fmt}/{m.name}: {len(wanted) - len(installed)} packages "
                                       f"of the {rel.name} image are not in the feeds"))
                pool = Pool(fmt)
                pool.add("installed", installed, installed=True)
                pool.add("feeds", allpkgs)
                pool.ready()
                problems, trans = pool.solve([pool.upgrade_all_job()])
                ctxinfo = {"from": rel.name, "path": why, "machine": m.name, "format": fmt}
                for p in problems:
                    out.append(Finding("error", NAME, subject, f"{fmt}/{m.name}: upgrading the {rel.name} image ({why}) "
                                       f"is unsolvable: {p}", ctxinfo))
                if trans is None:
                    continue
                replaced = set()
                for s in trans.newsolvables():
                    replaced.add(s.name)
                    for dep in (solv.SOLVABLE_PROVIDES, solv.SOLVABLE_OBSOLETES):
                        replaced |= {str(d).split(" ")[0] for d in s.lookup_deparray(dep)}
                for s in trans.steps():
                    if trans.steptype(s, solv.Transaction.SOLVER_TRANSACTION_SHOW_ACTIVE) == solv.Transaction.SOLVER_TRANSACTION_ERASE \
                            and s.name not in replaced:
                        out.append(Finding("error", NAME, s.name, f"{fmt}/{m.name}: upgrading the {rel.name} image ({why}) "
                                           f"removes {s.name} and nothing replaces it", ctxinfo))
                out.append(Finding("info", NAME, subject, f"{fmt}/{m.name}: {rel.name} image ({why}) upgrades cleanly: "
                                   f"{len(trans.newsolvables())} packages new or upgraded", ctxinfo))
    return out
