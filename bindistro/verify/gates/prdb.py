"""PR database: the candidate's must contain everything the last release's had, never lower.
A build whose PR DB was not restored hands out revisions again from 0, and devices stop upgrading."""
from __future__ import annotations

from ... import model
from ...yocto import prserv
from ..finding import Finding

NAME = "prdb"


def rows_of(ctx, arts):
    a = next((a for a in arts if a.kind == model.PRDB), None)
    return None if a is None else prserv.read_db(ctx.store.objects.path(a.sha256))


def run(ctx) -> list[Finding]:
    try:
        new = rows_of(ctx, ctx.artifacts)
    except ValueError as e:
        return [Finding("error", NAME, "prdb.unreadable", "cache/prserv.sqlite3", str(e))]
    if new is None:
        return [Finding("warning", NAME, "prdb.missing", "cache/prserv.sqlite3", "no PR database in the candidate: revisions cannot be checked")]
    if ctx.last is None:
        return [Finding("info", NAME, "prdb.first-release", "cache/prserv.sqlite3", f"first release: {len(new)} PR entries")]
    old = rows_of(ctx, ctx.release_artifacts(ctx.last))
    if old is None:
        return [Finding("info", NAME, "prdb.no-baseline", "cache/prserv.sqlite3", f"release {ctx.last.name} published no PR database")]
    have = {(v, a, c): x for v, a, c, x in new}
    missing = [(v, a, c) for v, a, c, _x in old if (v, a, c) not in have]
    lower = [(v, a, c, x, have[(v, a, c)]) for v, a, c, x in old if (v, a, c) in have and have[(v, a, c)] < x]
    out = []
    if missing:
        out.append(Finding("error", NAME, "prdb.not-restored", "cache/prserv.sqlite3",
                           f"{len(missing)} of the {len(old)} PR entries of release {ctx.last.name} are missing: the PR "
                           "database was not restored (run `bindistro restore BUILD_DIR` before building)",
                           {"examples": [f"{v} {a}" for v, a, _c in missing[:10]]}))
    for v, a, _c, was, now in lower[:50]:
        out.append(Finding("error", NAME, "prdb.value-lower", v, f"PR value for {v} ({a}) went from {was} to {now}", scope=a))
    old_max, new_max = prserv.maxima(old), prserv.maxima(new)
    for key, m in sorted(old_max.items()):
        if key in new_max and new_max[key] < m:
            out.append(Finding("error", NAME, "prdb.max-lower", key[0], f"highest PR value for {key[0]} ({key[1]}) fell from {m} to {new_max[key]}", scope=key[1]))
    if not out:
        out.append(Finding("info", NAME, "prdb.kept", "cache/prserv.sqlite3", f"all {len(old)} PR entries of release {ctx.last.name} "
                           f"kept, none lower; {len(new) - len(old)} new"))
    return out
