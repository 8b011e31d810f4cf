"""newc cpio archives (what OE's `cpio.gz` images and initramfs are), read and written.

Written by hand: Python has no cpio module, the `cpio` tool would need root to make /dev/console,
and the format is 13 hex fields per entry. Archives are root-owned with fixed times, so the same
entries always give the same bytes.
"""
from __future__ import annotations

import gzip
import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

MAX_ENTRIES = 1_000_000


@dataclass
class Entry:
    name: str             # without a leading "/"
    mode: int             # type and permission bits, as st_mode
    data: bytes = b""     # file content, or a symlink's target
    rdev: tuple[int, int] = (0, 0)

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.mode)


def _entry(name: str, mode: int, data: bytes, ino: int, rdev=(0, 0), mtime: int = 0) -> bytes:
    nb = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1, mtime, len(data), 0, 0, rdev[0], rdev[1], len(nb), 0]
    out = b"070701" + b"".join(b"%08X" % f for f in fields) + nb
    out += b"\0" * (-len(out) % 4) + data
    return out + b"\0" * (-len(out) % 4)


def write(entries: list[Entry], mtime: int = 0) -> bytes:
    """newc bytes of `entries` (sorted by name, every parent directory added)."""
    by_name = {e.name.strip("/"): e for e in entries if e.name.strip("/")}
    for name in list(by_name):
        p = os.path.dirname(name)
        while p:
            by_name.setdefault(p, Entry(p, stat.S_IFDIR | 0o755))
            p = os.path.dirname(p)
    buf = io.BytesIO()
    for ino, name in enumerate(sorted(by_name), 1):
        e = by_name[name]
        buf.write(_entry(name, e.mode, b"" if e.is_dir else e.data, ino, e.rdev, mtime))
    buf.write(_entry("TRAILER!!!", 0, b"", 0))
    return buf.getvalue()


def read(data: bytes) -> list[Entry]:
    out, i = [], 0
    while i + 110 <= len(data) and len(out) < MAX_ENTRIES:
        h = data[i:i + 110]
        if h[:6] not in (b"070701", b"070702"):
            raise ValueError(f"not a newc cpio archive (bad magic at byte {i})")
        f = [int(h[6 + 8 * k:14 + 8 * k], 16) for k in range(13)]
        mode, size, rdev, namesize = f[1], f[6], (f[9], f[10]), f[11]
        name = data[i + 110:i + 110 + namesize - 1].decode("utf-8", "surrogateescape")
        i = (i + 110 + namesize + 3) & ~3
        if name == "TRAILER!!!":
            break
        out.append(Entry(name[2:] if name.startswith("./") else name, mode, data[i:i + size], rdev))
        i = (i + size + 3) & ~3
    return out


def read_gz(path: Path) -> list[Entry]:
    return read(gzip.decompress(path.read_bytes()))


def from_tree(root: Path, skip: tuple[str, ...] = ()) -> list[Entry]:
    """Entries for everything under `root` (files, links, directories, device nodes)."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel
        dirnames[:] = [d for d in dirnames if os.path.join(rel, d) not in skip]
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            r = os.path.join(rel, name)
            if stat.S_ISLNK(st.st_mode):
                out.append(Entry(r, st.st_mode, os.readlink(p).encode()))
            elif stat.S_ISREG(st.st_mode):
                out.append(Entry(r, st.st_mode, Path(p).read_bytes()))
            elif stat.S_ISDIR(st.st_mode):
                out.append(Entry(r, st.st_mode))
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                out.append(Entry(r, st.st_mode, rdev=(os.major(st.st_rdev), os.minor(st.st_rdev))))
    return out
