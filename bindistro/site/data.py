"""The data of the feed viewer, read from what a publish tree serves: releases.json and each release's
signed manifest (which files, which release), plus what the store knows of those files (control
data, the payload gate's file lists, CVE scans). Every API document and every page is made from the
one `SiteData` this returns, so the site, the JSON API and `device check` cannot disagree."""
from __future__ import annotations

import json
import sys
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BindistroError
from ..formats import get as get_format
from ..formats.base import RELATIONS
from ..spec import Spec
from ..store import Store
from .memo import Memo

SBOM_SUFFIXES = (".spdx.json", ".spdx.tar.zst")
SEP = "\x1f"      # between the fields of a memo's file row
DETAILS = ("summary", "description", "license", "homepage", "section", "recipe", *RELATIONS)     # Format.details()
MAX_MANIFEST = 1 << 30       # our own signed files; bounded all the same


@dataclass(slots=True, eq=False)
class Details:
    """Format.details() of one published file as a record: a world's history holds 100,000s of
    them, and a 12-key dict each was the largest thing a release's site kept. (Fields in DETAILS'
    order: a row of the memo is their values; a dataclass's __init__ made them 4x as fast as a
    setattr per field.)"""
    summary: str
    description: str
    license: str
    homepage: str
    section: str
    recipe: str
    depends: tuple
    recommends: tuple
    provides: tuple
    replaces: tuple
    conflicts: tuple

    @classmethod
    def of(cls, values, same: dict) -> Details:
        """From Format.details() (a dict) or a memo's row of its values, each value the one object
        in `same` equal to it (a relation list as a tuple): the same summaries, licenses and names
        come in every format and version of a package, and JSON or control data gives each its own
        copy (at 20,000 names x 22 releases, 190 MB of the site's peak)."""
        def one(v):
            if type(v) is list:
                v = tuple(same.setdefault(x, x) for x in v)
            return same.setdefault(v, v)
        return cls(*map(one, [values[k] for k in DETAILS] if isinstance(values, dict) else values))

    def __getitem__(self, k: str):
        return getattr(self, k)

    def get(self, k: str, default=None):
        return getattr(self, k, default)

    def values(self) -> list:
        return [getattr(self, k) for k in DETAILS]


if tuple(Details.__dataclass_fields__) != DETAILS:      # (a relation added to RELATIONS needs its field)
    raise ImportError("site.data.Details: its fields are not DETAILS")


@dataclass(slots=True)
class PackageFile:
    """One published package file and the releases that carried it (slots: a world's history
    holds 100,000s)."""
    name: str
    version: str
    format: str
    arch: str
    path: str                # in the publish tree
    size: int
    sha256: str
    staged: str              # sha256 of the file as staged (a signed rpm's differs): the payload gate's key
    # indexes into SiteData.releases, ascending, never empty (an array: a world's files x releases
    # are millions): [0] is the first release that carried it, [-1] the last
    releases: array = field(default_factory=lambda: array("I"))
    feed: str = field(init=False, default="")     # the path's directory (one object per feed)

    def __post_init__(self) -> None:
        self.feed = sys.intern(self.path.rsplit("/", 1)[0])


class Contents:
    """Staged sha256 -> the payload's file paths (file_paths of the payload gate's list), each read
    from the store when first wanted: a release's site needs those of the packages it changed, and
    decoding the whole history's was a tenth of it at distro scale. Which objects have a list at
    all is read once, up front (a package page says whether its files are known)."""

    def __init__(self, store: Store):
        self.store = store
        self.known = store.db.payload_checked()
        self.lists: dict[str, list[str]] = {}

    def __contains__(self, sha: str) -> bool:
        return sha in self.known

    def load(self, shas) -> None:
        """Read the lists of `shas` not read yet, in one go."""
        need = sorted({s for s in shas if s in self.known and s not in self.lists})
        if need:
            self.lists.update(self.store.db.payload_files_of(need, file_paths))

    def get(self, sha: str, default=None):
        if sha not in self.lists:
            self.load([sha])
        return self.lists.get(sha, default)


@dataclass
class SiteData:
    product: str
    eol: str | None
    formats: list[str]
    releases: list[dict]                        # releases.json entries + manifest fields, in sequence order
    files: dict[str, PackageFile]               # publish path -> package file
    details: dict[str, Details]                 # publish path -> Format.details() of its control data
    contents: Contents                          # staged sha256 -> payload file paths (file_paths)
    cves: dict[str, list[dict]]                 # release -> CVE findings
    keys: list[dict]
    url: str
    series: list[dict] = field(default_factory=list)   # releases.json's series (none before series)

    def in_release(self, i: int) -> dict[tuple[str, str], PackageFile]:
        """(format, name) -> the package file release i ships (its newest, if the build had two)."""
        out: dict[tuple[str, str], PackageFile] = {}
        for f in self.files.values():
            r = f.releases      # (ascending: most files are one run of releases, no scan)
            if r[0] <= i <= r[-1] and (r[-1] - r[0] + 1 == len(r) or i in r):
                k = (f.format, f.name)
                if k not in out or (f.version != out[k].version       # (arches of one version: no compare)
                                    and get_format(f.format).version_cmp(f.version, out[k].version) > 0):
                    out[k] = f
        return out


class _Kept(dict):
    """path -> Details, each made from the memo's row when first wanted: a release's site reads
    those of the newest files and of what changed, and making every one of the history's was a
    second of it at distro scale."""

    def __init__(self, memo: Memo):
        super().__init__()
        self.memo, self.rows = memo, {}       # rows: path -> its file id in the memo

    def __missing__(self, path: str) -> Details:
        n, m = self.rows[path], self.memo       # (KeyError: not a file of the tree, as a dict's)
        # (the memo's values are distinct objects already: no `same` to share them through)
        x = self[path] = Details(*[m.values[i] for i in m.ids[n * m.width:(n + 1) * m.width]])
        return x


def file_paths(members: list[str]) -> list[str]:
    """Payload member names as absolute paths, sorted, directories that hold other members left out
    ("./usr/lib/foo" holding "./usr/lib/foo/bar" is left out even with "./usr/lib/foo.so" between)."""
    # interned: the same paths come in every format and version of a package (a world's history: 900,000)
    paths = {sys.intern("/" + p) for m in members                 # ("./.profile" keeps its dot)
             if (p := (m[2:] if m.startswith("./") else m).strip("/")) and p != "."}
    s = sorted(paths)
    # what a directory holds sorts right after it, but after its siblings "p-x" and "p.x" ('-' and
    # '.' sort before '/'): found by bisection, not by looking at the next path alone
    return [p for i, p in enumerate(s) if not ((j := bisect_left(s, p + "/", i + 1)) < len(s) and s[j].startswith(p + "/"))]


def _read_json(path: Path, what: str, shown: Path | None = None):
    """`shown`: the name in messages (the tree's, not the generation being built)."""
    shown = shown or path
    try:
        if path.stat().st_size > MAX_MANIFEST:
            raise BindistroError(f"{shown}: larger than {MAX_MANIFEST >> 20} MB")
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise BindistroError(f"{shown}: missing ({what})") from None
    except ValueError as e:
        raise BindistroError(f"{shown}: not JSON ({str(e)[:100]})") from None


def _fields(m: dict) -> dict:
    """What the site shows of a release from its manifest."""
    arts = m.get("artifacts", [])
    return {"candidate": m.get("candidate"), "eol": m.get("eol"), "feed_root": m.get("feed_root", "feeds"),
            "verify": m.get("verify") or {}, "feeds": m.get("feeds") or {},
            "machines": m.get("machines") if isinstance(m.get("machines"), dict) else {},
            "waivers": m.get("waivers") or [],
            "images": [a for a in arts if a.get("kind") == "image"],
            "sources": [a for a in arts if a.get("kind") == "sources"],
            "sdk": [a for a in arts if a.get("kind") == "sdk"]}


def _releases(root: Path, entries: list[dict], memo: Memo | None, shown: Path
              ) -> tuple[list[dict], dict[str, PackageFile], dict[str, int]]:
    """Each listed release with its manifest's fields, every package file with the releases that
    list it, and each file's id in the memo's table. The manifests the memo vouches for (the same
    files, in the same order) are not read."""
    trusted = bool(memo and entries and memo.manifest(0, entries[0]["manifest"]))
    # id -> "path SEP name SEP version SEP format SEP arch SEP size SEP sha256": one str per file, not a
    # list of seven objects (a world's history is 100,000s of files, held through the whole build)
    table: list[str] = memo.files if trusted else []
    paths = [row.split(SEP, 1)[0] for row in table]
    ids = {p: n for n, p in enumerate(paths)}
    chain: list[list] = []
    rels, files, now = [], {}, set()
    # file id -> the release it was (re)added in, while listed: its releases are runs, added as
    # ranges (a release at a time was an append per file per release, millions at distro scale)
    opened: dict[int, int] = {}
    for i, entry in enumerate(entries):
        e = memo.manifest(i, entry["manifest"]) if trusted else None
        if e is None:
            if trusted and memo is not None:
                memo.vouched = i        # (the releases before this one are the last build's)
            trusted = False
            st = memo.stat(entry["manifest"]) if memo else None     # (before reading: a later change only misses)
            m = _read_json(root / entry["manifest"], f"manifest of release {entry['release']}", shown / entry["manifest"])
            got = set()
            for a in m.get("artifacts", []):
                if a.get("kind") == "package":
                    n = ids.get(a.get("path"))
                    if n is None:
                        row = [str(a.get(k, "")) for k in ("path", "name", "version", "format", "arch", "size", "sha256")]
                        if any(SEP in x for x in row) or not isinstance(a.get("size"), int) or not all(row):
                            raise BindistroError(f"{shown / entry['manifest']}: package entry {row[0][:200]!r}: a field "
                                                 "missing or holding a control character, or a size that is not a number")
                        n = ids[a["path"]] = len(table)
                        table.append(SEP.join(row))
                        paths.append(a["path"])
                    got.add(n)
            e = [entry["manifest"], st, _fields(m), sorted(got - now), sorted(now - got)]
        chain.append(e)
        now.difference_update(e[4])     # (in place: a new set per release was O(releases x packages))
        now.update(e[3])
        rels.append({"release": entry["release"], "sequence": entry["sequence"], "created": entry["created"],
                     "manifest": entry["manifest"], "series": entry.get("series"),
                     "signed": (root / (entry["manifest"] + ".asc")).exists(), **e[2]})
        for n in e[4]:      # dropped: listed from its (re)adding to the release before this one
            start = opened.pop(n, None)
            if start is not None:
                files[paths[n]].releases.extend(range(start, i))
        for n in e[3]:      # in the order first listed, as the site always had them
            opened[n] = i
            if paths[n] not in files:
                path, name, version, fmt, arch, size, sha = table[n].split(SEP)
                files[path] = PackageFile(sys.intern(name), sys.intern(version), sys.intern(fmt), sys.intern(arch),
                                          path, int(size), sha, sha)
    if trusted and memo is not None:
        memo.vouched = len(entries)
    for n, start in opened.items():     # still listed by the last release
        files[paths[n]].releases.extend(range(start, len(entries)))
    if memo is not None:
        memo.manifests, memo.files = chain, table
    return rels, files, ids


def collect(spec: Spec, store: Store, root: Path, memo: Memo | None = None) -> SiteData:
    """The data of the tree (or generation) at `root`, which this project published (`memo`: what
    the last build of it read, see memo.py)."""
    listing = _read_json(root / "releases.json", "the release listing", spec.publish_path / "releases.json")
    table = memo.files if memo is not None else None
    rels, files, ids = _releases(root, listing.get("releases", []), memo, spec.publish_path)
    # a published file's control data never changes: its details come from the memo, once made (its
    # rows follow the ids of the memo's table: only when _releases kept that table)
    if memo is not None:
        memo.details_of(len(DETAILS), keep=memo.files is table)
    details: dict[str, Details] = _Kept(memo) if memo is not None else {}
    staged = memo.staged if memo is not None else []
    need, same = [], {}
    for path, f in files.items():
        n = ids[path]
        s = staged[n] if n < len(staged) else None
        if s is not None:
            f.staged, details.rows[path] = s, n
            continue
        need.append(f)
    for i in range(0, len(need), 5000):     # (a full build: every file's control data, decoded a part at a time)
        part = need[i:i + 5000]
        metas = store.db.published_meta(sorted({(f.sha256, f.format) for f in part}))
        for f in part:
            meta, f.staged = metas.get((f.sha256, f.format), ({}, f.sha256))
            details[f.path] = Details.of(get_format(f.format).details(meta), same)
            if memo is not None:
                memo.set_detail(ids[f.path], f.staged, details[f.path].values())
    del same
    contents = Contents(store)
    records = None

    def scan(rel: dict) -> list[dict]:
        """The release's last `cve scan`, or (never scanned) its image SBOMs against the records now."""
        nonlocal records
        from .. import cve
        found = cve.last_scan(store, rel["release"])
        sboms = [(a["path"], store.objects.path(a["sha256"])) for a in rel["images"] if a["path"].endswith(SBOM_SUFFIXES)]
        if not found and sboms:
            records = cve.load_records(store) if records is None else records
            found = cve.evaluate(sboms, records, cve.triage_map(store, rel["release"]))
        return [{"cve": f["cve"], "package": f["package"], "version": f.get("version", ""), "status": f["status"],
                 "reason": f.get("reason", ""), "severity": f.get("severity", "unknown")} for f in found]
    cves = {r["release"]: scan(r) for r in rels}
    keys = [{"fingerprint": k, "path": f"keys/{k}.asc"} for k in spec.release_keys
            if (root / "keys" / f"{k}.asc").exists()]
    return SiteData(listing.get("product", spec.product), listing.get("eol"), list(spec.formats), rels, files,
                    details, contents, cves, keys, spec.publish_url.rstrip("/"),
                    [x for x in listing.get("series", []) if isinstance(x, dict)])

