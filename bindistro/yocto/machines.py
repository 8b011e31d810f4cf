"""Each machine's package architectures (PACKAGE_ARCHS, most generic first) as the build recorded
them, so SoC-family feeds come from the build rather than from someone typing them into the spec.

Two records, best first:
- the image's /etc/opkg/arch.conf: OE's opkg-arch-config writes ALL_MULTILIB_PACKAGE_ARCHS into it
  in priority order (tune archs, then SoC family archs such as meta-freescale's MACHINE_SOCARCH
  `aarch64-mx8qxp`, then MACHINE_ARCH);
- buildhistory's images/<machine>/<libc>/<image>/: build-id.txt names MACHINE, installed-packages.txt
  the package files installed, whose architectures are ordered here as OE orders them (generic,
  then the archs extending one of them, e.g. `aarch64` then `aarch64-mx8qxp`, then MACHINE_ARCH).
Only the architectures that have packages in the build's deploy directories are feeds."""
from __future__ import annotations

import re
from pathlib import Path

from ..formats.base import ARCHIVE_ERRORS, open_tar
from ..model import ROOTFS

GENERIC = ("all", "any", "noarch")
ARCH_CONF = re.compile(r"^arch\s+(\S+)\s+(\d+)\s*$", re.M)
LIMIT = 1 << 40


def machine_arch(machine: str) -> str:
    return machine.replace("-", "_")      # MACHINE_ARCH = "${@d.getVar('MACHINE').replace('-', '_')}"


def arch_conf(archs: list[str]) -> str:
    """opkg's arch.conf as opkg-arch-config writes it: priority 1, 6, 11 … (later archs win)."""
    return "".join(f"arch {a} {1 + 5 * i}\n" for i, a in enumerate(archs))


def from_arch_conf(text: str) -> list[str]:
    return [a for a, _p in sorted(ARCH_CONF.findall(text), key=lambda x: int(x[1]))]


def _rootfs_arch_conf(path: Path) -> str | None:
    with open(path, "rb") as fh:
        try:
            for m in (tf := open_tar(path.name, fh, limit=LIMIT)):
                if m.name.removeprefix("./").lstrip("/") == "etc/opkg/arch.conf" and m.isfile():
                    return tf.extractfile(m).read(64 << 10).decode(errors="replace")
        except ARCHIVE_ERRORS:
            return None
    return None


def _file_arch(filename: str, march: str) -> str | None:
    stem = re.sub(r"\.(ipk|deb|rpm)$", "", filename)
    if stem == filename:
        return None
    if filename.endswith(".rpm"):
        return stem.rsplit(".", 1)[-1]
    for known in (march, "x86_64"):        # the only arch names with "_" in them
        if stem.endswith("_" + known):
            return known
    return stem.rsplit("_", 1)[-1]


def order(archs: dict[str, int], march: str) -> list[str]:
    """Architectures seen (-> package count) in OE's priority order: generic first, MACHINE_ARCH last,
    between them the tune archs, then the archs that extend one of them (SoC family). Of two tune
    archs the machine's own TUNE_PKGARCH has most packages and the higher priority: it goes later."""
    rest = [a for a in archs if a not in GENERIC and a != march]
    ext = [a for a in rest if any(a != b and a.startswith(b + "-") for b in rest)]
    base = sorted((a for a in rest if a not in ext), key=lambda a: (archs[a], a))
    return [a for a in GENERIC if a in archs] + base + sorted(ext) + ([march] if march in archs else [])


def from_buildhistory(images_dir: Path) -> dict[str, list[str]]:
    """machine -> archs, from buildhistory/images/*/*/*/{build-id.txt,installed-packages.txt}."""
    seen: dict[str, dict[str, int]] = {}
    for bid in sorted(images_dir.glob("*/*/*/build-id.txt")):
        m = re.search(r"^MACHINE\s*=\s*\"([^\"]+)\"", bid.read_text(errors="replace"), re.M)
        pkgs = bid.parent / "installed-packages.txt"
        if not m or not pkgs.is_file():
            continue
        machine = m.group(1)
        counts = seen.setdefault(machine, {})
        for line in pkgs.read_text(errors="replace").split():
            a = _file_arch(line.rsplit("/", 1)[-1], machine_arch(machine))
            if a:
                counts[a] = counts.get(a, 0) + 1
    return {mn: order(c, machine_arch(mn)) for mn, c in seen.items()}


def from_build(topdir: Path) -> dict[str, list[str]]:
    """machine -> its package architectures that have packages in tmp/deploy/<format>/, most generic
    first (rpm directory names mapped back: `noarch` is `all`, `_` for `-`)."""
    out: dict[str, list[str]] = {}
    for idir in sorted((topdir / "tmp" / "deploy" / "images").glob("*/")):
        roots = sorted(p for p in idir.iterdir() if ROOTFS.search(p.name) and not p.is_symlink())
        text = _rootfs_arch_conf(roots[-1]) if roots else None
        if text:
            out[idir.name] = from_arch_conf(text)
    for machine, archs in from_buildhistory(topdir / "buildhistory" / "images").items():
        out.setdefault(machine, archs)
    debipk, rpm = set(), set()
    for fmt in ("ipk", "deb", "rpm"):
        for d in (topdir / "tmp" / "deploy" / fmt).glob("*/"):
            (rpm if fmt == "rpm" else debipk).add(d.name)

    def has(a: str) -> bool:
        # rpm names `all` noarch and writes `_` for `-`; its own noarch is not another feed
        return a in debipk or (a not in GENERIC and a.replace("-", "_") in rpm) or (a == "all" and "noarch" in rpm)
    return {m: [a for a in archs if has(a)] for m, archs in out.items()}
