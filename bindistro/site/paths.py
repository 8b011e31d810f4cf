"""The files/ and basenames/ lookups of api/v1: every path ever shipped, sharded by a hash of the path
(of the file name). Made whole, or patched with what the newest release changed.

A release adds and drops a few % of the files, but the rows of their paths are spread over every
shard, and making every row again from every file list of the history was most of a release's site
at distro scale. A row (path, package, feed) depends only on the files of that package and feed that
ship the path, so the rows of the packages whose files came or went, merged into the last build's
shards, are the shards a whole build makes (test_site checks a release's site against a whole build)."""
from __future__ import annotations

from typing import Callable, Iterator

from .api import VERSION, Api, PathShards, digits_for, shard

BASENAME_ROWS = 50        # rows a file-name search returns per name (README, f0 ... are everywhere)


def _doc(entries: dict) -> dict:
    return {"api": VERSION, "entries": entries}


def full(a: Api) -> Iterator[tuple[str, dict]]:
    """(path below api/v1/, document) of every files/ and basenames/ shard, empty or not (a search
    never meets a 404). Each is made when it is written: together they hold every path ever shipped."""
    dg = a.shard_digits()
    rows = a.path_rows()
    files: dict[str, list[str]] = {f"{i:0{dg['files']}x}": [] for i in range(16 ** dg["files"])}
    bases: dict[str, list] = {}       # name -> [rows with it, the paths of the first BASENAME_ROWS]
    of = PathShards(dg["files"])
    for p in sorted(rows):
        files[of(p)].append(p)
        e = bases.setdefault(p.rsplit("/", 1)[-1], [0])
        if e[0] < BASENAME_ROWS:
            e.append(p)
        e[0] += len(rows[p]) if isinstance(rows[p], list) else 1
    for k, ps in files.items():
        yield f"files/{k}.json", _doc({p: a.rows_of(p) for p in ps})
    del files
    by_shard: dict[str, list[str]] = {f"{i:0{dg['basenames']}x}": [] for i in range(16 ** dg["basenames"])}
    for base in sorted(bases):
        by_shard[shard(base, dg["basenames"])].append(base)
    for k, names in by_shard.items():
        yield f"basenames/{k}.json", _doc({
            b: {"total": bases[b][0], "rows": [[p, *r] for p in bases[b][1:] for r in a.rows_of(p)][:BASENAME_ROWS]}
            for b in names})


def names(counts: dict) -> list[str]:
    """Every shard's path below api/v1/ for these counts (Api.path_counts)."""
    f, b = digits_for(counts["rows"]), digits_for(counts["basenames"])
    return [f"files/{i:0{f}x}.json" for i in range(16 ** f)] + [f"basenames/{i:0{b}x}.json" for i in range(16 ** b)]


def _listed(f, i: int) -> bool:
    """Whether release i listed file f (its releases ascend: only the last two can be i)."""
    r = f.releases
    return bool(r) and (r[-1] == i or (len(r) > 1 and r[-2] == i))


def patch(a: Api, old: Callable[[str], dict], counts: dict, put: Callable[[str, dict], None]) -> bool:
    """Patch the last build's shards with what the newest release changed, each written through
    `put` as it is done (one shard's document in memory at a time: together they are the whole
    history's paths). That build had every release but this one; `counts` are its path_counts(),
    `old(rel)` reads one of its documents. Sets a.counts. False, with nothing written, when the
    shard digits might change."""
    last = len(a.names) - 1
    moved = [f for f in a.d.files.values() if f.releases[-1] >= last - 1 and _listed(f, last) != _listed(f, last - 1)]
    groups = {(f.name, f.feed) for f in moved}
    rows = a.rows_from(f for f in a.d.files.values() if (f.name, f.feed) in groups)
    fd, bd = digits_for(counts["rows"]), digits_for(counts["basenames"])
    of = PathShards(fd)
    by_shard: dict[str, list[str]] = {}
    for p in sorted({p for f in moved for p in a.paths(f)}):
        by_shard.setdefault(f"files/{of(p)}.json", []).append(p)
    named: dict[str, list[str]] = {}        # file name -> the changed paths with it
    for ps in by_shard.values():
        for p in ps:
            named.setdefault(p.rsplit("/", 1)[-1], []).append(p)
    # at most every changed row and name is new: the digits stay unless that bound crosses them
    most = sum(len(rows[p]) if isinstance(rows[p], list) else 1 for ps in by_shard.values() for p in ps)
    if (digits_for(counts["rows"] + most), digits_for(counts["basenames"] + len(named))) != (fd, bd):
        return False

    new_keys, new_bases = 0, 0
    full_rows: dict[str, list] = {}         # each changed path's rows, all of them
    gained: dict[str, int] = {}             # file name -> rows its paths gained
    for rel in sorted(by_shard):
        entries = old(rel)["entries"]
        for p in by_shard[rel]:
            have = {(r[0], r[2]): r for r in entries.get(p, [])}
            mine = rows[p] if isinstance(rows[p], list) else [rows[p]]
            k = sum(1 for r in mine if (r[0], r[2]) not in have)
            have.update({(r[0], r[2]): list(r[:7]) for r in mine})
            entries[p] = full_rows[p] = [have[key] for key in sorted(have)]
            new_keys += k
            base = p.rsplit("/", 1)[-1]
            gained[base] = gained.get(base, 0) + k
        put(rel, _doc(dict(sorted(entries.items()))))
    bases: dict[str, list[str]] = {}
    for base in named:
        bases.setdefault(f"basenames/{shard(base, bd)}.json", []).append(base)
    for rel in sorted(bases):
        entries = old(rel)["entries"]
        for base in bases[rel]:
            e = entries.get(base)
            new_bases += e is None
            shown: dict[str, list] = {}
            for r in e["rows"] if e else ():
                shown.setdefault(r[0], []).append(r[1:])
            for p in named[base]:
                shown[p] = full_rows[p]
            entries[base] = {"total": (e["total"] if e else 0) + gained[base],
                             "rows": [[p, *r] for p in sorted(shown) for r in shown[p]][:BASENAME_ROWS]}
        put(rel, _doc(dict(sorted(entries.items()))))
    a.counts = {"rows": counts["rows"] + new_keys, "basenames": counts["basenames"] + new_bases}
    return True
