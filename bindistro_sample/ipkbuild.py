"""SAMPLE DATA: write real .ipk files the way OE's package_ipk/opkg-build does.

ar members: debian-binary ("2.0\\n"), control.tar.gz, data.tar.zst; tar members prefixed "./"; the
archive is what GNU `ar rcD` (deterministic mode) writes, byte for byte (tests/test_sample_world.py
compares), written here because one `ar` process per package was most of a world-sized build's time.
Same inputs give the same bytes, as a reproducible build would.
"""
from __future__ import annotations

import gzip
import io
import tarfile
import tempfile
from pathlib import Path

import zstandard

from .packages import File, Pkg


def _tar(entries: list[tuple[str, File]], mtime: int) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, f in entries:
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.uid, ti.gid, ti.uname, ti.gname = mtime, 0, 0, "root", "root"
            if f.kind == "dir":
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                tf.addfile(ti)
            elif f.kind == "symlink":
                ti.type, ti.linkname, ti.mode = tarfile.SYMTYPE, f.target, 0o777
                tf.addfile(ti)
            else:
                ti.size, ti.mode = len(f.data), f.mode
                tf.addfile(ti, io.BytesIO(f.data))
    return buf.getvalue()


def control_text(fields: list[tuple[str, str]]) -> str:
    return "".join(f"{k}: {v}\n" for k, v in fields)


def control_tar(pkg: Pkg, mtime: int, fields: list[tuple[str, str]] | None = None) -> bytes:
    entries = [("./", File("/", "dir")),
               ("./control", File("control", data=control_text(fields or pkg.control_fields()).encode()))]
    conffiles = pkg.conffiles if pkg.recipe.config_noreplace else []   # the injected defect: not declared
    if conffiles:
        entries.append(("./conffiles", File("conffiles", data="".join(c + "\n" for c in conffiles).encode())))
    scripts = dict(pkg.scripts)
    if pkg.recipe.postinst_fails_upgrade and "postinst" in scripts:
        # opkg calls postinst with `configure` alone (no old version, unlike dpkg and rpm): an
        # upgrade-only failure shows in the new preinst, which opkg calls with `upgrade <old-version>`
        scripts["preinst"] = ("#!/bin/sh\n# injected defect: cannot migrate settings on upgrade\n"
                              "if [ \"$1\" = upgrade ]; then echo 'cannot migrate settings' >&2; exit 1; fi\nexit 0\n")
    for name in sorted(scripts):
        entries.append((f"./{name}", File(name, data=scripts[name].encode(), mode=0o755)))
    raw = io.BytesIO()
    with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(_tar(entries, mtime))
    return raw.getvalue()


def data_tar(pkg: Pkg, mtime: int) -> bytes:
    entries = [("./", File("/", "dir"))] + [("." + f.path + ("/" if f.kind == "dir" else ""), f) for f in pkg.files]
    return zstandard.ZstdCompressor(level=3).compress(_tar(entries, mtime))


def ar_archive(members: list[tuple[str, bytes]]) -> bytes:
    """A GNU ar archive as `ar rcD` makes it: zero times and owners, mode 644, names ending in "/"."""
    out = [b"!<arch>\n"]
    for name, data in members:
        head = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{644:<8}{len(data):<10}`\n"
        assert len(head) == 60 and len(name) < 16, name
        out += [head.encode(), data, b"\n" if len(data) % 2 else b""]
    return b"".join(out)


def write_ipk(pkg: Pkg, dest: Path, mtime: int, fields: list[tuple[str, str]] | None = None,
              data: bytes | None = None) -> Path:
    """Build `pkg` into `dest` (a directory); returns the file. `fields`/`data` override for defects."""
    out = dest / pkg.filename
    blob = ar_archive([("debian-binary", b"2.0\n"), ("control.tar.gz", control_tar(pkg, mtime, fields)),
                       ("data.tar.zst", data if data is not None else data_tar(pkg, mtime))])
    with tempfile.NamedTemporaryFile(dir=dest, prefix=".tmp-", delete=False) as f:
        f.write(blob)
    Path(f.name).chmod(0o644)
    Path(f.name).replace(out)
    return out
