"""The publish tree: what devices and mirrors read — one complete, signed state at every instant.

    publish/
      feeds -> .bindistro/current/feeds          every public name is a symlink through `current`
      images, releases, keys, sstate, custom, releases.json, SECURITY.md, .well-known -> likewise
      .bindistro/owner.json                      the project that publishes here (no other may)
      .bindistro/snapshots/<N>/                  generation N: the whole public tree, never changed
      .bindistro/current -> snapshots/<N>        the one atomic switch

A publishing command (release, eol, feed add-custom, cve policy) builds generation N+1 beside the
current one: a hard link for every unchanged file (made from the generation it retires, when there is
one: only what changed since costs a link), new files copied from the store, new indexes and
signatures written under temporary names. The store then records N+1 as committed, and renaming one
symlink makes it current: a reader resolving `feeds/ipk/all/Packages` and then `Packages.asc`
resolves both through the same `current` unless the switch falls between its two requests. A crash
before the rename leaves N visible; the next publishing command deletes the unfinished N+1, or rolls
forward to N+1 when the store had already committed it.

Files in a generation share inodes with the generations before it, so nothing may ever be written
in place here: every write is a new file renamed over the old name.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path

from . import faults
from .errors import BindistroError
from .store.objects import (ChangedWhileReading, DIR_MODE, FILE_MODE, fsync_dir, makedirs, place, sync_fs,
                            write_bytes_atomic)

META = ".bindistro"
KEEP_OLD = 2          # generations kept behind the current one at every moment (readers mid-download)
LAYOUT = 2
# what a tree published by bindistro before generations has at its top
ADOPTABLE = ("feeds", "images", "releases", "keys", "sstate", "custom", "releases.json", ".well-known", "SECURITY.md",
             "sources", "sdk", "site", "api", "channels")


class TreeError(BindistroError):
    pass


def project_id(store) -> str:
    """A random id of the project (its state), recorded in the trees it owns."""
    pid = store.db.get_setting("project_id")
    if pid:
        return json.loads(pid)
    pid = uuid.uuid4().hex
    store.db.set_setting("project_id", pid)
    return pid


class Tree:
    def __init__(self, root: Path):
        self.root = root
        self.meta = root / META
        self.snapshots = self.meta / "snapshots"
        self.current_link = self.meta / "current"

    # --- reading ---------------------------------------------------------------------------------
    def current(self) -> int:
        """The visible generation (0: nothing published yet)."""
        try:
            target = os.readlink(self.current_link)
        except FileNotFoundError:
            return 0
        except OSError as e:
            raise TreeError(f"{self.current_link}: unreadable ({e.strerror})") from None
        name = target.rsplit("/", 1)[-1]
        if not name.isdigit():
            raise TreeError(f"{self.current_link}: points at {target!r}, not a generation")
        return int(name)

    def generation_dir(self, n: int) -> Path:
        return self.snapshots / str(n)

    def generations(self) -> list[int]:
        if not self.snapshots.is_dir():
            return []
        return sorted(int(p.name) for p in self.snapshots.iterdir() if p.name.isdigit())

    def owner(self) -> dict | None:
        f = self.meta / "owner.json"
        if not f.exists():
            return None
        try:
            return json.loads(f.read_text())
        except (ValueError, OSError) as e:
            raise TreeError(f"{f}: unreadable owner record ({e})") from None

    # --- owning and locking ----------------------------------------------------------------------
    def claim(self, product: str, pid: str, state: Path) -> None:
        """Refuse a tree another project publishes into; record this one on first use."""
        own = self.owner()
        if own is None:
            makedirs(self.meta)
            tmp = self.meta / f".owner-{os.getpid()}"
            # served with the tree: product and a random project id, no local path
            write_bytes_atomic(tmp, json.dumps(
                {"product": product, "project": pid, "layout": LAYOUT}, indent=1).encode() + b"\n")
            try:
                os.link(tmp, self.meta / "owner.json")     # fails if another project claimed it first
            except FileExistsError:
                pass
            finally:
                tmp.unlink()
            own = self.owner()
        if own.get("project") != pid:
            raise TreeError(f"{self.root}: this publish tree belongs to product {own.get('product')!r} "
                            f"(project {own.get('project')}); refusing to publish {product!r} "
                            f"(project {pid}, state {state}) into it")

    # --- recovery --------------------------------------------------------------------------------
    def recover(self, committed: int) -> int | None:
        """Bring the tree to the generation the store committed; returns it if that took a switch.
        Unfinished and uncommitted generations are deleted (no reader ever saw them)."""
        cur = self.current()
        if committed < cur:
            raise TreeError(f"{self.root}: shows generation {cur}, newer than the {committed} the state "
                            "directory recorded (was the state restored from a backup?); run `bindistro fsck`")
        rolled = None
        if committed > cur:
            if not self.generation_dir(committed).is_dir():
                raise TreeError(f"{self.root}: generation {committed} is recorded but missing from "
                                f"{self.snapshots}; run `bindistro fsck`")
            self.publish_names(self.generation_dir(committed), adopt=cur == 0)
            self._switch(committed)
            rolled = committed
        if self.snapshots.is_dir():
            for p in self.snapshots.iterdir():
                if not p.name.isdigit() or int(p.name) > committed:
                    shutil.rmtree(p, ignore_errors=True)
        return rolled

    def prune(self) -> subprocess.Popen | None:
        """Start removing the generations more than KEEP_OLD behind the current one; returns the
        process doing it (None: nothing to remove), for the caller to wait on. Removing a generation
        is an unlink per file of the whole tree (0.05 s at 3,000 files, seconds at 100,000): an `rm`
        beside the command's own work does it on another core, where a thread here would compete
        for the interpreter. Each generation is renamed aside first (.old-N, which recover()
        removes), so a kill part-way never leaves half a generation under a generation's name.
        Best effort: what is left is removed next time."""
        try:
            cur = self.current()
        except TreeError:
            return None
        gone = []
        for n in self.generations():
            if n < cur - KEEP_OLD:
                aside = self.snapshots / f".old-{n}"
                try:
                    os.replace(self.generation_dir(n), aside)
                except OSError:
                    continue
                gone.append(str(aside))
        gone += [str(p) for p in self.meta.glob("old-layout-*")]   # adopted: their files live on in generations
        if not gone:
            return None
        return subprocess.Popen(["rm", "-rf", "--", *gone], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # --- writing ---------------------------------------------------------------------------------
    def begin(self) -> "Generation":
        cur = self.current()
        gens = self.generations()
        n = max([cur, *gens]) + 1
        makedirs(self.snapshots)
        if cur:
            g = Generation(self, n, self.generation_dir(cur))
            # the newest generation prune() would remove now becomes the new one: made equal to the
            # current one, it takes a link per file that changed since, where a copy takes one per
            # file of the whole tree and removing the old one an unlink per file (seconds at 250,000)
            old = [x for x in gens if x < cur - KEEP_OLD]
            g.start_clone(self.generation_dir(max(old)) if old else None)
        else:
            g = Generation(self, n)
            makedirs(g.dir)
            g.adopt_old_layout()
        return g

    def _switch(self, n: int) -> None:
        tmp = self.meta / f".current-{os.getpid()}"
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(f"snapshots/{n}", tmp)
        faults.point("switch")
        os.replace(tmp, self.current_link)
        fsync_dir(self.meta)

    def publish_names(self, gdir: Path, adopt: bool) -> None:
        """Every top-level name of a generation answers at the tree's root (a static symlink).
        `adopt`: the first generation of a tree published before generations existed."""
        for entry in sorted(gdir.iterdir()):
            link = self.root / entry.name
            want = f"{META}/current/{entry.name}"
            if link.is_symlink() and os.readlink(link) == want:
                continue
            if link.exists() or link.is_symlink():
                if not link.is_symlink() and adopt and link.name in ADOPTABLE:
                    # a tree published before generations: its real directory steps aside for the link
                    os.replace(link, self.meta / f"old-layout-{link.name}")
                else:
                    raise TreeError(f"{link}: exists and is not bindistro's; refusing to publish over it")
            tmp = self.root / f".tmp-link-{entry.name}"
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            os.symlink(want, tmp)
            os.replace(tmp, link)
        fsync_dir(self.root)


class Generation:
    """The next state of the tree, built where no reader looks; `commit` makes it current."""

    def __init__(self, tree: Tree, n: int, base: Path | None = None):
        self.tree = tree
        self.n = n
        self.base = base            # the generation this one starts as a copy of (None: the first)
        self._dir = tree.snapshots / f".tmp-{n}"
        self._cloning: threading.Thread | None = None
        self._failed: BaseException | None = None
        self.adopted: set[str] = set()
        # inodes of the files linked from the base: their modes are the base's, set when it was
        # finished (finish() looks at the rest: a stat per file of the whole tree grew with history)
        self.cloned: set[int] = set()

    @property
    def dir(self) -> Path:
        """The generation's directory, complete: waits for the copy of the base (start_clone); a
        copy that failed fails every use."""
        self._wait()
        if self._failed is not None:
            raise self._failed
        return self._dir

    def _wait(self) -> None:
        if self._cloning is not None:
            self._cloning.join()
            self._cloning = None

    @property
    def unfinished(self) -> bool:
        return self._dir.name.startswith(".tmp-")

    def path(self, rel: str) -> Path:
        """Where `rel` lives in this generation (its directory made). Write only by rename."""
        p = self.dir / rel
        makedirs(p.parent)
        return p

    def exists(self, rel: str) -> bool:
        if self._cloning is not None:
            return (self.base / rel).exists()     # the same until anything is written, which waits
        return (self.dir / rel).exists()

    def start_clone(self, reuse: Path | None = None) -> None:
        """Copy the base (clone) in a thread while the command plans and signs: it is a link per
        file of the whole tree (0.03 s at 3,000 files, about a second at 150,000), and the first
        use of `dir` waits for it. `reuse`: a retired generation to make this one from instead,
        taken here (before the caller prunes the others)."""
        if reuse is not None:
            with contextlib.suppress(OSError):      # (then a copy, as without one)
                os.replace(reuse, self._dir)
        def run() -> None:
            try:
                self.clone(self.base)
            except BaseException as e:       # raised where the generation is next used
                self._failed = e
        self._cloning = threading.Thread(target=run, name="clone", daemon=True)
        self._cloning.start()

    def clone(self, src: Path) -> None:
        """Hard links of the whole of `src`: unchanged files cost one link each (scandir and plain
        strings: a tree of 20,000 entries in 0.06 s, not 0.16 s with os.walk and Paths). When the
        directory is there already (an old generation, begin()), it is made equal to `src` instead:
        a name that is a link to the same inode stays, anything else is replaced or removed. (Files
        are never written in place, so the same inode is the same bytes.)"""
        def copy(s: str, d: str) -> None:
            os.mkdir(d)
            os.chmod(d, DIR_MODE)
            with os.scandir(s) as it:
                for e in it:
                    t = f"{d}/{e.name}"
                    if e.is_dir(follow_symlinks=False):
                        copy(e.path, t)
                    elif e.is_symlink():
                        os.symlink(os.readlink(e.path), t)
                    else:
                        os.link(e.path, t)
                        self.cloned.add(e.inode())
            faults.point("clone")

        def remove(e: os.DirEntry) -> None:
            if e.is_dir(follow_symlinks=False):
                shutil.rmtree(e.path)
            else:
                os.unlink(e.path)

        def sync(s: str, d: str) -> None:
            with os.scandir(d) as it:
                had = {e.name: e for e in it}
            with os.scandir(s) as it:
                for e in it:
                    t = f"{d}/{e.name}"
                    o = had.pop(e.name, None)
                    if e.is_dir(follow_symlinks=False):
                        if o is not None and o.is_dir(follow_symlinks=False):
                            sync(e.path, t)
                            continue
                        if o is not None:
                            remove(o)
                        copy(e.path, t)
                    elif e.is_symlink():
                        target = os.readlink(e.path)
                        if o is not None and o.is_symlink() and os.readlink(t) == target:
                            continue
                        if o is not None:
                            remove(o)
                        os.symlink(target, t)
                    else:
                        ino = e.inode()
                        if o is None or o.is_dir(follow_symlinks=False) or o.is_symlink() or o.inode() != ino:
                            if o is not None:
                                remove(o)
                            os.link(e.path, t)
                        self.cloned.add(ino)
            for o in had.values():
                remove(o)
            faults.point("clone")
        if os.path.isdir(self._dir):
            sync(str(src), str(self._dir))
        else:
            copy(str(src), str(self._dir))

    def adopt_old_layout(self) -> None:
        """A tree published by bindistro before generations: its public files become generation 1."""
        for name in ADOPTABLE:
            p = self.tree.root / name
            if p.is_symlink() or not p.exists():
                continue
            self.adopted.add(name)
            if p.is_dir():
                shutil.copytree(p, self.dir / name, copy_function=os.link)
            else:
                os.link(p, self.dir / name)

    def add_file(self, rel: str, src: Path, sha256: str, size: int) -> None:
        """A new immutable file (a package, an image …), copied from the store."""
        try:
            place(src, self.path(rel), FILE_MODE, sha256, sync=False)     # finish() syncs them all
        except ChangedWhileReading:
            raise TreeError(f"{src}: does not match its hash {sha256}; run `bindistro fsck --store`") from None
        faults.point("file")

    def write(self, rel: str, data: bytes) -> Path:
        p = self.path(rel)
        write_bytes_atomic(p, data, sync=False)
        faults.point("write")
        return p

    def finish(self) -> None:
        """Modes as a web server needs them, everything on disk, then the generation is complete."""
        def modes(d: str) -> None:
            os.chmod(d, DIR_MODE)
            with os.scandir(d) as it:
                for e in it:
                    if e.is_dir(follow_symlinks=False):
                        modes(e.path)
                    elif not e.is_symlink() and e.inode() not in self.cloned \
                            and (e.stat(follow_symlinks=False).st_mode & 0o777) != FILE_MODE:
                        os.chmod(e.path, FILE_MODE)
        modes(str(self.dir))
        # new files, their names and the hard links, all on disk in one syncfs (an fsync per file
        # and per directory was a third of a release's time)
        sync_fs(self.dir)
        final = self.tree.generation_dir(self.n)
        os.replace(self.dir, final)
        self._dir = final
        fsync_dir(self.tree.snapshots)
        faults.point("finished")

    def commit(self, record) -> None:
        """`record(n)` stores the generation as committed (with whatever the command records in the
        same transaction); then the switch makes it visible."""
        self.finish()
        record(self.n)
        faults.point("committed")
        self.tree.publish_names(self.dir, adopt=bool(self.adopted))
        self.tree._switch(self.n)

    def abandon(self) -> None:
        self._wait()
        shutil.rmtree(self._dir, ignore_errors=True)


@contextlib.contextmanager
def lock(state: Path, what: str):
    """One publishing command of a project at a time (kept in the state directory, so the published
    tree's bytes do not change); a second one waits and says so."""
    makedirs(state)
    fd = os.open(state / "publish.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another bindistro command"
            print(f"bindistro: waiting for {state / 'publish.lock'} (held by {holder})", file=sys.stderr)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}: {what}\n".encode(), 0)
        yield
    finally:
        os.close(fd)          # closing releases the lock, also when the process is killed


@contextlib.contextmanager
def transaction(spec, store, what: str):
    """Lock the tree, check its owner, finish what a killed command left, and hand out the next
    generation. The body calls `g.commit(record)`; anything else abandons the generation."""
    tree = Tree(spec.publish_path)
    makedirs(tree.root)
    pid = project_id(store)
    with lock(spec.state_path, what), store.db.lock("publish", what):
        tree.claim(spec.product, pid, spec.state_path)
        tree.recover(store.db.generation())
        g = tree.begin()
        # old generations go while the body works: the tree keeps KEEP_OLD generations behind the
        # current one while it does, KEEP_OLD + 1 after its commit (until the next command prunes)
        pruning = tree.prune()
        try:
            try:
                yield g
            except BaseException:
                g.abandon()
                raise
            if g.unfinished:
                g.abandon()          # the body decided there was nothing to publish
            elif spec.publish_target:
                from . import s3     # the generation is committed and visible; the bucket follows it
                try:
                    upload(spec, tree.root)
                except s3.S3Error as e:
                    raise s3.S3Error(f"{e} — {tree.root} shows generation {g.n}; until an upload finishes, "
                                     "the bucket may serve some of the previous indexes (run `bindistro upload`)") from None
        finally:
            if pruning:
                pruning.wait()


def upload(spec, root: Path) -> dict:
    """Upload the tree at `root` to publish.target (s3.upload), with the md5 of its files kept in
    the state dir between uploads (s3.Md5s: a cache, safe to delete). A failed upload keeps nothing:
    a command that fails leaves the state dir as it was."""
    from . import s3
    cache = spec.state_path / "upload-md5.json"
    try:
        md5s = s3.Md5s(cache.read_bytes())
    except OSError:
        md5s = s3.Md5s()
    counts = s3.upload(public_files(root), spec.publish_target, md5s=md5s)
    if (doc := md5s.changed()) is not None:
        try:
            write_bytes_atomic(cache, doc, sync=False)
        except OSError:
            pass            # only a cache: the next upload hashes the tree again
    return counts


def settle(spec, store, what: str = "recover") -> int | None:
    """Finish a committed generation a killed command left unswitched (no new generation)."""
    tree = Tree(spec.publish_path)
    if not tree.meta.is_dir():
        return None
    with lock(spec.state_path, what), store.db.lock("publish", what):
        tree.claim(spec.product, project_id(store), spec.state_path)
        return tree.recover(store.db.generation())


def public_files(root: Path):
    """(rel path, real path) of every file a reader of the tree can reach, links followed,
    bindistro's own directory left out."""
    for top in sorted(root.iterdir()):
        if top.name == META or top.name.startswith(".tmp-"):
            continue
        if top.is_dir():
            for dirpath, _dirs, files in os.walk(top, followlinks=True):
                for f in sorted(files):
                    p = Path(dirpath) / f
                    yield str(p.relative_to(root)), p
        elif top.exists():
            yield top.name, top
