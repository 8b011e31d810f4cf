"""`bindistro stage PATH`: record a build's artifacts as a candidate.

Everything is read and checked first; objects and the candidate are written only when no error was
found, so bad input leaves the store as it was.
"""
from __future__ import annotations

import datetime as dt
import re
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .. import model
from ..errors import BadInput, Problem
from ..feed import detect_format
from ..formats import FORMATS, Format
from ..formats.base import PackageError, compare_with_index, index_entries, scan_files
from ..model import Artifact
from ..progress import progress
from ..spec import Spec
from ..store import Store
from ..store.objects import ChangedWhileReading, hash_file


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
# what a package's name, version and architecture may hold: they become index fields, file and
# directory names in the publish tree, and solver input (Debian policy's characters, OE's `_`)
NAME_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9+._-]*")
VERSION_OK = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+~:_-]*")


def unsafe_fields(info, arch: str) -> list[str]:
    out = []
    for label, value, ok in (("name", info.name, NAME_OK), ("version", info.version, VERSION_OK),
                             ("architecture", arch, NAME_OK)):
        if not isinstance(value, str) or not ok.fullmatch(value) or ".." in value:
            out.append(f"package {label} {value!r} is not valid (letters, digits and {'+._-' if ok is NAME_OK else '.+~:_-'})")
    for k, v in info.fields.items():
        if isinstance(v, str) and CONTROL_CHARS.search(v.replace("\n", "").replace("\t", "")):
            out.append(f"control field {k} holds a control character")
    return out


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


class Stager:
    def __init__(self, store: Store, spec: Spec | None = None):
        self.store = store
        self.spec = spec
        self.problems: list[Problem] = []
        self.arts: list[Artifact] = []
        self.srcs: list[Path] = []        # source file of each artifact, same order
        self.stats: list[dict] = []

    def _add(self, path: Path, art_kw: dict, root: Path) -> Artifact:
        sha, md5, size, row = self.store.hash(path)
        a = Artifact(path=_rel(path, root), sha256=sha, md5=md5, size=size, **art_kw)
        self.arts.append(a)
        self.srcs.append(path)
        self.stats.append(row)
        return a

    def stage_feed(self, fmt: Format, feed_dir: Path, root: Path) -> None:
        entries, probs = index_entries(fmt, feed_dir)
        self.problems += probs
        sums, names = {}, {}
        files = scan_files(fmt, feed_dir)
        fmt.prepare([feed_dir / rel for rel in files])
        for rel in progress(files, f"staging {fmt.name} {feed_dir.name}"):
            path = feed_dir / rel
            if CONTROL_CHARS.search(rel):
                # a newline in a file name would write a stanza of its own into the signed index
                self.problems.append(Problem(repr(str(path)), "file name holds a control character"))
                continue
            try:
                info = fmt.read(path, deep=True)
            except PackageError as e:
                self.problems += [Problem(str(path), m) for m in e.problems]
                sha, md5, size, _ = self.store.hash(path)
                sums[rel] = (sha, md5, size)
                continue
            bad = unsafe_fields(info, fmt.feed_arch(info, rel))
            if bad:
                self.problems += [Problem(str(path), m) for m in bad]
                continue
            a = self._add(path, dict(kind=model.PACKAGE, format=fmt.name, name=info.name,
                                     version=info.version, arch=fmt.feed_arch(info, rel),
                                     meta=info.fields), root)
            sums[rel] = (a.sha256, a.md5, a.size)
            names[rel] = (info.name, info.version, info.arch)
        self.problems += compare_with_index(fmt, feed_dir, entries, sums, names)

    def stage_images(self, images: Path, root: Path) -> None:
        for mdir in sorted(p for p in images.iterdir() if p.is_dir()):
            for f in sorted(mdir.iterdir()):
                # OE's unversioned names are symlinks to the timestamped files: keep the real files
                if f.is_file() and not f.is_symlink():
                    self._add(f, dict(kind=model.IMAGE, name=f.name, arch=mdir.name,
                                      meta={"machine": mdir.name}), root)

    def _add_snapshot(self, path: Path, kind: str, root: Path, tmpdir: Path) -> None:
        """A live SQLite database (the PR server or hash server may be writing it): stored as a
        consistent snapshot made with SQLite's online backup API, never as the file itself."""
        snap = tmpdir / f"{kind}-{path.name}"
        try:
            sqlite_snapshot(path, snap)
        except sqlite3.Error as e:
            self.problems.append(Problem(str(path), f"cannot read this SQLite database ({e})"))
            return
        sha, md5, size = hash_file(snap)
        self.arts.append(Artifact(path=_rel(path, root), kind=kind, sha256=sha, md5=md5, size=size, name=path.name))
        self.srcs.append(snap)
        self.stats.append(None)

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
                sha, md5, size, _ = self.store.hash(bundle)
                self.arts.append(Artifact(path="buildhistory.bundle", kind=model.BUILDHISTORY, sha256=sha,
                                          md5=md5, size=size, name="buildhistory.bundle"))
                self.srcs.append(bundle)
                self.stats.append(None)

    def check_arches(self) -> None:
        if not self.spec:
            return
        from ..formats import get as get_format
        odd = sorted({(a.format, a.arch) for a in self.arts if a.kind == model.PACKAGE
                      and a.arch not in {get_format(a.format).feed_name(x) for x in self.spec.feeds()}})
        for _fmt, arch in odd:
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
    for k in kas_files:
        for f in (k, k.with_name(k.stem + ".lock.yml")):
            if f.is_file():
                st._add(f.resolve(), dict(kind=model.CONF, name=f.name), f.resolve().parent)
                st.arts[-1].path = f"kas/{f.name}"
    try:
        found = find_layers(lay.topdir, list(kas_files), list(layer_files))
    except (ValueError, OSError, KeyError) as e:
        raise BadInput([Problem(str((list(layer_files) + list(kas_files) or [path])[0]), f"cannot read layers: {e}")]) from None
    layer_data = (L.to_json(found[0]).encode(), found[1]) if found else None
    with tempfile.TemporaryDirectory(dir=store.dir) as tmp, store.objects.adding(store.referenced_objects):
        for fmt, feed_dir in lay.feeds:
            st.stage_feed(fmt, feed_dir, path)
        if lay.deploy and (lay.deploy / "images").is_dir():
            st.stage_images(lay.deploy / "images", path)
        if lay.topdir:
            st.stage_topdir(lay.topdir, Path(tmp))
        st.check_arches()
        errors = [p for p in st.problems if p.severity == "error"]
        if errors:
            raise BadInput(st.problems)
        if not st.arts:
            raise BadInput([Problem(str(path), "nothing to stage: no packages, images or build artifacts")])
        for a, src in zip(st.arts, progress(st.srcs, "storing objects")):
            try:
                store.objects.add(src, a.sha256)
            except ChangedWhileReading:
                raise BadInput([Problem(str(src), "changed while it was staged; stage again when the build is done")]) from None
        if layer_data:
            sha = store.objects.add_bytes(layer_data[0])
            st.arts.append(Artifact(path="layers.json", kind=model.LAYERS, sha256=sha, size=len(layer_data[0]),
                                    name="layers.json", meta={"from": layer_data[1]}))
        warnings = [str(p) for p in st.problems]
        created = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
        with store.db.begin() as conn:
            cid = store.db.add_candidate(conn, str(path), created, st.arts, warnings)
            store.db.save_filestats(conn, [r for r in st.stats if r])
    out = summary(cid, str(path), created, st.arts, warnings)
    out["hashed"], out["hash_cache_hits"] = store.hashed, store.cached
    return out


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
