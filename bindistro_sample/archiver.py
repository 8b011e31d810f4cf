"""SAMPLE DATA: what OE's archiver class deploys for copyleft recipes (ARCHIVER_MODE[src] = "original"):
tmp/deploy/sources/<TARGET_SYS>/<PF>/ with the recipe's upstream tarball, byte-reproducible."""
from __future__ import annotations

import fnmatch
import gzip
import hashlib
import io
import re
import tarfile
from pathlib import Path

from .recipes import ALL, Recipe

COPYLEFT = ("GPL*", "LGPL*", "AGPL*")      # OE's COPYLEFT_LICENSE_INCLUDE default
TARGET_SYS = {ALL: "allarch-poky-linux"}   # tune and machine recipes: the first machine's
EPOCH = 1735689600                          # 2025-01-01


def is_copyleft(license_expr: str) -> bool:
    return any(fnmatch.fnmatchcase(n, g) for n in re.findall(r"[A-Za-z0-9.+_-]+", license_expr) for g in COPYLEFT)


def pf(r: Recipe) -> str:
    pv = f"{r.pv}AUTOINC+{r.srcrev[:10]}" if r.git else r.pv       # PV before the PR service resolves AUTOINC
    return f"{r.pn}-{str(r.pe) + '_' if r.pe else ''}{pv}-{r.pr}"


def tarball(r: Recipe, mtime: int) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tf:
        for name, text in ((f"{r.pn}-{r.pv}/README", f"{r.pn} {r.pv}: SAMPLE DATA sources ({r.license})\n"),
                           (f"{r.pn}-{r.pv}/main.c", f"/* {r.pn} {r.pv} */\nint main(void) {{ return 0; }}\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode, info.uname, info.gname = len(data), mtime, 0o644, "root", "root"
            tf.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def upstream_time(r: Recipe) -> int:
    # fixed by the upstream version: a PR bump refetches nothing, and the tarball keeps its bytes
    return EPOCH + int(hashlib.sha256(f"{r.pn}-{r.pv}".encode()).hexdigest()[:6], 16)


def write_downloads(dl: Path, recipes: list[Recipe]) -> int:
    """DL_DIR as bitbake's fetcher leaves it: each upstream tarball (the bytes the archiver copies)
    and its .done stamp; git recipes' clones are working directories under git2/, not mirrored here."""
    dl.mkdir(parents=True, exist_ok=True)
    n = 0
    for r in recipes:
        if r.git:
            continue
        name = f"{r.pn}-{r.pv}.tar.gz"
        if not (dl / name).exists():
            (dl / name).write_bytes(tarball(r, upstream_time(r)))
            (dl / f"{name}.done").write_text("")
        n += 1
    return n


def write_sources(deploy: Path, recipes: list[Recipe], first_target: str, skip: set[str] = frozenset()) -> int:
    """Each archive's time is fixed by its upstream version, so a recipe version's sources have the same
    bytes in every build (a release publishes them once, and they must never change)."""
    n = 0
    for r in recipes:
        if r.pn in skip or not is_copyleft(r.license):
            continue
        d = deploy / "sources" / TARGET_SYS.get(r.kind, first_target) / pf(r)
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{r.pn}-{r.pv}.tar.gz").write_bytes(tarball(r, upstream_time(r)))
        n += 1
    return n
