"""`bindistro fsck`: check the store and the publish tree as devices and mirrors will read them.

Store: every object's bytes against its name, read-only objects, objects the DB names but lacks,
objects nothing names (left by an interrupted command). Publish tree: the generation layout, every
release manifest (signature, every artifact's size and sha256), every feed index (signature, every
listed file's size and checksums, files no index lists), deb Release and rpm repomd checksums, and
modes a web server can read. `--repair` puts back a published file that is damaged or missing from
its store object, and removes orphan objects; nothing else.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import select

from . import publish
from .errors import Problem
from .formats import FORMATS
from .formats.base import index_entries, scan_files
from .keys import SignatureChecker
from .progress import progress
from .store.objects import FILE_MODE, OBJECT_MODE, hash_file, place



@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    checked: dict = field(default_factory=dict)
    repaired: list[str] = field(default_factory=list)

    def add(self, path, message, severity="error"):
        self.problems.append(Problem(str(path), message, severity))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]


# --- store -----------------------------------------------------------------------------------------

def check_store(store, rep: Report, repair: bool = False) -> None:
    if repair:      # no stage may commit a reference to an object while orphans are removed
        with store.objects.exclusive():
            return _check_store(store, rep, True)
    return _check_store(store, rep, False)


def _check_store(store, rep: Report, repair: bool) -> None:
    refs = store.referenced_objects()
    seen = set()
    n = 0
    for name, path in progress(list(store.objects.all()), "checking objects"):
        n += 1
        seen.add(name)
        if hash_file(path)[0] != name:
            rep.add(path, "object's content does not match its name (damaged)")
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode != OBJECT_MODE:
            if repair:      # a private copy: an older bindistro linked objects to the build's own files
                place(path, path, OBJECT_MODE, name)
                rep.repaired.append(str(path))
            else:
                rep.add(path, f"mode {mode:o}, objects are read-only ({OBJECT_MODE:o}); an older bindistro made "
                        "it, maybe as a link to a build's file: `fsck --store --repair` makes a private copy")
        if name not in refs:
            if repair:
                path.unlink()
                rep.repaired.append(str(path))
            else:
                rep.add(path, "orphan object: nothing in the DB names it (`fsck --store --repair` removes it)",
                        "warning")
    for sha in sorted(refs - seen):
        if store.objects.remote is not None and store.objects.remote.has(sha):
            continue        # in the shared bucket: this host fetches it when it needs it
        from .store.schema import artifacts
        with store.db.engine.connect() as c:
            row = c.execute(select(artifacts.c.path).where(artifacts.c.sha256 == sha)).first()
        if row:      # report texts may quote other hashes; only stored artifacts must be present
            rep.add(store.objects.local(sha), f"missing object of {row[0]}")
    for tmp in [*store.dir.glob("tmp*"), *store.objects.root.glob(".tmp-*")]:
        if tmp.is_dir():
            rep.add(tmp, "temporary directory left by an interrupted command", "warning")
    rep.checked["objects"] = n


# --- publish tree ------------------------------------------------------------------------------------

class Hashes:
    """Each file hashed once, however many indexes and manifests name it. md5 (2.5 times the cost of
    sha256) only where asked for, i.e. for what a feed's index lists: a small file gets it with its
    first read anyway (packages are named by a manifest first, then by their index), a large one
    (an image, a kernel) is read again only if an index asks for its md5."""
    EAGER_MD5 = 4 << 20

    def __init__(self):
        self._by_inode: dict[tuple[int, int], tuple[str, str, int]] = {}

    def __call__(self, p: Path, md5: bool = False) -> tuple[str, str, int] | None:
        try:
            st = p.stat()
        except OSError:
            return None
        key = (st.st_dev, st.st_ino)
        got = self._by_inode.get(key)
        if got is None or (md5 and not got[1]):
            got = self._by_inode[key] = hash_file(p, md5=md5 or st.st_size <= self.EAGER_MD5)
        return got


def _keys(tree: Path, spec, keyring: bytes | None = None) -> tuple[SignatureChecker, str]:
    if keyring is not None:
        return SignatureChecker([keyring]), "the given keyring"
    if spec is not None:
        from .keys import Keyring
        kr = Keyring(spec.state_path / "gnupg")
        return SignatureChecker(keyring=kr.public_keyring(spec.release_keys)), "the project's keys"
    return SignatureChecker([p.read_bytes() for p in sorted((tree / "keys").glob("*.asc"))]), "the tree's own keys/"


def check_publish(root: Path, rep: Report, spec=None, store=None, repair: bool = False,
                  keyring: bytes | None = None) -> None:
    tree = publish.Tree(root)
    if not root.is_dir():
        rep.add(root, "no such publish directory")
        return
    cur = 0
    if tree.meta.is_dir():
        try:
            cur = tree.current()
        except publish.TreeError as e:
            rep.add(tree.current_link, str(e).split(": ", 1)[-1])
            return
        if cur and not tree.generation_dir(cur).is_dir():
            rep.add(tree.current_link, f"points at generation {cur}, which is missing")
            return
        if tree.owner() is None:
            rep.add(tree.meta / "owner.json", "missing: the tree does not say which project owns it", "warning")
        for pattern, what in ((".tmp-*", "unfinished generation of"), (".old-*", "old generation partly removed by")):
            for p in tree.snapshots.glob(pattern) if tree.snapshots.is_dir() else []:
                rep.add(p, f"{what} an interrupted command (the next publishing command removes it)", "info")
        if store is not None:
            committed = store.db.generation()
            if committed > cur:
                rep.add(tree.current_link, f"generation {committed} is committed but not yet visible (shows {cur}); "
                        "the next publishing command completes it", "info")
            elif committed < cur:
                rep.add(tree.current_link, f"shows generation {cur}, newer than the {committed} the state directory committed")
        if cur:
            for entry in tree.generation_dir(cur).iterdir():
                link = root / entry.name
                if not (link.is_symlink() and os.readlink(link) == f"{publish.META}/current/{entry.name}"):
                    rep.add(link, "public name is not a link into the current generation")
    sums = Hashes()
    checker, whose = _keys(root, spec, keyring)
    rep.checked["keys"] = whose
    if spec is None and keyring is None:
        rep.add(root / "keys", "signatures checked only against the tree's own keys (whoever can write the tree "
                "can replace them): pass --keyring FILE with the distro's public key", "warning")
    _check_modes(root, rep)
    listed = _check_releases(root, rep, sums, checker, spec, store, repair)
    for fmt_dir in _feed_roots(root):
        fmt = FORMATS[fmt_dir.name]
        for feed_dir in sorted(p for p in fmt_dir.iterdir() if p.is_dir()):
            _check_feed(fmt, feed_dir, rep, sums, checker, listed)
    _check_viewer(root, rep)
    rep.checked["generation"] = cur


def _check_viewer(root: Path, rep: Report) -> None:
    """The feed viewer must describe the releases the tree lists (it is written in the same
    generation; a tree published before it, or by hand, may lack or mismatch it)."""
    idx, listing = root / "api" / "v1" / "index.json", root / "releases.json"
    if not idx.is_file() or not listing.is_file():
        if listing.is_file():
            rep.add(root / "site", "no feed viewer (site/, api/v1/): run `bindistro site build`", "info")
        return
    try:
        if idx.stat().st_size > 64 << 20:
            raise ValueError("larger than 64 MB")
        shown = [r["release"] for r in json.loads(idx.read_bytes())["releases"]]
        listed = [r["release"] for r in json.loads(listing.read_bytes())["releases"]]
    except (ValueError, KeyError, TypeError) as e:
        rep.add(idx, f"unreadable ({str(e)[:100]})")
        return
    if shown != listed:
        rep.add(idx, f"lists releases {', '.join(shown) or 'none'} but releases.json lists {', '.join(listed) or 'none'}; "
                "run `bindistro site build`")
    for r in listed:
        if not (root / "api" / "v1" / "releases" / f"{r}.json").is_file() or not (root / "site" / "releases" / f"{r}.html").is_file():
            rep.add(root / "site" / "releases" / f"{r}.html", f"release {r} has no page or API document; run `bindistro site build`")


def _feed_roots(root: Path) -> list[Path]:
    """feeds/<format> (a tree from before series), feeds/<series>/<format>, custom feeds, and the
    channels' feeds (channels/<name>/feeds/<format>, channels/<series>/<name>/feeds/<format>)."""
    def formats(d: Path) -> list[Path]:
        return [d / f for f in FORMATS if (d / f).is_dir()]
    feeds = root / "feeds"
    out = formats(feeds)
    if feeds.is_dir():
        out += [p for d in sorted(feeds.iterdir()) if d.is_dir() and d.name not in FORMATS for p in formats(d)]
    custom = root / "custom"
    if custom.is_dir():
        out += [p for d in sorted(custom.iterdir()) if d.is_dir() for p in formats(d)]
    for m in _channel_manifests(root):
        out += formats(m.parent / "feeds")
    return out


def _channel_manifests(root: Path) -> list[Path]:
    base = root / "channels"
    return sorted(base.glob("*/manifest.json")) + sorted(base.glob("*/*/manifest.json")) if base.is_dir() else []


def _check_modes(root: Path, rep: Report) -> None:
    n = 0
    for rel, p in publish.public_files(root):
        n += 1
        mode = stat.S_IMODE(p.stat().st_mode)
        if mode & 0o444 != 0o444:
            rep.add(p, f"mode {mode:o}: not readable by every user (a web server runs as another user)")
    for dirpath, _dirs, _files in os.walk(root, followlinks=True):
        if publish.META in Path(dirpath).relative_to(root).parts:
            continue
        mode = stat.S_IMODE(os.stat(dirpath).st_mode)
        if mode & 0o555 != 0o555:
            rep.add(dirpath, f"directory mode {mode:o}: not readable by every user")
    rep.checked["files"] = n


def _check_releases(root, rep, sums, checker, spec, store, repair) -> set[str]:
    """Every artifact of every listed release; returns the paths the manifests name."""
    listed: set[str] = set()
    lst = root / "releases.json"
    if not lst.exists():
        return listed
    try:
        doc = json.loads(lst.read_text())
        releases = doc["releases"]
        channels = doc.get("channels") or []
    except (ValueError, KeyError, TypeError, OSError) as e:
        rep.add(lst, f"unreadable ({e})")
        return listed
    there = sorted(p.relative_to(root).as_posix() for p in _channel_manifests(root))
    if sorted(str(c.get("manifest")) for c in channels) != there:
        rep.add(lst, f"lists channels {', '.join(str(c.get('manifest')) for c in channels) or 'none'} but the tree "
                f"holds {', '.join(there) or 'none'}")
    # a channel's manifest is checked as a release's is (its files are replaced by the next build, not kept)
    for r in releases + [dict(c, release=f"channel {c.get('channel')}") for c in channels]:
        mpath = root / str(r.get("manifest", ""))
        try:
            manifest = json.loads(mpath.read_text())
        except (ValueError, OSError) as e:
            rep.add(mpath, f"manifest of release {r.get('release')} unreadable ({e})")
            continue
        sig = mpath.with_name(mpath.name + ".asc")
        if manifest.get("signing"):
            why = checker.check(mpath, sig) if sig.exists() else "signature missing"
            if why:
                rep.add(sig, why)
        for a in progress(manifest.get("artifacts", []), f"checking release {r.get('release')}"):
            rel = a["path"]
            listed.add(rel)
            p = root / rel
            got = sums(p)
            bad = ("missing" if got is None else
                   f"size {got[2]} differs from the manifest's {a['size']}" if got[2] != a["size"] else
                   "sha256 differs from the manifest" if got[0] != a["sha256"] else None)
            if bad:
                if repair and store is not None and store.objects.has(a["sha256"]):
                    place(store.objects.path(a["sha256"]), p.resolve() if p.exists() else _resolved(root, rel),
                          FILE_MODE, a["sha256"])
                    rep.repaired.append(rel)
                else:
                    rep.add(p, f"{bad} (release {r.get('release')})")
    rep.checked["releases"] = len(releases)
    return listed


def _resolved(root: Path, rel: str) -> Path:
    """Where a missing public file belongs: inside the current generation."""
    tree = publish.Tree(root)
    base = tree.generation_dir(tree.current()) if tree.meta.is_dir() and tree.current() else root
    return base / rel


def _check_feed(fmt, feed_dir: Path, rep: Report, sums, checker, listed: set[str]) -> None:
    entries, probs = index_entries(fmt, feed_dir)
    rep.problems += probs
    if not fmt.find_indexes(feed_dir):
        rep.add(feed_dir, f"no {fmt.name} index")
        return
    for rel, e in entries.items():
        p = feed_dir / rel
        got = sums(p, md5=bool(e.sums.get("md5")))
        if got is None:
            rep.add(p, f"listed in the index ({e.name} {e.version}) but missing")
            continue
        sha, md5, size = got
        if e.size is not None and e.size != size:
            rep.add(p, f"size {size} differs from the index's {e.size}")
        elif e.sums.get("sha256") and e.sums["sha256"] != sha:
            rep.add(p, "SHA256 differs from the index")
        elif e.sums.get("md5") and e.sums["md5"] != md5:
            rep.add(p, "MD5 differs from the index")
    for rel in scan_files(fmt, feed_dir):
        if rel not in entries:
            rep.add(feed_dir / rel, "package file not listed in the feed's index", "warning")
    getattr(SIGNATURE_CHECKS, fmt.name)(feed_dir, rep, sums, checker)
    rep.checked["feeds"] = rep.checked.get("feeds", 0) + 1


class SIGNATURE_CHECKS:
    """Index signature checks per format (fsck and `feed check`)."""
    @staticmethod
    def ipk(feed_dir, rep, sums, checker):
        pk = feed_dir / "Packages"
        if (feed_dir / "Packages.gz").exists() and pk.exists():
            if gzip.decompress((feed_dir / "Packages.gz").read_bytes()) != pk.read_bytes():
                rep.add(feed_dir / "Packages.gz", "says something else than Packages")
        for name in ("Packages.asc", "Packages.sig"):
            sig = feed_dir / name
            if sig.exists():
                why = checker.check(pk, sig)
                if why:
                    rep.add(sig, why)

    @staticmethod
    def deb(feed_dir, rep, sums, checker):
        release = feed_dir / "Release"
        if not release.exists():
            rep.add(release, "missing")
            return
        text = release.read_text(errors="replace")
        section = None
        for line in text.splitlines():
            if not line.startswith(" "):
                section = line.split(":", 1)[0]
                continue
            if section not in ("MD5Sum", "SHA256"):
                continue
            digest, size, name = line.split()
            p = feed_dir / name
            algo = "md5" if section == "MD5Sum" else "sha256"
            got = sums(p, md5=algo == "md5")
            if got is None:
                rep.add(p, "named in Release but missing")
            elif int(size) != got[2] or digest != (got[1] if algo == "md5" else got[0]):
                rep.add(p, f"{section} or size differs from Release")
            if algo == "sha256" and "Acquire-By-Hash: yes" in text:
                bh = feed_dir / "by-hash" / "SHA256" / digest
                if not bh.exists() or hashlib.sha256(bh.read_bytes()).hexdigest() != digest:
                    rep.add(bh, "by-hash file missing or damaged")
        for sig, data in ((feed_dir / "Release.gpg", release), (feed_dir / "InRelease", None)):
            if sig.exists():
                why = checker.check(sig if data is None else data, None if data is None else sig)
                if why:
                    rep.add(sig, why)

    @staticmethod
    def rpm(feed_dir, rep, sums, checker):
        import xml.etree.ElementTree as ET
        repomd = feed_dir / "repodata" / "repomd.xml"
        if not repomd.exists():
            return
        ns = {"r": "http://linux.duke.edu/metadata/repo"}
        try:
            root = ET.parse(repomd).getroot()
        except ET.ParseError as e:
            rep.add(repomd, f"unreadable ({e})")
            return
        for data in root.findall("r:data", ns):
            href = data.find("r:location", ns).get("href")
            want = data.find("r:checksum", ns).text
            got = sums(feed_dir / href)
            if got is None:
                rep.add(feed_dir / href, "named in repomd.xml but missing")
            elif got[0] != want:
                rep.add(feed_dir / href, "checksum differs from repomd.xml")
        sig = feed_dir / "repodata" / "repomd.xml.asc"
        if sig.exists():
            why = checker.check(repomd, sig)
            if why:
                rep.add(sig, why)


def run(spec=None, store=None, root: Path | None = None, do_store: bool = True, do_publish: bool = True,
        repair: bool = False, keyring: bytes | None = None) -> Report:
    rep = Report()
    if do_store and store is not None:
        check_store(store, rep, repair)
    if do_publish:
        check_publish(root or spec.publish_path, rep, spec, store, repair, keyring)
    return rep

