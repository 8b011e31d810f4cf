"""SAMPLE DATA: write real .ipk files the way OE's package_ipk/opkg-build does.

ar members: debian-binary ("2.0\\n"), control.tar.gz, data.tar.zst; tar members prefixed "./"; the
archive itself is made by GNU `ar` (deterministic mode). Same inputs give the same bytes, as a
reproducible build would.
"""
from __future__ import annotations

import gzip
import io
import subprocess
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


def write_ipk(pkg: Pkg, dest: Path, mtime: int, fields: list[tuple[str, str]] | None = None,
              data: bytes | None = None) -> Path:
    """Build `pkg` into `dest` (a directory); returns the file. `fields`/`data` override for defects."""
    out = dest / pkg.filename
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        t = Path(tmp)
        (t / "debian-binary").write_bytes(b"2.0\n")
        (t / "control.tar.gz").write_bytes(control_tar(pkg, mtime, fields))
        (t / "data.tar.zst").write_bytes(data if data is not None else data_tar(pkg, mtime))
        tmp_out = t / "out.ipk"
        subprocess.run(["ar", "rcD", str(tmp_out), "debian-binary", "control.tar.gz", "data.tar.zst"],
                       cwd=t, check=True)
        tmp_out.replace(out)
    return out
