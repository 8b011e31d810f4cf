"""SAMPLE DATA: bootable images for the sample machines.

A kernel from Debian's linux-image package and a static busybox per architecture (fetched once by
scripts/fetch-boot.sh into the cache), the image's package files as a gzip'd newc initramfs with a
shell /init, and a `<IMAGE_LINK_NAME>.qemuboot.conf` in the format qemuboot.bbclass writes.
"""
from __future__ import annotations

import configparser
import gzip
import lzma
import os
import re
import stat
from pathlib import Path

from bindistro import cache, cpio

from . import pkgcache
from .packages import File

MARKER = "bindistro-sample: boot complete"

# Written like meta/conf/machine/qemux86-64.conf / qemuarm64.conf set them; -smp is smaller because
# the boot test runs under TCG on a 2-core machine.
MACHINE_QB = {
    "qemux86-64": {
        # vmlinux: QEMU boots the uncompressed ELF directly (its Xen PVH entry note); under TCG,
        # decompressing Debian's 8 MB bzImage took 3.4 s of a 5.8 s boot (kernel_type() falls back)
        "debarch": "amd64", "kernel_imagetype": "vmlinux", "tune_arch": "x86_64",
        "serial_consoles": "115200;ttyS0 115200;ttyS1",
        "qb_system_name": "qemu-system-x86_64",
        "qb_cpu": "-cpu IvyBridge -machine q35,i8042=off", "qb_cpu_kvm": "-cpu IvyBridge -machine q35,i8042=off",
        "qb_smp": "-smp 1", "qb_mem": "-m 256",
        "qb_kernel_cmdline_append": "oprofile.timer=1 tsc=reliable no_timer_check rcupdate.rcu_expedited=1 swiotlb=0",
        "qb_opt_append": "", "qb_serial_opt": "-serial mon:stdio -serial null",
        "qb_drive_type": "/dev/vd",
    },
    "qemuarm64": {
        "debarch": "arm64", "kernel_imagetype": "Image", "tune_arch": "aarch64",
        "serial_consoles": "115200;ttyAMA0 115200;hvc0",
        "qb_system_name": "qemu-system-aarch64", "qb_machine": "-machine virt",
        "qb_cpu": "-cpu cortex-a57", "qb_cpu_kvm": "-cpu host -machine gic-version=3",
        "qb_smp": "-smp 1", "qb_mem": "-m 256",
        "qb_kernel_cmdline_append": "swiotlb=0",
        "qb_opt_append": "", "qb_serial_opt": "-device virtio-serial-pci -chardev null,id=virtcon -device virtconsole,chardev=virtcon",
        "qb_rootfs_opt": "-drive id=disk0,file=@ROOTFS@,if=none,format=raw -device virtio-blk-pci,drive=disk0",
    },
}


def cache_dir() -> Path:
    return cache.cache_dir() / "boot"


def boot_inputs(machine: str) -> tuple[Path, Path] | None:
    """(kernel, busybox) for a machine, or None when scripts/fetch-boot.sh has not run."""
    d = cache_dir() / MACHINE_QB[machine]["debarch"]
    k, b = d / "vmlinuz", d / "busybox"
    if not (k.is_file() and b.is_file()):
        return None
    if MACHINE_QB[machine]["kernel_imagetype"] == "vmlinux":
        k = _vmlinux(k) or k
    return k, b


def kernel_type(machine: str, kernel: Path) -> str:
    ktype = MACHINE_QB[machine]["kernel_imagetype"]
    return "bzImage" if ktype == "vmlinux" and kernel.name == "vmlinuz" else ktype


PVH_NOTE = 18     # XEN_ELFNOTE_PHYS32_ENTRY: the entry QEMU's -kernel uses for an x86 ELF kernel


def _vmlinux(bzimage: Path) -> Path | None:
    """The ELF kernel inside an xz-compressed bzImage, cached beside it; None when it has no PVH entry."""
    out = bzimage.with_name("vmlinux")
    if out.is_file():
        return out
    data = bzimage.read_bytes()
    start = data.find(b"\xfd7zXZ\x00")
    if start < 0:
        return None
    try:
        elf = lzma.LZMADecompressor(lzma.FORMAT_XZ).decompress(data[start:], max_length=256 << 20)
    except lzma.LZMAError:
        return None
    note = re.compile(rb"\x04\x00\x00\x00.{4}" + re.escape(PVH_NOTE.to_bytes(4, "little")) + rb"Xen\x00", re.S)
    if not elf.startswith(b"\x7fELF") or not note.search(elf):
        return None
    tmp = out.with_name(f".vmlinux.{os.getpid()}")
    tmp.write_bytes(elf)
    tmp.rename(out)
    return out


def init_script(machine: str, panic: bool = False) -> str:
    tail = ("echo 'bindistro-sample: init exits (injected boot-panic)'\nexit 1\n" if panic else
            f"echo '{MARKER}'\n"
            "# busybox poweroff/halt/reboot signal PID 1: act on them as an init would\n"
            "trap 'poweroff -f' USR2\ntrap 'halt -f' USR1\ntrap 'reboot -f' TERM\n"
            "# PID 1 stays this script. A getty stand-in: any user name gives a root shell (SAMPLE DATA:\n"
            "# no password anywhere); `wait` lets the traps run while the shell is open\n"
            "while true; do\n"
            "  printf '\\n%s login: ' \"$(hostname)\"\n"
            "  read -r user || sleep 1\n"
            "  setsid cttyhack /bin/sh -l &\n"
            "  wait $!\n"
            "done\n")
    return ("#!/bin/sh\n# SAMPLE DATA init of the bindistro sample image: no real init system\n"
            "mkdir -p /sbin /usr/bin /usr/sbin\n/bin/busybox --install -s\n"
            "mount -t proc proc /proc\nmount -t sysfs sysfs /sys\nmount -t devtmpfs devtmpfs /dev 2>/dev/null\n"
            "mkdir -p /run /tmp\n"
            f"hostname {machine}\n"
            "echo 'bindistro-sample: init started'\n" + tail)


def write_initramfs(files: list[File], dest: Path, mtime: int) -> None:
    """A deterministic gzip'd newc archive: root-owned, fixed times, /dev/console included."""
    entries = []
    for f in files:
        if f.kind == "dir":
            entries.append(cpio.Entry(f.path, stat.S_IFDIR | 0o755))
        elif f.kind == "symlink":
            entries.append(cpio.Entry(f.path, stat.S_IFLNK | 0o777, f.target.encode()))
        elif f.kind == "chardev":
            major, minor = (int(x) for x in f.target.split(":"))
            entries.append(cpio.Entry(f.path, stat.S_IFCHR | 0o600, rdev=(major, minor)))
        else:
            entries.append(cpio.Entry(f.path, stat.S_IFREG | (f.mode & 0o7777), f.data))
    # gzip -1, not OE's -9: the kernel unpacks either, and -9 of busybox and the image's files was
    # most of a sample build's time (5x -1's); kept by content as well
    dest.write_bytes(pkgcache.derived("initramfs.gz-1", cpio.write(entries, mtime),
                                      lambda b: gzip.compress(b, 1, mtime=0)))


def boot_files(machine: str, busybox: Path, panic: bool = False) -> list[File]:
    return [File("/dev", "dir"), File("/dev/console", "chardev", target="5:1"),
            File("/proc", "dir"), File("/sys", "dir"), File("/root", "dir"),
            File("/bin/busybox", data=busybox.read_bytes(), mode=0o755),
            File("/bin/sh", "symlink", target="busybox"),
            File("/init", data=init_script(machine, panic).encode(), mode=0o755)]


def write_qemuboot(dest: Path, machine: str, image_name: str, image_link_name: str, kernel_file: str,
                   fstype: str, kernel_type: str | None = None) -> None:
    """`<IMAGE_NAME>.qemuboot.conf`: section config_bsp, sorted lower-case keys, paths relative to
    DEPLOY_DIR_IMAGE, as do_write_qemuboot_conf writes it."""
    qb = dict(MACHINE_QB[machine])
    qb.pop("debarch")
    qb["kernel_imagetype"] = kernel_type or qb["kernel_imagetype"]
    qb.update({"machine": machine, "deploy_dir_image": ".", "image_name": image_name,
               "image_link_name": image_link_name, "qb_default_kernel": kernel_file,
               "qb_default_fstype": fstype, "qb_rng": "-object rng-random,filename=/dev/urandom,id=rng0 "
               "-device virtio-rng-pci,rng=rng0", "qb_graphics": "", "qb_kernel_root": "/dev/vda"})
    cf = configparser.ConfigParser()
    cf.add_section("config_bsp")
    for k in sorted(qb):
        cf.set("config_bsp", k, qb[k])
    with dest.open("w") as fh:
        cf.write(fh)
