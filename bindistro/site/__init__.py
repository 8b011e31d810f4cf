"""The feed viewer: a static site (site/) and a JSON API (api/v1/) in the publish tree, written by every
release into the generation it publishes (so pages, feeds and manifests switch together), and by
`bindistro site build` for a whole tree. No server process: any web server or CDN serves them.

Pages and API documents are rewritten only when their bytes change: a generation's files are hard
links shared with the generations before it, so an unchanged page costs nothing."""
from __future__ import annotations

import datetime as dt
import functools
import json
import os
from pathlib import Path

import jinja2
from markupsafe import Markup, escape

from ..bulk import no_gc
from ..cache import cache_dir
from ..progress import progress
from ..spec import Spec
from ..store import Store
from ..store.objects import write_bytes_atomic
from . import api as apimod
from . import paths
from .data import collect
from .memo import Memo
from .memo import key as memokey

HERE = Path(__file__).parent


class _Compiled(jinja2.FileSystemBytecodeCache):
    """Templates compiled by an earlier run (keyed by their source and Python's version): compiling
    the eight of them was ~0.08 s of every release. A cache that cannot be written only means
    compiling again."""

    def dump_bytecode(self, bucket) -> None:
        try:
            super().dump_bytecode(bucket)
        except OSError:
            pass


@functools.cache
def _env() -> jinja2.Environment:
    cache = cache_dir() / "templates"
    try:
        cache.mkdir(parents=True, exist_ok=True)
        compiled = _Compiled(str(cache))
    except OSError:
        compiled = None
    return jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                              bytecode_cache=compiled)


class Writer:
    def __init__(self, root: Path):
        self.root = root
        self.written = self.same = self.bytes = 0

    def put(self, rel: str, data: bytes) -> bool:
        """Write `rel` unless it holds these bytes already; whether it was written."""
        p = self.root / rel
        self.bytes += len(data)
        try:
            if p.stat().st_size == len(data) and p.read_bytes() == data:
                self.same += 1
                return False
        except FileNotFoundError:
            pass                # (write_bytes_atomic makes its directories)
        write_bytes_atomic(p, data, sync=False)      # the generation is synced as a whole
        self.written += 1
        return True

    def json(self, rel: str, doc) -> bool:
        return self.put(rel, json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode())


def snippets(spec: Spec, url: str, machines: dict, feed_root: str = "feeds") -> dict[str, dict[str, str]]:
    """format -> machine -> the text files `device-config` writes for it (keys aside), so the
    home page shows exactly what a device gets (of the newest release's series)."""
    from ..device import config_files
    out: dict[str, dict[str, str]] = {}
    for machine, per in sorted(machines.items()):
        for fmt, archs in per.items() if isinstance(per, dict) else ():
            files = config_files(spec.product, url, fmt, [str(a) for a in archs], spec.release_keys, spec.ipk_feed_signature,
                                 feed_root=feed_root)
            out.setdefault(fmt, {})[machine] = "".join(f"# /{p}\n{data.decode()}\n" for p, data in files.items()
                                                       if not p.startswith(("etc/systemd/", "usr/")))
    return out


def build(spec: Spec, store: Store, root: Path, release_files=None, force: bool = False) -> dict:
    """Write site/ and api/v1/ of the tree or generation at `root` (its releases.json and manifests
    are the current ones). `release_files(candidate, release)`: {file name: text} written under
    site/releases/<release>/ once (a released candidate's report and notes do not change).

    A page is made from its API document alone: when the document's bytes did not change and the
    page exists, it is not rendered again (a release renders the pages of what changed); `force`
    renders every page (templates of a newer bindistro). A package's or release's document is not
    even made when the memo shows its inputs unchanged and the file the one made from them."""
    with no_gc():      # (not while pages render: a whole build with it off peaked ~95 MB higher)
        memo = Memo.load(store.dir, root, use=not force)
        d = collect(spec, store, root, memo)
        a = apimod.Api(d)
    v = f"api/{apimod.VERSION}"
    w = Writer(root)
    env = _env()
    today = dt.date.today().isoformat()
    ended = {str(x.get("series")) for x in d.series if x.get("eol") and str(x["eol"])[:10] <= today}
    supported = {r["release"] for r in d.releases
                 if not (d.eol and d.eol <= today) and not (r["eol"] and r["eol"][:10] <= today)
                 and str(r.get("series")) not in ended}
    latest = d.releases[-1]["release"] if d.releases else None

    def needed(rel: str, changed: bool) -> bool:
        if changed or force or not os.path.exists(f"{root}/site/{rel}"):     # (a str: 5,000 of them)
            return True
        w.same += 1
        return False

    def page(rel: str, template: str, depth: int, changed: bool = True, **kw) -> None:
        if needed(rel, changed):
            render(rel, template, depth, **kw)

    def render(rel: str, template: str, depth: int, **kw) -> None:
        top = "../" * depth
        html = env.get_template(template).render(
            product=d.product, latest=latest, top=top, root="../" + top, index=index,
            pkg=lambda n: Markup(f'<a href="{top}packages/{n}.html">{escape(n)}</a>')
            if n in a.by_name and apimod.safe(n) else n,
            rel=lambda r: Markup(f'<a href="{top}releases/{r}.html">{escape(r)}</a>'),
            cve=lambda c: Markup(f'<a href="{top}cves/{c}.html">{escape(c)}</a>') if apimod.safe(c) else c,
            size=_size, **kw)
        w.put(f"site/{rel}", html.encode())

    def doc(rel: str, k: str, make) -> tuple[dict | None, bool]:
        """The document at `rel` (None: the memo vouches for the file, it was not made) and whether
        its bytes changed."""
        if memo.same(rel, k):
            w.same += 1
            return None, False
        x = make()
        changed = w.json(rel, x)
        memo.wrote(rel, k)
        return x, changed

    # the API; files/ and basenames/ first: index.json gives their counts
    def put(rel: str, x: dict) -> None:
        w.json(f"{v}/{rel}", x)
        memo.wrote(f"{v}/{rel}", PATHS)
    shards_were = _patch_paths(a, memo, root, v, put)
    if shards_were is None:
        for rel, x in paths.full(a):
            put(rel, x)
        shards_were = "made"
    elif shards_were == "kept":
        w.same += len(paths.names(a.path_counts()))
    memo.paths = {"releases": len(d.releases), **a.path_counts()}
    index = a.index()
    w.json(f"{v}/index.json", index)
    for schema in sorted((HERE / "schema").glob("*.json")):
        w.put(f"{v}/schema/{schema.name}", schema.read_bytes())
    for fmt in d.formats:       # (a list per file of the history, freed when written: no cycles)
        with no_gc():
            w.json(f"{v}/versions/{fmt}.json", a.versions(fmt))
    shards, shard_changed = {}, {}      # (only the names and cves shards are kept: their pages)
    for rel, x in a.shards():
        shard_changed[rel] = w.json(f"{v}/{rel}", x)
        if rel.startswith(("names/", "cves/")):
            shards[rel] = x
    pages = [n for n in sorted(a.by_name) if apimod.safe(n)]
    for name in progress(pages, "site: packages"):
        p, changed = doc(f"{v}/packages/{name}.json", memokey(a.package_key(name)), lambda: a.package(name))
        if needed(f"packages/{name}.html", changed):
            render(f"packages/{name}.html", "package.html", 1, p=p or a.package(name))

    # the pages
    for name in ("site.css", "site.js"):
        w.put(f"site/static/{name}", (HERE / "static" / name).read_bytes())
    page("index.html", "home.html", 0, eol=d.eol, supported=supported, snippets=snippets(
        spec, d.url, d.releases[-1]["machines"] if d.releases else {}, d.releases[-1]["feed_root"] if d.releases else "feeds"),
        series=d.series)
    page("search.html", "search.html", 0)
    page("device.html", "device.html", 0)
    for i, r in enumerate(d.releases):
        name = r["release"]
        x, changed = doc(f"{v}/releases/{name}.json", memokey(a.release_key(i)), lambda: a.release(i))
        if needed(f"releases/{name}.html", changed):
            render(f"releases/{name}.html", "release.html", 1, r=x or a.release(i))
        if release_files and r.get("candidate") is not None and (
                force or not (root / f"site/releases/{name}/verify.html").exists()):
            for fname, text in release_files(r["candidate"], name).items():
                w.put(f"site/releases/{name}/{fname}", text.encode())
    letters = sorted({apimod.letter(n) for n in pages})
    for i, l in enumerate(letters):          # (at most 37; each links every letter)
        names = [(n, row) for n, row in sorted(shards.get(f"names/{l}.json", {}).get("entries", {}).items())
                 if apimod.safe(n)]
        rel = "packages/index.html" if i == 0 else f"packages/index-{l}.html"
        k = memokey((d.product, letters, l, names))
        if memo.same(f"site/{rel}", k):      # a release changes the names under a few letters
            w.same += 1
            continue
        render(rel, "letters.html", 1, letters=letters, this=l, names=names)
        memo.wrote(f"site/{rel}", k)
    if not letters:
        page("packages/index.html", "letters.html", 1, letters=[], this="", names=[])
    for key, x in shards.items():
        if key.startswith("cves/"):
            page(f"{key[:-5]}.html", "cve.html", 1, shard_changed[key], c=x)
    memo.save()
    return {"releases": len(d.releases), "packages": len(pages), "files_written": w.written,
            "files_unchanged": w.same, "bytes": w.bytes, "path_shards": shards_were}


PATHS = "paths"      # the memo's key of a files/ or basenames/ shard (its inputs: memo.paths)


def _patch_paths(a: apimod.Api, memo: Memo, root: Path, v: str, put) -> str | None:
    """The files/ and basenames/ shards of the last build, when each is still the very file it wrote
    (memo.same): "kept" as they are when that build had every release (the same manifests: `eol`, a
    CVE policy), "patched" with what the newest release changed (paths.py) when it had every release
    but the newest, each written through `put` as it is done; None: they are to be made whole."""
    old = memo.old_paths
    n = len(a.names)
    kept = bool(old) and old["releases"] == n and memo.vouched >= n
    if not kept and (not old or old["releases"] != n - 1 or n < 2 or memo.vouched < n - 1):
        return None
    if not all(memo.same(f"{v}/{rel}", PATHS) for rel in paths.names(old)):
        return None
    if kept:        # a row depends only on the files, their releases and their file lists
        a.counts = {"rows": old["rows"], "basenames": old["basenames"]}
        return "kept"

    def read(rel: str) -> dict:
        p = root / v / rel
        if p.stat().st_size > MAX_SHARD:
            raise ValueError(f"{p}: larger than {MAX_SHARD >> 20} MB")
        return json.loads(p.read_bytes())
    try:
        return "patched" if paths.patch(a, read, old, put) else None
    except (OSError, ValueError, KeyError, TypeError):       # (making them whole rewrites every one)
        a.counts = None
        return None


MAX_SHARD = 1 << 30         # our own files (the memo vouches for them); bounded all the same


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def release_files(spec: Spec, store: Store):
    """release_files for build(): the stored verify report of a release's candidate as `verify
    --html` writes it, and its release notes as `bindistro notes` writes them."""
    from .. import verify
    from ..notes import release_notes
    from ..verify.render import to_html

    def files(cid: int, release: str) -> dict[str, str]:
        rep = verify.report(store, cid)
        html = to_html(rep, f"verify report of release {release} (candidate {cid})") if rep else \
            f"<!doctype html><title>{release}</title><p>No verify report is stored for candidate {cid}.</p>\n"
        return {"verify.html": html, "notes.md": release_notes(spec, store, cid)}
    return files


def rebuild(spec: Spec, store: Store) -> dict:
    """`bindistro site build`: the site of the whole tree, in a generation of its own."""
    from .. import publish
    with publish.transaction(spec, store, "site build") as g:
        if not (g.dir / "releases.json").exists():
            from ..errors import BindistroError
            raise BindistroError(f"{spec.publish_path}: nothing published yet (no releases.json)")
        stats = build(spec, store, g.dir, release_files(spec, store), force=True)

        def record(n: int) -> None:
            with store.db.begin() as conn:
                store.db.set_generation(conn, n)
        g.commit(record)
    return stats
