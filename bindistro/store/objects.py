"""Content-addressed object store: objects/<aa>/<bb>/<sha256>.

Objects are immutable and read-only (0444). They are never hard links to files outside the store:
a build keeps writing to its files (the PR server to its database, the next build to its deploy
dir), and a shared inode would change a stored and published object under its name. Objects are
copies, hashed while they are copied, made durable (fsync, or one syncfs for a whole stage:
adopt()) and renamed into place, so a crash never leaves a half-written object under its final name.
"""
from __future__ import annotations

import errno
import fcntl
import hashlib
import itertools
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

from ..errors import BindistroError

CHUNK = 1 << 20
FICLONE = 0x40049409          # linux/fs.h: share the extents of another file (btrfs, xfs)
FILE_MODE = 0o644             # published files and directories: readable by any web server
DIR_MODE = 0o755
OBJECT_MODE = 0o444


class ChangedWhileReading(BindistroError):
    """A source file's bytes are not what was hashed a moment ago (something is still writing it)."""


class _NoSum:
    """Stands in for md5 where no index lists one (images, kernels): md5 costs 2.5 times sha256."""
    def update(self, _chunk) -> None:
        pass

    def hexdigest(self) -> str:
        return ""


def _md5(want: bool):
    return hashlib.md5() if want else _NoSum()


def hash_file(path: Path, md5: bool = False) -> tuple[str, str, int]:
    """(sha256, md5, size) in one read; md5 only when asked for ("" otherwise): package feeds list
    both sums, nothing else needs md5."""
    sha, m, size = hashlib.sha256(), _md5(md5), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
            m.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), m.hexdigest(), size


def fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def makedirs(d: Path, mode: int = DIR_MODE) -> None:
    """mkdir -p with an explicit mode: the umask must not decide what a web server may read."""
    missing = []
    while not d.is_dir():
        missing.append(d)
        d = d.parent
    for m in reversed(missing):
        try:
            m.mkdir()
        except FileExistsError:
            continue
        os.chmod(m, mode)


_SEQ = itertools.count()


def _open_beside(dest: Path, mode: int = FILE_MODE) -> tuple[int, str]:
    """A new temporary file in `dest`'s directory, open for writing: a name of this process's own,
    or mkstemp's when a killed run with this pid left that one (mkstemp's random names, then a
    second open, were most of writing a release's 5,000 small site files and placing its objects)."""
    makedirs(dest.parent)
    tmp = f"{dest.parent}/.tmp-{os.getpid()}-{next(_SEQ)}"
    try:
        return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode), tmp
    except FileExistsError:
        return tempfile.mkstemp(prefix=".tmp-", dir=dest.parent)


def _tmp_beside(dest: Path) -> Path:
    fd, tmp = _open_beside(dest)
    os.close(fd)
    return Path(tmp)


def copy_hashing(src: Path, dest: Path, sync: bool = True, md5: bool = False) -> tuple[str, str, int]:
    """Copy `src` to the new file `dest` (reflink if possible) and return the copy's sums (md5 as
    hash_file); `sync`: fsync it (stage syncs the whole filesystem once instead, objects.adopt)."""
    with open(src, "rb") as fi, open(dest, "wb") as fo:
        try:
            fcntl.ioctl(fo.fileno(), FICLONE, fi.fileno())
            cloned = True
        except OSError:
            cloned = False
        if cloned:
            if sync:
                fo.flush()
                os.fsync(fo.fileno())
            return hash_file(dest, md5)
        sha, m, size = hashlib.sha256(), _md5(md5), 0
        try:
            while chunk := fi.read(CHUNK):
                sha.update(chunk)
                m.update(chunk)
                size += len(chunk)
                fo.write(chunk)
            fo.flush()
            if sync:
                os.fsync(fo.fileno())
        except OSError as e:
            _name(e, dest)      # ENOSPC/EROFS from write() name no file
            raise
    return sha.hexdigest(), m.hexdigest(), size


def object_name(sha256: str) -> str:
    """An object's path below the store's objects/ (and the bucket's prefix): aa/bb/<sha256>."""
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


def write_new(dest: str, data: bytes) -> None:
    """`data` into the new file `dest`, not synced (stage syncs the filesystem once)."""
    try:
        with open(dest, "xb") as f:
            f.write(data)
    except OSError as e:
        _name(e, Path(dest))
        raise


def place(src: Path, dest: Path, mode: int = FILE_MODE, sha256: str | None = None, sync: bool = True) -> None:
    """Put a copy of `src` at `dest` atomically (temporary name, fsync unless the caller syncs the
    filesystem once itself, rename), with `mode`. With `sha256`, the copy must have that hash (else
    ChangedWhileReading, and nothing is placed)."""
    tmp = _tmp_beside(dest)
    try:
        got = copy_hashing(src, tmp, sync)[0]
        if sha256 and got != sha256:
            raise ChangedWhileReading(f"{src}: changed while it was read (sha256 {got[:12]}…, expected {sha256[:12]}…)")
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        _name(e, dest)
        raise


def _name(e: BaseException, dest: Path) -> None:
    # write() failing with ENOSPC/EROFS names no file; the user needs to know which filesystem
    if isinstance(e, OSError) and e.filename is None:
        e.filename = str(dest.parent)


def write_bytes_atomic(dest: Path, data: bytes, mode: int = FILE_MODE, sync: bool = True) -> None:
    fd, tmp = _open_beside(dest, mode)
    try:
        with open(fd, "wb", closefd=True) as f:
            f.write(data)
            f.flush()
            if sync:
                os.fsync(fd)
            os.fchmod(fd, mode)         # (the umask must not decide it)
        os.replace(tmp, dest)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        _name(e, dest)
        raise


def sync_fs(path: Path) -> None:
    """Make everything written to `path`'s filesystem durable (syncfs(2); sync(2) where it is missing).
    A write the disk failed (EIO; ENOSPC found at writeback) raises OSError naming `path`: the
    kernel reports such an error to one syncfs only, so nothing after this call would see it, and
    the caller would name files whose bytes are lost."""
    import ctypes
    fd = os.open(path, os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if getattr(libc, "syncfs", None) is None:
            os.sync()
        elif libc.syncfs(fd) != 0:
            err = ctypes.get_errno()
            if err != errno.ENOSYS:
                raise OSError(err, os.strerror(err), str(path))
            os.sync()
    finally:
        os.close(fd)


WRITE_BACK_EVERY = 0.1       # seconds


@contextmanager
def writing_back(path: Path):
    """While the body writes many new files to `path`'s filesystem (stage's workers copying a
    build's new files), a thread of this otherwise waiting process has the kernel write them to
    disk as they come (a syncfs every WRITE_BACK_EVERY), so that the sync before they get their
    names (adopt) finds little left to wait for: the disk works while the CPUs hash (measured on
    4,997 new packages, 441 MB: that sync took 0.28 s, 0.03 s with this; the stage 1.75 -> 1.58 s)."""
    import threading
    stop, failed = threading.Event(), []

    def loop() -> None:
        try:
            while not stop.wait(WRITE_BACK_EVERY):
                sync_fs(path)
        except OSError as e:
            failed.append(e)        # (raised here once the body is done: a thread's traceback is no report)
    t = threading.Thread(target=loop, name="writeback", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join()
    if failed:
        raise failed[0]         # the kernel told this thread's syncfs, and will tell no later one


MEMORY_FS = (0x01021994, 0x858458F6)      # statfs f_type of tmpfs and ramfs (linux/magic.h)


def in_memory(path: Path) -> bool:
    """Whether `path` is on a memory filesystem (tmpfs, ramfs): there mkdir and rename never wait
    for a disk, and threads only add contention (measured: 9,831 objects placed in 0.13 s by one
    thread, 0.25 s by eight; on ext4 0.5 s by eight, 1.5-2.2 s by one)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    buf = ctypes.create_string_buffer(256)      # struct statfs; f_type, a long, comes first
    if getattr(libc, "statfs", None) is None or libc.statfs(os.fsencode(path), buf) != 0:
        return False
    return ctypes.c_long.from_buffer(buf).value in MEMORY_FS


def is_enospc(e: OSError) -> bool:
    return e.errno in (errno.ENOSPC, errno.EDQUOT)


class ObjectStore:
    """Objects are added under a shared lock and removed (orphans) only under an exclusive one, so a
    command cleaning up never deletes an object another command has just come to rely on."""

    def __init__(self, root: Path, remote=None):
        """`remote`: a RemoteObjects (store/remote.py) this directory caches, shared by other hosts."""
        self.root = root
        self.remote = remote
        self.lock_path = root.parent / "objects.lock"
        self._created: list[str] | None = None

    @contextmanager
    def _flock(self, mode: int):
        makedirs(self.root.parent)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, mode)
            yield
        finally:
            os.close(fd)

    def exclusive(self):
        """No command is adding objects meanwhile (for removing orphans)."""
        return self._flock(fcntl.LOCK_EX)

    @contextmanager
    def adding(self, referenced: Callable[[], set[str]]):
        """All-or-nothing: objects this body adds are removed again if it fails (ENOSPC, bad input,
        a kill signal turned into an exception), unless something committed meanwhile names them."""
        created: list[str] = []
        self._created = created
        try:
            with self._flock(fcntl.LOCK_SH):
                yield
                self._created = None
                self.push(created)     # before the caller commits rows naming them: other hosts read them
        except BaseException:
            self._created = None
            if created:
                with self.exclusive():
                    keep = referenced()
                    for sha in created:
                        if sha not in keep:
                            self.local(sha).unlink(missing_ok=True)
            raise
        finally:
            self._created = None

    def push(self, shas) -> int:
        """Upload these local objects to the shared bucket (those it lacks); how many went up."""
        if self.remote is None:
            return 0
        from ..s3 import side_by_side
        todo, remote = dict.fromkeys(shas), self.remote
        if not todo:
            return 0
        remote.s3           # one client, made before the threads share it
        # several PUTs at once, as publishing's upload does: one at a time, staging a build into a
        # bucket waits a round trip per object (each put is a conditional write of its own)
        return sum(side_by_side(lambda sha: remote.put(sha, self.local(sha)), todo))

    def local(self, sha256: str) -> Path:
        """Where object `sha256` lives in this state dir (it may not be there yet)."""
        return self.root / object_name(sha256)

    def path(self, sha256: str) -> Path:
        """A local file of object `sha256`, fetched from the shared bucket first when this host
        lacks it."""
        p = self.local(sha256)
        if self.remote is not None and not p.exists():
            self.remote.fetch(sha256, p, OBJECT_MODE)
        return p

    def has(self, sha256: str) -> bool:
        return bool(self.present({sha256}))

    def present(self, shas: set[str]) -> set[str]:
        """Which of `shas` the store holds (here, or in the shared bucket). On a disk many local
        checks run in eight threads: with the cache cold each stat waits on the disk, and a world's
        next build asks about 100,000 objects (6 s one at a time, last measured)."""
        names = sorted(shas)

        def local(part: list[str]) -> list[str]:
            return [s for s in part if os.path.exists(f"{self.root}/{object_name(s)}")]
        if len(names) < 1000 or in_memory(self.root):
            found = set(local(names))
        else:
            from concurrent.futures import ThreadPoolExecutor
            with ThreadPoolExecutor(8) as ex:
                found = {s for part in ex.map(local, [names[i::8] for i in range(8)]) for s in part}
        if self.remote is not None:
            found |= {s for s in names if s not in found and self.remote.has(s)}
        return found

    def add(self, src: Path, sha256: str) -> Path:
        """Copy `src` in as object `sha256`; the copy is checked against that hash."""
        dest = self.local(sha256)
        if not dest.exists():
            place(src, dest, OBJECT_MODE, sha256)
            self._record(sha256)
        return dest

    def _record(self, sha: str) -> None:
        if self._created is not None:
            self._created.append(sha)      # list.append is atomic: adopt() runs in threads
        else:
            self.push([sha])               # added outside a batch: shared at once

    def adopt(self, copies: list[tuple[str, str]]) -> None:
        """Rename complete copies made in the store's filesystem (ingest.py), [(copy, sha256)],
        into place as their objects. The caller has synced the filesystem first (sync_fs): one
        sync for a whole build instead of an fsync per file. The directories first, each once
        (makedirs: a thread that finds one made by another goes on); both steps in threads, a share
        of the list each: a fresh store makes thousands of directories, and mkdir waits on the disk
        (not on a memory filesystem: one thread there)."""
        from concurrent.futures import ThreadPoolExecutor
        names = [(tmp, f"{self.root}/{object_name(sha)}", sha) for tmp, sha in copies]
        dirs = sorted({os.path.dirname(d) for _, d, _ in names})

        def mkdirs(ds: list[str]) -> None:
            for d in ds:        # (str and os calls: a fresh store's first stage makes a directory per object)
                try:
                    os.mkdir(d)
                except FileExistsError:
                    continue
                except FileNotFoundError:
                    makedirs(Path(d))       # its aa/ too
                    continue
                os.chmod(d, DIR_MODE)

        def place(part: list[tuple[str, str, str]]) -> None:
            for tmp, dest, sha in part:
                if os.path.exists(dest):
                    os.unlink(tmp)
                    continue
                os.chmod(tmp, OBJECT_MODE)
                try:
                    os.replace(tmp, dest)
                except BaseException as e:
                    _name(e, Path(dest))
                    raise
                self._record(sha)

        makedirs(self.root)
        steps = ((mkdirs, dirs), (place, names))
        if in_memory(self.root):
            for step, items in steps:
                step(items)
            return
        n = 8
        with ThreadPoolExecutor(n) as ex:
            for step, items in steps:
                list(ex.map(step, [items[i::n] for i in range(n)]))

    def add_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        dest = self.local(sha)
        if not dest.exists():
            write_bytes_atomic(dest, data, OBJECT_MODE)
            self._record(sha)
        return sha

    def all(self):
        """(sha256 name, path) of every object file."""
        if not self.root.is_dir():
            return
        for a in sorted(self.root.iterdir()):
            if not a.is_dir() or a.name.startswith("."):    # (.tmp-*: a stage's or a signing's work)
                continue
            for b in sorted(a.iterdir()):
                if b.is_dir():
                    for f in sorted(b.iterdir()):
                        yield f.name, f
