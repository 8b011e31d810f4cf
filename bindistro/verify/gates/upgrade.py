"""Upgrade solvability: the image package set of every earlier supported release, upgraded to the
candidate's cumulative feeds (libsolv, every package to its best version): a device on any release
is covered. The first, last, a random earlier and the n-2 paths keep those labels; the latest
release of each older series devices move from is a path too ("series-NAME"), and no package of an
older series may be newer than the candidate's (a backport the next branch lacks would be a
downgrade for every device that moves)."""
from __future__ import annotations

import solv

from ...formats import get as get_format
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
            out += backports(ctx, fmt, m)
            for why, rel in sources:
                installed, missing = ctx.installed_set(rel, fmt, m)
                if not installed:
                    continue
                subject = f"{rel.name}->candidate"
                if missing:
                    out.append(Finding("warning", NAME, "upgrade.not-in-feeds", subject, f"{fmt}/{m.name}: {missing} packages "
                                       f"of the {rel.name} image are not in its build's packages", scope=f'{fmt}/{m.name}'))
                pool = ctx.feed_pool(fmt, m)
                with pool.installed(installed):
                    problems, trans = pool.solve([pool.upgrade_all_job()])
                    out += _findings(fmt, m, why, rel, subject, problems, trans)
    return out


def backports(ctx, fmt, m) -> list[Finding]:
    """A package whose newest version in an older series sorts above the candidate's version of it."""
    out = []
    f = get_format(fmt)
    ours = f.newest((a.name, a.version) for a in ctx.packages(fmt, m))
    for rel in ctx.cross:
        names = {f.feed_name(a) for a in ctx.machine_of(rel, m).archs}
        theirs = f.newest((a.name, a.version) for a in ctx.series_history(rel.series)
                          if a.format == fmt and a.arch in names and a.name in ours)
        for name, v in sorted(theirs.items()):
            if f.version_cmp(v, ours[name]) > 0:
                out.append(Finding("error", NAME, "upgrade.backport-newer", name, f"{fmt}/{m.name}: {name} {v} of series "
                                   f"{rel.series} sorts above {ours[name]} of this candidate (series {ctx.spec.current}): "
                                   f"devices moving from {rel.series} would keep the older-series build; bump the "
                                   "version here (or PE) above it", {"series": rel.series, "theirs": v, "ours": ours[name]},
                                   scope=f"{fmt}/{m.name}"))
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
