"""Hand-made package archives for hostile-input tests: the generators must produce what no real tool
would (bombs, escapes, injected names), so they write ar and tar themselves."""
from __future__ import annotations

import gzip
import io
import tarfile
from pathlib import Path


def ar(members: list[tuple[str, bytes]]) -> bytes:
    """A System V / GNU ar archive, as `ar rcD` writes it (names up to 15 chars, mode 644)."""
    out = [b"!<arch>\n"]
    for name, data in members:
        hdr = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
        out += [hdr, data, b"\n" if len(data) % 2 else b""]
    return b"".join(out)


def tar(entries: list[tuple], gz: bool = True) -> bytes:
    """entries: (name, bytes) files, (name, "symlink", target), (name, "hardlink", target), (name, "dir")."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for e in entries:
            ti = tarfile.TarInfo(e[0])
            if len(e) == 2:
                ti.size, ti.mode = len(e[1]), 0o644
                tf.addfile(ti, io.BytesIO(e[1]))
            elif e[1] == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            else:
                ti.type = tarfile.SYMTYPE if e[1] == "symlink" else tarfile.LNKTYPE
                ti.linkname = e[2]
                tf.addfile(ti)
    raw = buf.getvalue()
    return gzip.compress(raw, 6, mtime=0) if gz else raw


def control(name="hello", version="1.0-r0", arch="all", extra: str = "") -> bytes:
    return (f"Package: {name}\nVersion: {version}\nArchitecture: {arch}\nMaintainer: t <t@x>\n"
            f"Description: test\n{extra}").encode()


def ipk(ctl: bytes | None = None, data: list[tuple] | None = None, control_tar: bytes | None = None,
        data_tar: bytes | None = None, data_name: str = "data.tar.gz") -> bytes:
    ctl_tar = control_tar if control_tar is not None else tar([("./control", ctl or control())])
    dat = data_tar if data_tar is not None else tar(data if data is not None else [("./usr/bin/hello", b"#!/bin/sh\n")])
    return ar([("debian-binary", b"2.0\n"), ("control.tar.gz", ctl_tar), (data_name, dat)])


def gz_zeros(n: int) -> bytes:
    """n zero bytes, gzip'd in chunks (a bomb without holding n bytes); level 1: only the size counts."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=1, mtime=0) as g:
        chunk = bytes(1 << 20)
        for _ in range(n >> 20):
            g.write(chunk)
    return buf.getvalue()


def tar_gz_of_zeros(member: str, n: int) -> bytes:
    """A tar.gz with one member of n zero bytes, streamed (never n bytes in memory)."""
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as g:
        ti = tarfile.TarInfo(member)
        ti.size = n
        g.write(ti.tobuf(format=tarfile.GNU_FORMAT))
        chunk = bytes(1 << 20)
        for _ in range(n >> 20):
            g.write(chunk)
        g.write(bytes(1024))          # end-of-archive blocks
    return buf.getvalue()


def tar_zst_of_zeros(member: str, n: int) -> bytes:
    """zstd reaches ratios gzip cannot (~30,000:1 on zeros): the bomb a ratio bound must catch."""
    import zstandard
    buf = io.BytesIO()
    with zstandard.ZstdCompressor(level=3).stream_writer(buf, closefd=False) as z:
        ti = tarfile.TarInfo(member)
        ti.size = n
        z.write(ti.tobuf(format=tarfile.GNU_FORMAT))
        chunk = bytes(16 << 20)
        for _ in range(n // len(chunk)):
            z.write(chunk)
        z.write(bytes(1024))
    return buf.getvalue()


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path
