"""`<image>.qemuboot.conf` (written by OE's qemuboot.bbclass) -> the qemu command runqemu would run.

Mirrors runqemu's choices for a non-interactive boot (`runqemu nographic nonetwork`): the files
are looked up relative to the conf's own directory, KVM is never used (TCG only here).
"""
from __future__ import annotations

import configparser
import glob
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import BadInput, Problem

INITRAMFS_TYPES = ("cpio.gz", "cpio", "cpio.zst", "cpio.xz", "cpio.lzma")
VM_TYPES = ("hddimg", "iso", "wic", "wic.vmdk", "wic.qcow2", "wic.vdi", "wic.vhd", "wic.vhdx")


@dataclass
class QemuBoot:
    conf: Path
    vars: dict[str, str]                      # upper-case names, as runqemu keeps them
    kernel: Path | None = None
    rootfs: Path | None = None
    fstype: str = ""
    dtb: Path | None = None
    problems: list[str] = field(default_factory=list)

    def get(self, key: str) -> str:
        return self.vars.get(key, "")

    @property
    def machine(self) -> str:
        return self.get("MACHINE") or self.conf.parent.name


def read(conf: Path) -> dict[str, str]:
    cf = configparser.ConfigParser(interpolation=None)
    try:
        cf.read_string(conf.read_text())
    except configparser.MissingSectionHeaderError:
        raise BadInput([Problem(str(conf), "not a qemuboot.conf: no [config_bsp] section")]) from None
    except (OSError, UnicodeDecodeError, configparser.Error) as e:
        raise BadInput([Problem(str(conf), f"not a qemuboot.conf: {str(e).splitlines()[0]}")]) from None
    if not cf.has_section("config_bsp"):
        raise BadInput([Problem(str(conf), "not a qemuboot.conf: no [config_bsp] section")])
    out = {}
    for k, v in cf.items("config_bsp"):
        if v.startswith("../"):
            v = os.path.abspath(os.path.join(conf.parent, v))
        elif v == ".":
            v = str(conf.parent)
        out[k.upper()] = v
    return out


def _first(patterns: list[str]) -> Path | None:
    for g in patterns:
        for f in sorted(glob.glob(g)):
            if not os.path.isdir(f):
                return Path(f)
    return None


def load(conf: Path, fstype: str | None = None) -> QemuBoot:
    """Read the conf and find its kernel and root filesystem beside it (DEPLOY_DIR_IMAGE)."""
    conf = Path(conf)
    qb = QemuBoot(conf, read(conf))
    d = str(conf.parent)     # runqemu: artefacts are relative to the conf when one is given
    qb.vars["DEPLOY_DIR_IMAGE"] = d
    qb.fstype = fstype or qb.get("QB_DEFAULT_FSTYPE") or "ext4"
    if qb.fstype not in VM_TYPES and os.path.basename(qb.get("QB_DEFAULT_KERNEL")) != "none":
        name = os.path.basename(qb.get("QB_DEFAULT_KERNEL"))
        imagetype = qb.get("KERNEL_IMAGETYPE")
        pats = [f"{d}/{glob.escape(name)}"] if name else []
        if imagetype:
            pats += [f"{d}/{imagetype}", f"{d}/{imagetype}*"]
        qb.kernel = _first(pats)
        if qb.kernel is None:
            qb.problems.append(f"kernel not found in {d}: {name or imagetype or 'QB_DEFAULT_KERNEL unset'}")
    if qb.fstype != "none":
        pats = [f"{d}/{glob.escape(qb.get(k))}*.{qb.fstype}" for k in ("IMAGE_NAME", "IMAGE_LINK_NAME") if qb.get(k)]
        qb.rootfs = _first(pats)
        if qb.rootfs is None:
            qb.problems.append(f"root filesystem not found in {d}: "
                               f"{qb.get('IMAGE_LINK_NAME') or qb.get('IMAGE_NAME')}.{qb.fstype}")
    if qb.get("QB_DTB"):
        qb.dtb = _first([f"{d}/{qb.get('QB_DTB')}", f"{d}/{qb.get('QB_DTB')}*", f"{d}/*.dtb"])
    return qb


def _mem_mb(qb: QemuBoot) -> str:
    m = qb.get("QB_MEM") or "-m 256"
    m = m.rstrip("Mm")
    return m if m.startswith("-m") else f"-m {m}"


def command(qb: QemuBoot, network: bool = False, extra_append: str = "") -> list[str]:
    """The qemu argv for a serial-console boot: the console on stdio, no display, no KVM."""
    if qb.problems:
        raise BadInput([Problem(str(qb.conf), p) for p in qb.problems])
    system = qb.get("QB_SYSTEM_NAME") or _guess_system(qb.machine)
    if not system:
        raise BadInput([Problem(str(qb.conf), f"QB_SYSTEM_NAME unset and machine {qb.machine!r} unknown")])
    parts: list[str] = [system]
    if network:
        # user-mode networking, reachable only through forwards bound to loopback
        dev = (qb.get("QB_NETWORK_DEVICE") or "-device virtio-net-pci,netdev=net0,mac=@MAC@").replace(
            "@MAC@", "52:54:00:12:35:02")
        parts += shlex.split(dev) + ["-netdev", "user,id=net0,restrict=on"]
    else:
        parts += ["-nic", "none"]
    parts += shlex.split(qb.get("QB_RNG"))
    cmdline: list[str] = []
    if qb.rootfs is not None:
        if qb.fstype in INITRAMFS_TYPES:
            parts += ["-initrd", str(qb.rootfs)]
            cmdline.append("root=/dev/ram0 rw debugshell")
        elif qb.fstype in VM_TYPES:
            parts += ["-drive", f"if=virtio,file={qb.rootfs},format=raw"]
        else:
            opt = qb.get("QB_ROOTFS_OPT") or "-drive file=@ROOTFS@,if=virtio,format=raw"
            parts += shlex.split(opt.replace("@ROOTFS@", str(qb.rootfs)))
            root = qb.get("QB_KERNEL_ROOT") or "/dev/vda"
            if not {"ro", "rw"} & set(root.split()):
                root += " rw"
            cmdline.append(f"root={root}")
    parts += shlex.split(qb.get("QB_OPT_APPEND").replace("@DEPLOY_DIR_IMAGE@", qb.get("DEPLOY_DIR_IMAGE")))
    parts += shlex.split(" ".join([qb.get("QB_MACHINE"), qb.get("QB_CPU"), qb.get("QB_SMP")]))
    mem = _mem_mb(qb)
    parts += shlex.split(mem)
    if not qb.machine.startswith(("qemumips", "qemux86", "qemuloongarch64")):
        cmdline.append(f"mem={mem.replace('-m', '').strip()}M")
    for entry in qb.get("SERIAL_CONSOLES").split():
        if ";" in entry:
            cmdline.append(f"console={entry.split(';')[1]}")
    # runqemu nographic: the first serial port is the console on stdio, a second one is null
    parts += ["-serial", "mon:stdio"]
    if "-serial" not in qb.get("QB_OPT_APPEND"):
        parts += ["-serial", "null"]
    parts += ["-nographic"] + shlex.split(qb.get("QB_GRAPHICS"))
    if qb.kernel is not None:
        parts += ["-kernel", str(qb.kernel)]
        if qb.get("QB_KERNEL_CMDLINE") != "none":
            parts += ["-append", " ".join(x for x in [*cmdline, qb.get("QB_KERNEL_CMDLINE_APPEND"), extra_append] if x)]
        if qb.dtb is not None:
            parts += ["-dtb", str(qb.dtb)]
    if qb.get("QB_DEFAULT_BIOS") and os.path.basename(qb.get("QB_DEFAULT_BIOS")) != "none":
        parts += ["-bios", os.path.join(qb.get("DEPLOY_DIR_IMAGE"), os.path.basename(qb.get("QB_DEFAULT_BIOS")))]
    return parts


def _guess_system(machine: str) -> str:
    for prefix, system in (("qemux86-64", "x86_64"), ("qemux86", "i386"), ("qemuarm64", "aarch64"),
                           ("qemuarm", "arm"), ("qemuriscv64", "riscv64"), ("qemuppc", "ppc")):
        if machine.startswith(prefix):
            return f"qemu-system-{system}"
    return ""


def find_confs(path: Path) -> list[Path]:
    """A conf file itself, or the real (not symlinked) confs of a deploy/images/<machine> dir."""
    if path.is_file():
        return [path]
    if path.is_dir():
        confs = sorted(p for p in path.rglob("*.qemuboot.conf") if not p.is_symlink())
        if confs:
            return confs
    raise BadInput([Problem(str(path), "no *.qemuboot.conf here (an OE image built with IMAGE_CLASSES += \"qemuboot\" has one)")])
