"""Content-addressed object store: objects/<aa>/<bb>/<sha256>.

Objects are immutable. Writing goes to a temporary name, is fsynced and renamed into place, so a
crash never leaves a half-written object under its final name. Where source and store share a
filesystem the object is a hard link, which costs no copy.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

CHUNK = 1 << 20


def hash_file(path: Path) -> tuple[str, str, int]:
    """(sha256, md5, size) in one read: feeds need both sums."""
    sha, md5, size = hashlib.sha256(), hashlib.md5(), 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return sha.hexdigest(), md5.hexdigest(), size


def fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def place(src: Path, dest: Path, link: bool = True) -> None:
    """Put a copy of `src` at `dest` atomically (hard link if possible, else copy + fsync)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=dest.parent)
    os.close(fd)
    tmp_p = Path(tmp)
    try:
        linked = False
        if link:
            try:
                tmp_p.unlink()
                os.link(src, tmp_p)
                linked = True
            except OSError:
                linked = False
        if not linked:
            with open(src, "rb") as fi, open(tmp_p, "wb") as fo:
                shutil.copyfileobj(fi, fo, CHUNK)
                fo.flush()
                os.fsync(fo.fileno())
        os.replace(tmp_p, dest)
    except BaseException:
        tmp_p.unlink(missing_ok=True)
        raise


def write_bytes_atomic(dest: Path, data: bytes) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ObjectStore:
    def __init__(self, root: Path):
        self.root = root

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def add(self, src: Path, sha256: str) -> Path:
        dest = self.path(sha256)
        if not dest.exists():
            place(src, dest)
        return dest

    def add_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        dest = self.path(sha)
        if not dest.exists():
            write_bytes_atomic(dest, data)
        return sha
