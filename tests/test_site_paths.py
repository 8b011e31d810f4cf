"""The files/ and basenames/ shards a release patches (site/paths.py) are those a whole build makes,
over random histories: packages of two feeds ship paths from a small pool (shared paths, shared file
names, more rows per name than a search shows), files are dropped and come back, versions move on."""
from __future__ import annotations

import json
from array import array

from hypothesis import given, settings
from hypothesis import strategies as st

from bindistro.site import paths
from bindistro.site.api import Api
from bindistro.formats.base import RELATIONS
from bindistro.site.data import DETAILS, Details, PackageFile, SiteData

POOL = [f"/{d}/{b}" for d in ("usr/bin", "usr/lib", "etc", "usr/share/doc/x") for b in ("README", "f0", "a.so", "conf")]


class Lists:
    """data.Contents without a store: staged sha256 -> file paths."""

    def __init__(self, lists: dict[str, list[str]]):
        self.lists = lists

    def __contains__(self, sha: str) -> bool:
        return sha in self.lists

    def load(self, shas) -> None:
        pass

    def get(self, sha: str, default=None):
        return self.lists.get(sha, default)


def site_data(history: list[dict], upto: int) -> SiteData:
    """SiteData of the first `upto` releases of `history` (release i: {(name, feed): (version, paths)})."""
    files: dict[str, PackageFile] = {}
    lists: dict[str, list[str]] = {}
    for i, rel in enumerate(history[:upto]):
        for (name, feed), (version, ps) in sorted(rel.items()):
            path = f"{feed}/{name}_{version}.ipk"
            f = files.get(path)
            if f is None:
                sha = f"{name}-{feed}-{version}"
                f = files[path] = PackageFile(name, version, "ipk", "core2-64", path, 1, sha, sha, array("I"))
                lists[sha] = sorted(ps)
            f.releases.append(i)
    empty = Details.of({k: [] if k in RELATIONS else "" for k in DETAILS}, {})
    return SiteData("p", None, ["ipk"], [{"release": f"r{i}", "manifest": f"m{i}"} for i in range(upto)], files,
                    {p: empty for p in files}, Lists(lists), {}, [], "http://x")


package = st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.sampled_from(["feeds/ipk/x", "feeds/ipk/y"]))
release = st.dictionaries(package, st.tuples(st.sampled_from(["1", "2", "3"]),
                                             st.sets(st.sampled_from(POOL), max_size=6)), max_size=6)


@settings(max_examples=150, deadline=None)
@given(st.lists(release, min_size=2, max_size=6), st.sampled_from([3, 50]))
def test_patched_shards_are_the_whole_builds(history, shown):
    # (3 rows per file name: a search's cut, which the real 50 never reaches here)
    keep, paths.BASENAME_ROWS = paths.BASENAME_ROWS, shown
    try:
        check(history)
    finally:
        paths.BASENAME_ROWS = keep


def check(history: list[dict]) -> None:
    # a file (name, feed, version) has one payload: the first release that ships it decides its paths
    seen: dict = {}
    history = [{k: (v, seen.setdefault((*k, v), ps)) for k, (v, ps) in rel.items()} for rel in history]
    before = Api(site_data(history, 1))
    docs = {rel: json.dumps(x) for rel, x in paths.full(before)}
    counts = before.path_counts()
    for n in range(2, len(history) + 1):
        whole = Api(site_data(history, n))
        want = {rel: json.dumps(x) for rel, x in paths.full(whole)}
        a = Api(site_data(history, n))
        put = {}
        assert paths.patch(a, lambda rel: json.loads(docs[rel]), counts, lambda rel, x: put.__setitem__(rel, json.dumps(x)))
        assert {**docs, **put} == want, n
        assert a.counts == whole.path_counts()
        docs, counts = want, a.counts
