"""Boot after upgrade: the seed asks that an upgraded system's tests pass "as good or better than the
prior test pass". The root a package manager just upgraded (pm/upgrade.py) is packed like the
image it came from — its files, plus what the old image had that no package owned (/init, device
nodes, files the image build generated) — and booted in QEMU with the candidate's kernel and
qemuboot.conf. Each boot check, and each ptest when the image carries ptest-runner, is then
classified as Debian's britney classifies autopkgtest results against the fresh candidate image
and the previous release:

    PASS        passes after the upgrade
    REGRESSION  fails after the upgrade, passed on the fresh candidate image or the last release
    ALWAYSFAIL  fails, and failed on every baseline too
    FAIL        fails, and there is no baseline to compare with (a new test)

Only REGRESSION is an error. Images of type cpio.gz (initramfs) are packed; other types are said.
"""
from __future__ import annotations

import gzip
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from . import cpio
from .boot import BootResult, boot
from .spec import Boot
from .yocto import qemuboot

PASS, FAIL, ALWAYSFAIL, REGRESSION = "PASS", "FAIL", "ALWAYSFAIL", "REGRESSION"
# package managers' caches and scratch space: not part of a device's system
SKIP = ("var/cache", "tmp", "var/tmp", "proc", "sys", "run")


@dataclass
class Verdict:
    check: str            # the check's name, or "boot" for reaching the console at all
    run: str
    status: str           # PASS | FAIL | ALWAYSFAIL | REGRESSION
    now: str              # what happened after the upgrade
    baselines: dict = field(default_factory=dict)   # "fresh candidate" / "release X" -> passed?


def classify(ok: bool, baselines: list[bool]) -> str:
    if ok:
        return PASS
    if not baselines:
        return FAIL
    return REGRESSION if any(baselines) else ALWAYSFAIL


def pack(root: Path, old_image: Path, owned_before: set[str], dest: Path) -> int:
    """Write the upgraded root as a gzip'd newc initramfs; returns the number of entries."""
    entries = cpio.from_tree(root, skip=SKIP)
    present = {e.name for e in entries}
    for e in cpio.read_gz(old_image):
        # what the image had beyond its packages; a file a removed package owned stays removed
        if e.name not in present and "/" + e.name not in owned_before:
            entries.append(e)
    for d in SKIP:
        entries.append(cpio.Entry(d, 0o040755))
    # level 1: the kernel unpacks it once, and level 6 cost ~0.3 s of CPU a boot (3x level 1)
    dest.write_bytes(gzip.compress(cpio.write(entries), 1, mtime=0))
    return len(entries)


def boot_upgraded(root: Path, owned_before: set[str], old_image: Path, deploy: dict[str, Path], conf_name: str,
                  cfg: Boot, work: Path) -> BootResult:
    """`deploy`: the candidate's image files of the machine (name -> store path), as the build wrote
    them; the rootfs the qemuboot.conf names is replaced by the packed upgraded root."""
    work.mkdir(parents=True, exist_ok=True)
    for name, src in deploy.items():
        if not (work / name).exists():
            os.link(src, work / name)
    conf = work / conf_name
    qb = qemuboot.load(conf)
    if qb.rootfs is None:
        raise ValueError(f"{conf_name}: names no root filesystem to replace")
    rootfs = work / qb.rootfs.name
    rootfs.unlink()
    pack(root, old_image, owned_before, rootfs)
    return boot(conf, cfg)


def verdicts(res: BootResult, cfg: Boot, baselines: dict[str, BootResult | dict | None]) -> list[Verdict]:
    """Each check of `res` against the same check in each baseline (a BootResult or its dict)."""
    def checks_of(b) -> tuple[bool, dict[str, bool]] | None:
        if b is None:
            return None
        d = b if isinstance(b, dict) else b.to_dict()
        checks = {c["name"]: bool(c["ok"]) for c in d.get("checks") or []}
        checks.update({f"ptest {k}": v == "PASS" for k, v in (d.get("ptests") or {}).items() if v != "SKIP"})
        return d.get("status") == "passed", checks
    base = {k: checks_of(v) for k, v in baselines.items() if checks_of(v) is not None}
    booted = res.status in ("passed", "check-failed")
    out = [Verdict("boot", "", classify(booted, [b[0] or bool(b[1]) for b in base.values()]),
                   "reached the console" if booted else f"{res.status}: {res.reason}",
                   {k: b[0] or bool(b[1]) for k, b in base.items()})]
    if not booted:
        return out
    got = {c.name: c for c in res.checks}
    for chk in cfg.checks:
        c = got.get(chk.name)
        ok = bool(c and c.ok)
        had = {k: b[1][chk.name] for k, b in base.items() if chk.name in b[1]}
        out.append(Verdict(chk.name, chk.run, classify(ok, list(had.values())),
                           "passed" if ok else (c.reason if c else "not run"), had))
    for test, status in sorted((res.ptests or {}).items()):
        if status == "SKIP":
            continue
        name = f"ptest {test}"
        had = {k: b[1][name] for k, b in base.items() if name in b[1]}
        out.append(Verdict(name, "ptest-runner", classify(status == "PASS", list(had.values())), status, had))
    return out


def cleanup(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)
