"""The JSON API (static files under api/v1/), made from SiteData. Its schema is in schema/*.json,
published beside it; a change that breaks a reader is api/v2, never an edit of v1's meaning.

Lookups a static site must answer without a server are sharded by a hash a browser computes as
cheaply as we do (FNV-1a of the UTF-8 key, two hex digits: 256 shards): a search fetches one shard."""
from __future__ import annotations

import functools
import re

from ..formats import get as get_format
from ..model import CVE_STATUSES as STATUSES
from .data import PackageFile, SiteData

VERSION = "v1"
_PAGE_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def fnv(data: bytes, h: int = 0x811C9DC5) -> int:
    """FNV-1a (32-bit) of `data`, continued from the state `h` (the hash of what came before it)."""
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def shard(key: str, digits: int = 2) -> str:
    """FNV-1a (32-bit) of the key's UTF-8 bytes, its low `digits` hex digits (site/static/site.js
    computes the same)."""
    return f"{fnv(key.encode()) & ((1 << 4 * digits) - 1):0{digits}x}"


class PathShards:
    """shard() of many paths, each directory's bytes hashed once: FNV-1a reads a key left to right,
    so the hash of "/usr/lib/" is where every path under it starts (a byte at a time in Python, a
    world's paths were a tenth of a release's site)."""

    def __init__(self, digits: int):
        self.mask, self.digits, self.dirs = (1 << 4 * digits) - 1, digits, {}

    def __call__(self, path: str) -> str:
        i = path.rfind("/") + 1             # (0: no directory)
        h = self.dirs.get(head := path[:i])
        if h is None:
            h = self.dirs[head] = fnv(head.encode())
        return f"{fnv(path[i:].encode(), h) & self.mask:0{self.digits}x}"


def digits_for(entries: int, per_shard: int = 2000) -> int:
    """Hex digits of a sharded lookup: as few shards as keep each under ~per_shard entries (a small
    distro gets 16 files, not 256 mostly empty ones)."""
    d = 1
    while entries > per_shard * 16 ** d and d < 4:
        d += 1
    return d


def letter(name: str) -> str:
    c = name[:1].lower()
    return c if c.isascii() and c.isalnum() else "_"


def safe(name: str) -> bool:
    """Whether a name can be a file name of the site (package and release names always are; a
    hostile one is listed but gets no page)."""
    return bool(_PAGE_SAFE.fullmatch(name)) and len(name) <= 200


class Api:
    """Every document of api/v1, keyed by its path below api/v1/."""

    def __init__(self, d: SiteData):
        self.d = d
        self.names = [r["release"] for r in d.releases]
        self._per_release: dict[int, dict] = {}
        self.by_name: dict[str, list[PackageFile]] = {}
        for f in d.files.values():
            self.by_name.setdefault(f.name, []).append(f)
        self.newest = {n: self._newest(fs) for n, fs in self.by_name.items()}
        self.provided_by: dict[str, set[str]] = {}
        for n, per_fmt in self.newest.items():
            for f in per_fmt.values():
                for p in self.d.details[f.path]["provides"]:
                    if p != n:
                        self.provided_by.setdefault(p, set()).add(n)
        self.rdepends: dict[str, set[str]] = {}
        for n, per_fmt in self.newest.items():
            for f in per_fmt.values():
                det = self.d.details[f.path]
                for dep in det["depends"] + det["recommends"]:
                    for target in {dep} | self.provided_by.get(dep, set()):
                        if target != n:
                            self.rdepends.setdefault(target, set()).add(n)
        self._path_rows: dict[str, tuple | list[tuple]] | None = None
        self.counts: dict[str, int] | None = None
        self.cves_of: dict[str, list[dict]] = {}
        for rel, found in d.cves.items():
            for c in found:
                self.cves_of.setdefault(c["package"], []).append(dict(c, release=rel))

    def per_release(self, i: int) -> dict[tuple[str, str], PackageFile]:
        if i not in self._per_release:      # only the releases whose documents are made
            self._per_release[i] = self.d.in_release(i)
        return self._per_release[i]

    def package_key(self, name: str) -> tuple:
        """What package(name) is made of: its files (a published path's bytes, control data and
        payload never change) with the releases that carried them, who requires it, its CVEs."""
        # (by_name's order is that of the history, the same in every build of it: not sorted)
        return (name, [(f.path, f.staged in self.d.contents, self.names[f.releases[0]], self.last(f))
                       for f in self.by_name[name]],      # (last decides which is newest)
                sorted(self.rdepends.get(name, ())), self.cves_of.get(name, []))

    def release_key(self, i: int) -> tuple:
        """What release(i) is made of: its listing and manifest fields, the manifests of it and the
        one before (immutable: what it ships and what changed), its CVE findings, the formats."""
        return (self.d.releases[i], self.d.releases[i - 1]["manifest"] if i else None, self.d.cves.get(self.names[i], []),
                self.d.formats)

    def paths(self, f: PackageFile) -> list[str]:
        return self.d.contents.get(f.staged, [])

    def path_rows(self) -> dict[str, tuple | list[tuple]]:
        """path -> its row, or a list of rows (one per package and feed that ship it): (name, format,
        feed, first version, first release, last version, last release (None: the latest still ships
        it), index of the last release). The paths of one file share its row's tuple: a world's
        history is over a million paths, and a row object per path was most of a release's memory."""
        if self._path_rows is None:
            self._path_rows = self.rows_from(self.d.files.values())
        return self._path_rows

    def rows_from(self, files) -> dict[str, tuple | list[tuple]]:
        """path_rows() made of `files` alone: a row depends only on the files of its package and feed
        that ship its path, so those of a few packages give exactly their rows (paths.patch)."""
        out: dict[str, tuple | list[tuple]] = {}
        files = sorted(files, key=lambda f: f.releases[0])
        self.d.contents.load(f.staged for f in files)
        for f in files:
            new = (f.name, f.format, f.feed, f.version, self.names[f.releases[0]], f.version, self.last(f),
                   f.releases[-1])
            moved: dict[tuple, tuple] = {}      # an older row -> the same row ending with f
            for p in self.paths(f):
                cur = out.get(p)
                if cur is None:
                    out[p] = new
                    continue
                rows = cur if isinstance(cur, list) else [cur]
                for j, r in enumerate(rows):
                    if r[0] == f.name and r[2] == f.feed:
                        if new[7] >= r[7]:
                            rows[j] = moved.get(r) or moved.setdefault(r, r[:5] + new[5:])
                        break
                else:
                    rows.append(new)
                out[p] = rows if len(rows) > 1 else rows[0]
        return out

    def rows_of(self, p: str) -> list[tuple]:
        """The files/ rows of path `p`: [name, format, feed, first version, first release, last
        version, last release], by name and feed."""
        cur = self.path_rows()[p]
        if not isinstance(cur, list):
            return [cur[:7]]            # (tuples: JSON arrays as lists are, without a list per row)
        return [r[:7] for r in sorted(cur, key=lambda r: (r[0], r[2]))]

    def path_counts(self) -> dict[str, int]:
        """Rows of files/ and names of basenames/ (their shard digits follow from them). Set by a
        patch of the last build's shards, which knows them without every path's rows."""
        if self.counts is None:
            rows = self.path_rows()
            self.counts = {"rows": sum(len(r) if isinstance(r, list) else 1 for r in rows.values()),
                           "basenames": len({p.rsplit("/", 1)[-1] for p in rows})}
        return self.counts

    @functools.cached_property
    def _digits(self) -> dict[str, int]:
        provides = {p for per in self.newest.values() for f in per.values() for p in self.d.details[f.path]["provides"]}
        n = self.path_counts()
        return {"files": digits_for(n["rows"]), "basenames": digits_for(n["basenames"]),
                "provides": digits_for(len(provides))}

    def shard_digits(self) -> dict[str, int]:
        return dict(self._digits)

    def last(self, f: PackageFile) -> str | None:
        """The last release that shipped `f`; None while the latest release still does (so a page
        changes when its package does, not with every release)."""
        i = f.releases[-1]
        return None if i == len(self.names) - 1 else self.names[i]

    @staticmethod
    def _newest(files: list[PackageFile]) -> dict[str, PackageFile]:
        out: dict[str, PackageFile] = {}
        for f in files:
            old = out.get(f.format)     # the one shipped last; of those, the highest version
            if old is None or f.releases[-1] > old.releases[-1] or (
                    f.releases[-1] == old.releases[-1] and f.version != old.version      # (arches of one version)
                    and get_format(f.format).version_cmp(f.version, old.version) > 0):
                out[f.format] = f
        return out

    # --- documents ---------------------------------------------------------------------------------
    def index(self) -> dict:
        d = self.d
        latest = d.releases[-1]["release"] if d.releases else None
        return {"api": VERSION, "product": d.product, "eol": d.eol, "url": d.url, "latest": latest,
                "formats": d.formats,
                "releases": [{"release": r["release"], "sequence": r["sequence"], "created": r["created"],
                              "eol": r["eol"], "manifest": r["manifest"], "signed": r["signed"], "series": r["series"],
                              "summary": r["verify"].get("summary", {})} for r in d.releases],
                "feeds": d.releases[-1]["feeds"] if d.releases else {},
                "series": d.series,
                "keys": d.keys, "packages": len(self.by_name),
                "shards": self.shard_digits(),
                "security": {"policy": "SECURITY.md", "contact": ".well-known/security.txt"}}

    def release(self, i: int) -> dict:
        r = self.d.releases[i]
        now = self.per_release(i)
        found = self.d.cves.get(r["release"], [])
        counts = {s: sum(1 for c in found if c["status"] == s) for s in STATUSES}
        return {"api": VERSION, "release": r["release"], "sequence": r["sequence"], "created": r["created"],
                "eol": r["eol"], "previous": self.names[i - 1] if i else None, "manifest": r["manifest"],
                "signed": r["signed"], "feeds": r["feeds"],
                "verify": {"summary": r["verify"].get("summary", {}), "gates": r["verify"].get("gates", []),
                           "created": r["verify"].get("created"), "waivers": len(r["waivers"]),
                           "report": f"site/releases/{r['release']}/verify.html"},
                "cve": {"counts": counts, "findings": found},
                "images": [{"machine": a.get("machine", ""), "name": a["path"].rsplit("/", 1)[-1], "path": a["path"],
                            "size": a["size"], "sha256": a["sha256"]} for a in r["images"]],
                "sdk": [{"machine": a.get("machine", ""), "name": a["path"].rsplit("/", 1)[-1], "path": a["path"],
                         "size": a["size"], "sha256": a["sha256"]} for a in r["sdk"]],
                "sources": [{"recipe": a.get("recipe", ""), "path": a["path"], "size": a["size"], "sha256": a["sha256"]}
                            for a in r["sources"]],
                "changes": self.changes(i),
                "packages": {fmt: sorted([f.name, f.version, f.arch] for (x, _), f in now.items() if x == fmt)
                             for fmt in self.d.formats}}

    def changes(self, i: int) -> dict:
        now = self.per_release(i)
        before = self.per_release(i - 1) if i else {}
        out = {"added": [], "upgraded": [], "downgraded": [], "removed": []}
        for (fmt, name), f in sorted(now.items()):
            old = before.get((fmt, name))
            if old is None:
                out["added"].append({"name": name, "format": fmt, "arch": f.arch, "version": f.version})
                continue
            c = 0 if f.version == old.version else get_format(fmt).version_cmp(f.version, old.version)
            if c:
                out["upgraded" if c > 0 else "downgraded"].append(
                    {"name": name, "format": fmt, "arch": f.arch, "from": old.version, "version": f.version})
        takers: dict[tuple[str, str], set[str]] = {}      # (format, name) -> what replaces or provides it now
        for (fmt, n), f in now.items():
            det = self.d.details[f.path]
            for x in det["replaces"] + det["provides"]:
                takers.setdefault((fmt, x), set()).add(n)
        for (fmt, name), old in sorted(before.items()):
            if (fmt, name) not in now:
                by = sorted(takers.get((fmt, name), ()))
                out["removed"].append({"name": name, "format": fmt, "arch": old.arch, "from": old.version,
                                       "replaced_by": by})
        return out

    def package(self, name: str) -> dict:
        files = sorted(self.by_name[name], key=lambda f: (f.format, f.arch, f.releases[0]))
        newest = self.newest[name]
        self.d.contents.load(f.staged for f in newest.values())
        head = self.d.details[next(iter(newest.values())).path]
        return {"api": VERSION, "name": name, "summary": head["summary"], "description": head["description"],
                "license": head["license"], "homepage": head["homepage"], "section": head["section"],
                "versions": [{"version": f.version, "format": f.format, "arch": f.arch, "feed": f.feed,
                              "path": f.path, "size": f.size, "sha256": f.sha256,
                              "first": self.names[f.releases[0]], "last": self.last(f)} for f in files],
                "newest": {fmt: {"version": f.version, "arch": f.arch, "path": f.path,
                                 **{k: [x for x in self.d.details[f.path][k] if x != name] for k in
                                    ("depends", "recommends", "provides", "replaces", "conflicts")},
                                 "files": self.paths(f)}
                           for fmt, f in sorted(newest.items())},
                "required_by": sorted(self.rdepends.get(name, ())),
                "cves": sorted(self.cves_of.get(name, []), key=lambda c: (c["cve"], c["release"]))}

    def versions(self, fmt: str) -> dict:
        """name -> [[version, arch, [[first, last] release index ranges]]]: what release shipped
        which version, for the device check (in the browser and `bindistro device check`)."""
        out: dict[str, list] = {}
        for f in self.d.files.values():
            if f.format == fmt:
                out.setdefault(f.name, []).append([f.version, f.arch, _ranges(f.releases)])
        return {"api": VERSION, "format": fmt, "releases": self.names, "packages": dict(sorted(out.items()))}

    def shards(self):
        """(path below api/v1/, document), one at a time: names/<letter>.json, provides/<xx>.json,
        cves/<ID>.json, cves.json (files/ and basenames/: paths.py)."""
        # every shard exists, empty or not: a search never meets a 404 (browsers log those as errors)
        dg = self.shard_digits()
        docs: dict[str, dict] = {f"names/{c}.json": {} for c in "0123456789abcdefghijklmnopqrstuvwxyz_"}
        for name in sorted(self.by_name):
            newest = self.newest[name]
            f = next(iter(newest.values()))
            docs.setdefault(f"names/{letter(name)}.json", {})[name] = [f.version, self.d.details[f.path]["summary"][:80]]
        docs.update({f"provides/{i:0{dg['provides']}x}.json": {} for i in range(16 ** dg["provides"])})
        for name, per_fmt in self.newest.items():
            for f in per_fmt.values():
                for p in self.d.details[f.path]["provides"]:
                    if p == name:
                        continue
                    lst = docs[f"provides/{shard(p, dg['provides'])}.json"].setdefault(p, [])
                    if [name, f.format] not in lst:
                        lst.append([name, f.format])
        for k, v in docs.items():
            yield k, {"api": VERSION, "entries": dict(sorted(v.items()))}
        del docs
        ids: dict[str, list] = {}
        for rel, found in self.d.cves.items():
            for c in found:
                ids.setdefault(c["cve"], []).append(dict(c, release=rel))
        for cid, found in ids.items():
            if safe(cid):
                yield f"cves/{cid}.json", {"api": VERSION, "cve": cid, "findings": found}
        yield "cves.json", {"api": VERSION, "cves": {cid: sorted({r["status"] for r in found}) for cid, found in sorted(ids.items())}}


def _ranges(idx: list[int]) -> list[list[int]]:
    """[[first, last], ...] of ascending distinct release indexes (PackageFile.releases)."""
    if idx and idx[-1] - idx[0] + 1 == len(idx):      # one run, as most files are: no loop
        return [[idx[0], idx[-1]]]
    out: list[list[int]] = []
    for i in idx:
        if out and out[-1][1] == i - 1:
            out[-1][1] = i
        else:
            out.append([i, i])
    return out
