"""Sources: every released package under a copyleft license has its recipe's archiver output
(`INHERIT += "archiver"`, tmp/deploy/sources/<TARGET_SYS>/<PF>/) in this candidate or in a release
published before. Which licenses count is OE's copyleft_filter rule (COPYLEFT_LICENSE_INCLUDE
'GPL* LGPL* AGPL*', EXCLUDE 'CLOSED Proprietary'), changeable in the spec's `sources:` with
exceptions per recipe, each with its reason."""
from __future__ import annotations

import fnmatch
import re

from ... import model
from ...formats import get as get_format
from ...formats.base import upstream_version
from ..finding import Finding

NAME = "sources"
_LICENSE = re.compile(r"[A-Za-z0-9.+_-]+")


def copyleft(license_expr: str, include: list[str], exclude: list[str]) -> list[str]:
    """The licenses of an OE license expression (`GPL-2.0-only & MIT`, `AFL-2.1 | GPL-2.0-or-later`)
    that match include and no exclude glob."""
    names = _LICENSE.findall(license_expr)
    return [n for n in names if any(fnmatch.fnmatchcase(n, g) for g in include)
            and not any(fnmatch.fnmatchcase(n, g) for g in exclude)]


def covers(pf: str, pn: str, pv: str) -> bool:
    """Whether archiver directory PF (${PN}-${PV}-${PR}) is recipe pn at package version pv. A git
    PV (1.0+gitAUTOINC+abc) is resolved in the package version (1.0+git0+abc): compare up to +git."""
    if not pf.startswith(pn + "-"):
        return False
    have = re.sub(r"^\d+_", "", pf[len(pn) + 1:].rsplit("-", 1)[0])     # EXTENDPE: "1_" for PE 1
    return have == pv or ("+git" in have and pv.startswith(have.split("+git", 1)[0] + "+git"))


def run(ctx) -> list[Finding]:
    pol = ctx.spec.sources
    need: dict[tuple[str, str], dict] = {}          # (recipe, PV) -> licenses, a package
    unknown = set()
    for a in ctx.artifacts:
        if a.kind != model.PACKAGE or a.format not in ctx.spec.formats:
            continue
        det = get_format(a.format).details(a.meta)
        lic = copyleft(det["license"], pol.copyleft, pol.exclude)
        if not lic:
            continue
        if not det["recipe"]:
            unknown.add(a.name)
            continue
        e = need.setdefault((det["recipe"], upstream_version(a.version)), {"licenses": set(), "package": a.name})
        e["licenses"].update(lic)
    have = {(a.meta.get("pf", ""), a.path) for a in ctx.artifacts if a.kind == model.SOURCES}
    published = {(p.split("/")[2], p) for p in ctx.store.db.published() if p.startswith("sources/") and p.count("/") >= 3}
    build = any(a.kind == model.CONF for a in ctx.artifacts)
    out = []
    for (pn, pv), e in sorted(need.items()):
        if pn in pol.exceptions:
            out.append(Finding("info", NAME, "sources.excepted", pn, f"recipe {pn} {pv}: no sources needed ({pol.exceptions[pn]})"))
            continue
        here = sorted(path for pf, path in have if covers(pf, pn, pv))
        before = sorted(path for pf, path in published if covers(pf, pn, pv))
        if here or before:
            continue
        # a build directory must carry them; a bare feed or deploy dir cannot: said, not refused
        out.append(Finding("error" if build else "warning", NAME, "sources.missing", pn,
                           f"recipe {pn} {pv} ({', '.join(sorted(e['licenses']))}, e.g. package {e['package']}): no archiver "
                           f"output (tmp/deploy/sources/*/{pn}-{pv}-*/) in this candidate nor in a published release; "
                           'INHERIT += "archiver" with ARCHIVER_MODE[src] = "original", or list the recipe under '
                           "sources.exceptions with a reason", scope=pv))
    for name in sorted(unknown)[:20]:
        out.append(Finding("warning", NAME, "sources.no-recipe", name, f"package {name} has a copyleft license but "
                           "names no recipe (no OE: field / source rpm): its sources cannot be checked"))
    out.append(Finding("info", NAME, "sources.summary", "-", f"{len(need)} copyleft recipe versions, "
                       f"{len({pf for pf, _ in have})} with archiver output in this candidate"))
    return out
