"""`bindistro stage PATH`: record a build's artifacts as a candidate.

Everything is read and checked first; objects and the candidate are written only when no error was
found, so bad input leaves the store as it was.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from .. import model
from ..errors import BadInput, Problem
from ..feed import detect_format
from ..formats import FORMATS, Format
from ..formats import get as get_format
from ..formats.base import PackageInfo, compare_with_index, index_entries, scan_files
from ..model import Artifact
from ..progress import counter
from ..spec import Spec
from ..store import Store
from ..store.objects import makedirs, sync_fs, writing_back
from ..ingest import Job, Result, ingest_all

WRITE_BACK_FROM = 64 << 20      # bytes to copy from which the disk starts writing them while they are read


def sqlite_snapshot(src: Path, dest: Path) -> None:
    s = sqlite3.connect(f"file:{src}?mode=ro", uri=True)
    try:
        d = sqlite3.connect(dest)
        try:
            s.backup(d)
        finally:
            d.close()
    finally:
        s.close()


CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
BAD_IN_FIELD = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")     # a control field may hold tabs and newlines
# what a package's name, version and architecture may hold: they become index fields, file and
# directory names in the publish tree, and solver input (Debian policy's characters, OE's `_`)
NAME_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._-]*")
VERSION_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+~:_-]*")


_CHECKS = (("name", NAME_OK, "+._-"), ("version", VERSION_OK, ".+~:_-"), ("architecture", NAME_OK, "+._-"))


def unsafe_fields(info, arch: str) -> list[str]:
    out = [f"package {label} {v!r} is not valid (letters, digits and {chars})"
           for (label, ok, chars), v in zip(_CHECKS, (info.name, info.version, arch))
           if not isinstance(v, str) or not ok.fullmatch(v) or ".." in v]
    out += [f"control field {k} holds a control character" for k, v in info.fields.items()
            if isinstance(v, str) and BAD_IN_FIELD.search(v)]
    return out


SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


@dataclass
class Layout:
    root: Path
    topdir: Path | None = None
    deploy: Path | None = None
    feeds: list[tuple[Format, Path]] = field(default_factory=list)


def discover(path: Path) -> Layout:
    """A build directory (TOPDIR), a tmp/deploy directory, or a single feed directory."""
    if not path.is_dir():
        raise BadInput([Problem(str(path), "not a directory (expected a build dir, tmp/deploy or a feed)")])
    lay = Layout(path)
    if (path / "tmp" / "deploy").is_dir():
        lay.topdir, lay.deploy = path, path / "tmp" / "deploy"
    elif any((path / d).is_dir() for d in (*FORMATS, "images")):
        lay.deploy = path
    if lay.deploy:
        lay.feeds = [(f, lay.deploy / f.name) for f in FORMATS.values() if (lay.deploy / f.name).is_dir()]
    else:
        try:
            lay.feeds = [(detect_format(path), path)]
        except ValueError as e:
            raise BadInput([Problem(str(path), "no packages, images or build artifacts found here")]) from e
    return lay


def _rel(p: Path, root: Path) -> str:
    return str(p.relative_to(root))


@dataclass
class _Pending:
    job: Job
    art: dict                  # Artifact fields but the sums
    feed: tuple | None = None  # (feed index in Stager.feeds, path below the feed dir) for packages


class Stager:
    """Collects what a build holds (stage_feed, stage_images, stage_topdir), then reads it all in
    one pass (run): each new file once, unchanged ones (same size, mtime and inode as when they
    were hashed, object present) not at all."""

    def __init__(self, store: Store, spec: Spec | None = None):
        self.store = store
        self.spec = spec
        self.problems: list[Problem] = []
        self.arts: list[Artifact] = []
        self.tmps: list[tuple[str, str]] = []       # (copy in the incoming dir, sha256) to store
        self.stats: list[dict] = []                 # filestat rows of files hashed now
        self.pending: list[_Pending] = []
        self.feeds: list[tuple[Format, Path, dict]] = []
        self.stored: set[int] = set()               # id()s of arts whose control data is package_meta's
        self.hashed = self.cached = self.hashed_bytes = 0
        self.listed: set[str] = set()               # every file path run() looked at
        self.root = ""                              # what is staged (for messages)

    def _add(self, path: Path, art_kw: dict, root: Path, fmt: str | None = None, feed=None) -> None:
        self.pending.append(_Pending(Job(str(path), fmt, None, True), dict(path=_rel(path, root), **art_kw), feed))

    def stage_feed(self, fmt: Format, feed_dir: Path, root: Path) -> None:
        # compared with the files after they are read: only what the comparison needs is kept (the
        # fields of a world's indexes were a fifth of staging's memory)
        entries, probs = index_entries(fmt, feed_dir, fields=False)
        self.problems += probs
        self.feeds.append((fmt, feed_dir, entries))
        # strings, not a Path per file: pathlib's parsing was a tenth of staging a 10,000-file feed
        base, under = str(feed_dir), _rel(feed_dir, root)
        under = "" if under == "." else under + "/"
        for rel in scan_files(fmt, feed_dir):
            if CONTROL_CHARS.search(rel):
                # a newline in a file name would write a stanza of its own into the signed index
                self.problems.append(Problem(repr(f"{base}/{rel}"), "file name holds a control character"))
                continue
            self.pending.append(_Pending(Job(f"{base}/{rel}", fmt.name, None, True),
                                         dict(path=under + rel, kind=model.PACKAGE, format=fmt.name),
                                         (len(self.feeds) - 1, rel)))

    def run(self, incoming: Path) -> None:
        """Hash, copy and parse everything pending; fills arts, problems, tmps and stats."""
        objects = self.store.objects
        by_fmt: dict[str, list[_Pending]] = {}
        stats = {}
        self.listed = {p.job.path for p in self.pending}
        for p in self.pending:
            j = p.job
            stats[id(p)] = os.stat(j.path)
            j.size = stats[id(p)].st_size
            j.known = self.store.known(j.path, stats[id(p)]) if not p.art.get("snapshot") else None
        have = objects.present({p.job.known[0] for p in self.pending if p.job.known})
        for p in self.pending:
            j = p.job
            j.copy = not (j.known and j.known[0] in have)
            if j.fmt and not j.copy:
                by_fmt.setdefault(j.fmt, []).append(p)
        # unchanged package files staged before: their control data is in the DB already (of it, only
        # the fields looked at here are read back; the candidate's rows point at package_meta's)
        done: dict[int, Result] = {}
        for fmt, group in by_fmt.items():
            fields = self.store.db.package_fields(fmt, sorted({p.job.known[0] for p in group}),
                                                  get_format(fmt).KNOWN_FIELDS)
            for p in group:
                hit = fields.get(p.job.known[0])
                if hit and get_format(fmt).fields_fit(hit[2], os.path.basename(p.job.path)):
                    st = stats[id(p)]
                    arch = hit[2].get("Architecture") or hit[2].get("Arch") or ""
                    done[id(p)] = Result(sha256=p.job.known[0], md5=p.job.known[1], size=st.st_size,
                                         stat=(st.st_size, st.st_mtime_ns, st.st_ino),
                                         info=PackageInfo(hit[0], hit[1], arch, hit[2]), stored=True)
        todo = [p for p in self.pending if id(p) not in done]
        copying = sum(p.job.size for p in todo if p.job.copy)
        with counter("staging: hashing and reading new files", len(todo)) as advance:
            results = ingest_all([p.job for p in todo], incoming, advance, objects.root,
                                 (lambda: writing_back(incoming)) if copying > WRITE_BACK_FROM else nullcontext)
        done.update({id(p): r for p, r in zip(todo, results)})
        sums: list[dict] = [{} for _ in self.feeds]
        names: list[dict] = [{} for _ in self.feeds]
        for p in self.pending:
            r = done[id(p)]
            path = p.job.path
            if r.tmp and not r.problems:
                self.tmps.append((r.tmp, r.sha256))
            made_here = p.art.get("snapshot")
            if r.sha256 and made_here != "db":
                if p.job.copy or not p.job.known:
                    self.hashed += 1
                    self.hashed_bytes += r.size
                    if not made_here:
                        self.stats.append(dict(path=path, size=r.stat[0], mtime_ns=r.stat[1], inode=r.stat[2],
                                               sha256=r.sha256, md5=r.md5))
                else:
                    self.cached += 1
            if p.feed is not None and r.sha256:
                sums[p.feed[0]][p.feed[1]] = (r.sha256, r.md5, r.size)
            if r.problems:
                self.problems += [Problem(path, m) for m in r.problems]
                continue
            art = dict(p.art)
            art.pop("snapshot", None)
            if p.job.fmt:
                fmt = self.feeds[p.feed[0]][0]
                info = r.info
                arch = fmt.feed_arch(info, p.feed[1])
                bad = unsafe_fields(info, arch)
                if bad:
                    self.problems += [Problem(path, m) for m in bad]
                    continue
                art.update(name=info.name, version=info.version, arch=arch, meta=info.fields)
                names[p.feed[0]][p.feed[1]] = (info.name, info.version, info.arch)
            self.arts.append(Artifact(sha256=r.sha256, md5=r.md5, size=r.size, **art))
            if r.stored:
                self.stored.add(id(self.arts[-1]))
        self.pending = []       # (read: only arts, tmps and stats go on to the store)
        del done, results, stats
        for (fmt, feed_dir, entries), s, n in zip(self.feeds, sums, names):
            self.problems += compare_with_index(fmt, feed_dir, entries, s, n)

    def stage_images(self, images: Path, root: Path) -> None:
        for mdir in sorted(p for p in images.iterdir() if p.is_dir()):
            for f in sorted(mdir.iterdir()):
                # OE's unversioned names are symlinks to the timestamped files: keep the real files
                if f.is_file() and not f.is_symlink():
                    self._add(f, dict(kind=model.IMAGE, name=f.name, arch=mdir.name,
                                      meta={"machine": mdir.name}), root)

    def stage_sources(self, sources: Path, root: Path) -> None:
        """The archiver class's output (ARCHIVER_MODE src/recipe/dumpdata), <TARGET_SYS>/<PF>/<file>;
        a recipe built for several targets has one directory per target, published once by PF."""
        for tdir in sorted(p for p in sources.iterdir() if p.is_dir() and not p.is_symlink()):
            for pf in sorted(p for p in tdir.iterdir() if p.is_dir() and not p.is_symlink()):
                for f in sorted(pf.iterdir()):
                    if not f.is_file() or f.is_symlink():
                        continue
                    if CONTROL_CHARS.search(f"{tdir.name}/{pf.name}/{f.name}") or not SOURCE_NAME.fullmatch(pf.name):
                        self.problems.append(Problem(repr(str(f)), "archiver output with an unusable name"))
                        continue
                    self._add(f, dict(kind=model.SOURCES, name=f.name, meta={"pf": pf.name, "target": tdir.name}), root)

    def stage_sdk(self, sdk: Path, root: Path) -> None:
        """populate_sdk / populate_sdk_ext output: installers (*.sh, *-ext.sh), their
        .host.manifest / .target.manifest and testdata. SDK_NAME ends in -${MACHINE}: the machine is
        the spec's machine named before -toolchain."""
        machines = [m.name for m in self.spec.machines] if self.spec else []
        for f in sorted(sdk.iterdir()):
            if not f.is_file() or f.is_symlink():
                continue
            if CONTROL_CHARS.search(f.name) or not SOURCE_NAME.fullmatch(f.name):
                self.problems.append(Problem(repr(str(f)), "SDK file with an unusable name"))
                continue
            head = f.name.split("-toolchain", 1)[0]
            machine = next((m for m in sorted(machines, key=len, reverse=True) if head.endswith("-" + m)), "any")
            self._add(f, dict(kind=model.SDK, name=f.name, meta={"machine": machine}), root)

    def stage_downloads(self, dl: Path) -> None:
        """DL_DIR (OE's default ${TOPDIR}/downloads): the fetched files at its top, as a source mirror
        serves them (git2_*.tar.gz mirror tarballs included); not the fetchers' stamps, locks and
        working directories (git2/, svn/, uninative/)."""
        if not dl.is_dir():
            self.problems.append(Problem(str(dl), "sources.downloads is on but there is no downloads directory",
                                         severity="warning"))
            return
        for f in sorted(dl.iterdir()):
            if not f.is_file() or f.is_symlink() or f.name.endswith((".done", ".lock", ".tmp")) or f.name.startswith("."):
                continue
            if CONTROL_CHARS.search(f.name) or not SOURCE_NAME.fullmatch(f.name):
                self.problems.append(Problem(repr(str(f)), "downloaded file with an unusable name"))
                continue
            self._add(f, dict(kind=model.DOWNLOADS, name=f.name), dl.parent)

    def _add_tmp(self, src: Path, rel: str, kind: str, name: str, what: str = "file") -> None:
        """A file made here (a database snapshot, a bundle): stored, never remembered by its stat;
        a database snapshot is not counted as a file read either."""
        self.pending.append(_Pending(Job(str(src), None, None, True),
                                     dict(path=rel, kind=kind, name=name, snapshot=what)))

    def _add_snapshot(self, path: Path, kind: str, root: Path, tmpdir: Path) -> None:
        """A live SQLite database (the PR server or hash server may be writing it): stored as a
        consistent snapshot made with SQLite's online backup API, never as the file itself."""
        snap = tmpdir / f"{kind}-{path.name}"
        try:
            sqlite_snapshot(path, snap)
        except sqlite3.Error as e:
            self.problems.append(Problem(str(path), f"cannot read this SQLite database ({e})"))
            return
        self._add_tmp(snap, _rel(path, root), kind, path.name, "db")

    def stage_topdir(self, top: Path, tmpdir: Path) -> None:
        for rel, kind in (("conf/local.conf", model.CONF), ("conf/bblayers.conf", model.CONF),
                          ("conf/auto.conf", model.CONF), ("conf/bindistro.conf", model.CONF)):
            p = top / rel
            if p.is_file():
                self._add(p, dict(kind=kind, name=p.name), top)
        for rel, kind in (("cache/prserv.sqlite3", model.PRDB), ("cache/hashserv.db", model.HASHEQUIV)):
            p = top / rel
            if p.is_file():
                self._add_snapshot(p, kind, top, tmpdir)
        logs = top / "tmp" / "log" / "cooker"
        if logs.is_dir():
            for f in sorted(logs.rglob("*.log")):
                if f.is_file() and not f.is_symlink():
                    self._add(f, dict(kind=model.LOG, name=f.name, meta={"machine": f.parent.name}), top)
        if self.spec and self.spec.sources.downloads:
            self.stage_downloads(top / "downloads")
        sstate = top / "sstate-cache"
        if sstate.is_dir():
            for f in sorted(sstate.rglob("sstate:*")):
                if f.is_file() and not f.is_symlink() and not f.name.endswith((".tmp", ".lock")):
                    self._add(f, dict(kind=model.SSTATE, name=f.name), top)
        bh = top / "buildhistory"
        if (bh / ".git").exists():
            bundle = tmpdir / "buildhistory.bundle"
            r = subprocess.run(["git", "-C", str(bh), "bundle", "create", str(bundle), "--all"],
                               capture_output=True, text=True)
            if r.returncode != 0:
                self.problems.append(Problem(str(bh), f"cannot bundle buildhistory: {r.stderr.strip().splitlines()[-1:]}"))
            else:
                self._add_tmp(bundle, "buildhistory.bundle", model.BUILDHISTORY, "buildhistory.bundle")


    def check_arches(self) -> None:
        if not self.spec:
            return
        found = {(a.format, a.arch) for a in self.arts if a.kind == model.PACKAGE}
        feeds = {fmt: {get_format(fmt).feed_name(x) for x in self.spec.feeds()} for fmt in {f for f, _ in found}}
        for _fmt, arch in sorted(x for x in found if x[1] not in feeds[x[0]]):
            self.problems.append(Problem(str(self.spec.path), f"packages of architecture {arch!r} have no feed "
                                         "in this spec (add it to a machine's archs); release will refuse them",
                                         severity="warning"))


def find_layers(top: Path | None, kas_files: list[Path], layer_files: list[Path]) -> tuple[list, str] | None:
    """Layer URLs + commits: from what the user names, else setup-layers.json beside the build,
    else buildhistory's metadata-revs (commits only)."""
    from ..yocto import layers as L
    for f in [*layer_files, *kas_files]:
        return L.load(f), str(f)
    if top:
        for f in (top / "setup-layers.json", top / "conf" / "setup-layers.json", top.parent / "setup-layers.json"):
            if f.is_file():
                return L.from_setup_layers(f), str(f)
        revs = top / "buildhistory" / "metadata-revs"
        if revs.is_file():
            return L.from_metadata_revs(revs.read_text()), str(revs)
    return None


def stage(store: Store, path: Path, spec: Spec | None = None, kas_files: list[Path] = (),
          layer_files: list[Path] = ()) -> dict:
    from ..yocto import layers as L
    path = path.resolve()
    lay = discover(path)
    st = Stager(store, spec)
    st.root = str(path)
    for k in kas_files:
        for f in (k, k.with_name(k.stem + ".lock.yml")):
            if f.is_file():
                st._add(f.resolve(), dict(kind=model.CONF, name=f.name), f.resolve().parent)
                st.pending[-1].art["path"] = f"kas/{f.name}"
    try:
        found = find_layers(lay.topdir, list(kas_files), list(layer_files))
    except (ValueError, OSError, KeyError) as e:
        raise BadInput([Problem(str((list(layer_files) + list(kas_files) or [path])[0]), f"cannot read layers: {e}")]) from None
    layer_data = (L.to_json(found[0]).encode(), found[1]) if found else None
    return _stage(store, st, lay, path, layer_data, spec.current if spec else None)


def _stage(store: Store, st: Stager, lay: Layout, path: Path, layer_data, series: str | None = None) -> dict:
    with tempfile.TemporaryDirectory(dir=store.dir) as tmp, store.objects.adding(store.referenced_objects):
        for fmt, feed_dir in lay.feeds:
            st.stage_feed(fmt, feed_dir, path)
        if lay.deploy and (lay.deploy / "images").is_dir():
            st.stage_images(lay.deploy / "images", path)
        if lay.deploy and (lay.deploy / "sources").is_dir():
            st.stage_sources(lay.deploy / "sources", path)
        if lay.deploy and (lay.deploy / "sdk").is_dir():
            st.stage_sdk(lay.deploy / "sdk", path)
        if lay.topdir:
            st.stage_topdir(lay.topdir, Path(tmp))
        makedirs(store.objects.root)
        # the copies are renamed into place, so they are made on the objects' filesystem
        incoming = Path(tempfile.mkdtemp(prefix=".tmp-incoming-", dir=store.objects.root))
        try:
            st.run(incoming)
            _commit(store, st, incoming)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        if layer_data:
            sha = store.objects.add_bytes(layer_data[0])
            st.arts.append(Artifact(path="layers.json", kind=model.LAYERS, sha256=sha, size=len(layer_data[0]),
                                    name="layers.json", meta={"from": layer_data[1]}))
        warnings = [str(p) for p in st.problems]
        created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        with store.db.begin() as conn:
            cid = store.db.add_candidate(conn, str(path), created, st.arts, warnings, series, st.stored)
            store.db.save_filestats(conn, st.stats, store.stale_filestats(str(path), st.listed))
    out = summary(cid, str(path), created, st.arts, warnings)
    out["series"] = series
    out["hashed"], out["hash_cache_hits"], out["hashed_bytes"] = st.hashed, st.cached, st.hashed_bytes
    return out


def _commit(store: Store, st: Stager, incoming: Path) -> None:
    """Refuse on any error; else move the new copies into the object store."""
    st.check_arches()
    errors = [p for p in st.problems if p.severity == "error"]
    if errors:
        raise BadInput(st.problems)
    if not st.arts:
        raise BadInput([Problem(st.root, "nothing to stage: no packages, images or build artifacts")])
    if st.tmps:
        sync_fs(incoming)       # the copies' bytes are durable before any gets its final name
        store.objects.adopt(st.tmps)
        sync_fs(incoming)       # and so are the names


def summary(cid: int, source: str, created: str, arts: list[Artifact], warnings: list[str]) -> dict:
    kinds: dict[str, int] = {}
    for a in arts:
        kinds[a.kind] = kinds.get(a.kind, 0) + 1
    feeds: dict[str, int] = {}
    for a in arts:
        if a.kind == model.PACKAGE:
            k = f"{a.format}/{a.arch}"
            feeds[k] = feeds.get(k, 0) + 1
    return {"candidate": cid, "source": source, "created": created, "artifacts": len(arts),
            "kinds": kinds, "feeds": feeds, "warnings": warnings}
