"""The candidate against the last release: buildhistory changes, and the rule devices depend on —
one name, version and arch never gets other bytes."""
from __future__ import annotations

from ... import model
from ...yocto import buildhistory as bh
from ..finding import Finding

NAME = "buildhistory"


def state_of(ctx, arts) -> bh.State | None:
    b = next((a for a in arts if a.kind == model.BUILDHISTORY), None)
    if not b:
        return None
    cache = ctx.work / "buildhistory"
    cache.mkdir(exist_ok=True)
    src = ctx.store.objects.path(b.sha256)
    link = cache / f"{b.sha256}.bundle"
    if not link.exists():
        link.symlink_to(src)
    return bh.read_rev(bh.open_bundle(link, cache), "HEAD")


def run(ctx) -> list[Finding]:
    out = []
    published = {}
    for a in ctx.store.db.released_packages():
        published[(a.format, a.arch, a.name, a.version)] = a
    for a in ctx.artifacts:
        if a.kind != model.PACKAGE:
            continue
        old = published.get((a.format, a.arch, a.name, a.version))
        if old and old.sha256 != a.sha256:
            out.append(Finding("error", NAME, "buildhistory.content-differs", a.name, f"{a.format} {a.name} {a.version} ({a.arch}) has other content than "
                               "the released package of the same name, version and arch: devices would never get it "
                               "(bump PR)", {"path": a.path, "released": old.sha256, "candidate": a.sha256}, scope=f'{a.format}/{a.arch}/{a.version}'))
    new = state_of(ctx, ctx.artifacts)
    if new is None:
        return out + [Finding("warning", NAME, "buildhistory.missing", "-", "no buildhistory in the candidate (INHERIT += \"buildhistory\")")]
    if ctx.last is None:
        return out + [Finding("info", NAME, "buildhistory.first-release", "-", "first release: nothing to compare buildhistory with")]
    old = state_of(ctx, ctx.release_artifacts(ctx.last))
    if old is None:
        return out + [Finding("info", NAME, "buildhistory.no-baseline", "-", f"release {ctx.last.name} has no buildhistory to compare with")]
    for f in bh.compare(old, new, NAME):
        f.details["against"] = ctx.last.name
        out.append(f)
    return out
