"""Upgrade solvability: the image package set of every earlier supported release, upgraded to the
candidate's cumulative feeds (libsolv, every package to its best version): a device on any release
is covered. The first, last, a random earlier and the n-2 paths keep those labels."""
from __future__ import annotations

import solv

from ..finding import Finding

NAME = "upgrade"
SPLIT = ("format", "machine")


def run(ctx) -> list[Finding]:
    out = []
    sources = ctx.solver_sources()      # every path a device can take; the real PMs run four of them
    if not sources:
        return [Finding("info", NAME, "upgrade.first-release", "-", "first release: no earlier release to upgrade from")]
    for fmt in ctx.formats():
        for m in ctx.machines():
            allpkgs, _cand = ctx.feed_set(fmt, m)
            by_nv = {(a.name, a.version): a for a in allpkgs}
            for why, rel in sources:
                wanted = ctx.image_set(rel, m)
                if not wanted:
                    continue
                installed = [by_nv[k] for k in wanted if k in by_nv]
                subject = f"{rel.name}->candidate"
                if len(installed) < len(wanted):
                    out.append(Finding("warning", NAME, "upgrade.not-in-feeds", subject, f"{fmt}/{m.name}: {len(wanted) - len(installed)} packages "
                                       f"of the {rel.name} image are not in the feeds", scope=f'{fmt}/{m.name}'))
                pool = ctx.feed_pool(fmt, m)
                with pool.installed(installed):
                    problems, trans = pool.solve([pool.upgrade_all_job()])
                    out += _findings(fmt, m, why, rel, subject, problems, trans)
    return out


def _findings(fmt, m, why, rel, subject, problems, trans) -> list[Finding]:
    out = []
    ctxinfo = {"from": rel.name, "path": why, "machine": m.name, "format": fmt}
    for p in problems:
        out.append(Finding("error", NAME, "upgrade.unsolvable", subject, f"{fmt}/{m.name}: upgrading the {rel.name} image ({why}) "
                           f"is unsolvable: {p}", ctxinfo, scope=f'{fmt}/{m.name}/{p}'))
    if trans is None:
        return out
    replaced = set()
    for s in trans.newsolvables():
        replaced.add(s.name)
        for dep in (solv.SOLVABLE_PROVIDES, solv.SOLVABLE_OBSOLETES):
            replaced |= {str(d).split(" ")[0] for d in s.lookup_deparray(dep)}
    for s in trans.steps():
        if trans.steptype(s, solv.Transaction.SOLVER_TRANSACTION_SHOW_ACTIVE) == solv.Transaction.SOLVER_TRANSACTION_ERASE \
                and s.name not in replaced:
            out.append(Finding("error", NAME, "upgrade.removes", s.name, f"{fmt}/{m.name}: upgrading the {rel.name} image ({why}) "
                               f"removes {s.name} and nothing replaces it", ctxinfo, scope=f'{fmt}/{m.name}/{rel.name}'))
    out.append(Finding("info", NAME, "upgrade.clean", subject, f"{fmt}/{m.name}: {rel.name} image ({why}) upgrades cleanly: "
                       f"{len(trans.newsolvables())} packages new or upgraded", ctxinfo, scope=f'{fmt}/{m.name}'))
    return out
