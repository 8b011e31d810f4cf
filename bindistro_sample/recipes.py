"""SAMPLE DATA: a made-up but Yocto-shaped set of recipes and how it changes from release to release.

Everything here is deterministic from (seed, release): release N is release 1 evolved N-1 times.
"""
from __future__ import annotations

import copy
import hashlib
import random
import re
from dataclasses import dataclass, field

# Where a recipe's packages go: the tune's arch, `all`, the machine's arch, or its SoC family's
# (MACHINE_SOCARCH, only machines that have one) (like PACKAGE_ARCH).
TUNE, ALL, MACH, SOC = "tune", "all", "machine", "soc"


@dataclass
class Recipe:
    pn: str
    pv: str
    kind: str = TUNE
    pe: int = 0
    pr: str = "r0"
    prauto: int = 0              # the PR server's value (PKGR = PR.PRAUTO)
    rebuild: int = 0             # which build of this PV it is: each one has another task checksum
    git: bool = False            # PV carries +gitAUTOINC+<sha>, resolved to +git<N>+<sha>
    srcrev: str = ""
    autoinc: int = 0
    libs: list[str] = field(default_factory=list)   # "name:soversion"
    rdepends: list[str] = field(default_factory=list)
    recommends: list[str] = field(default_factory=list)
    conffiles: list[str] = field(default_factory=list)
    postinst: bool = False
    doc: bool = False
    split: list[str] = field(default_factory=list)       # extra subpackages carved out of the main one
    provides: list[str] = field(default_factory=list)    # RPROVIDES of the main package
    replaces: list[str] = field(default_factory=list)    # RREPLACES (+ RCONFLICTS) of the main package
    conflicts: list[str] = field(default_factory=list)   # RCONFLICTS only
    lib_replaces: dict[str, str] = field(default_factory=dict)   # new library package -> the one it replaces (soname bump)
    license: str = "MIT"
    summary: str = ""
    # injected defects (sample/defects.py)
    config_noreplace: bool = True        # rpm %config(noreplace) for the conffiles
    postinst_fails_upgrade: bool = False
    breaks_after_upgrade: bool = False
    abi_break: bool = False

    @property
    def pkgv(self) -> str:
        if self.git:
            return f"{self.pv}{self.autoinc}+{self.srcrev[:10]}"  # PV ends in "+git"
        return self.pv

    @property
    def pkgr(self) -> str:
        return f"{self.pr}.{self.prauto}"   # PR server appends PRAUTO to PR

    @property
    def version(self) -> str:
        v = f"{self.pkgv}-{self.pkgr}"
        return f"{self.pe}:{v}" if self.pe else v


def _R(pn, pv, kind=TUNE, **kw) -> Recipe:
    return Recipe(pn, pv, kind, **kw)


BASE = [
    _R("glibc", "2.39+git", git=True, libs=["c:6"], postinst=True, license="GPL-2.0-only & LGPL-2.1-or-later",
       summary="GNU C library"),
    _R("busybox", "1.36.1", rdepends=["libc6"], conffiles=["/etc/busybox.links.suid"], postinst=True,
       license="GPL-2.0-only", summary="Tiny versions of many common UNIX utilities"),
    _R("base-files", "3.0.14", MACH, conffiles=["/etc/hostname", "/etc/profile", "/etc/issue"], summary="Base filesystem layout"),
    _R("base-passwd", "3.6.3", conffiles=["/etc/passwd.master"], postinst=True, license="GPL-2.0-only",
       summary="Base system master password/group files"),
    _R("zlib", "1.3.1", libs=["z:1"], rdepends=["libc6"], license="Zlib", summary="Zlib compression library"),
    _R("openssl", "3.2.3", libs=["ssl:3", "crypto:3"], rdepends=["libc6"], conffiles=["/etc/ssl/openssl.cnf"],
       license="Apache-2.0", summary="Secure Socket Layer"),
    _R("libffi", "3.4.6", libs=["ffi:8"], rdepends=["libc6"], summary="Foreign function interface library"),
    _R("ncurses", "6.4", libs=["ncursesw:6", "tinfo:5"], rdepends=["libc6"], doc=True, summary="Terminal handling library"),
    _R("bash", "5.2.21", pr="r1", rdepends=["libc6", "libtinfo5"], conffiles=["/etc/bash.bashrc"], postinst=True, doc=True,
       license="GPL-3.0-or-later", summary="GNU Bourne-Again SHell"),
    _R("util-linux", "2.39.3", libs=["blkid:1", "mount:1", "uuid:1"], rdepends=["libc6"], postinst=True, doc=True,
       license="GPL-2.0-or-later", summary="A suite of basic system administration utilities"),
    _R("systemd", "255.4", pe=1, libs=["systemd:0", "udev:1"], rdepends=["libc6", "libmount1", "dbus"],
       conffiles=["/etc/systemd/journald.conf", "/etc/systemd/system.conf"], postinst=True, doc=True,
       license="LGPL-2.1-or-later", summary="A System and service manager"),
    _R("dbus", "1.14.10", libs=["dbus-1:3"], rdepends=["libc6"], conffiles=["/etc/dbus-1/system.conf"], postinst=True,
       license="AFL-2.1 | GPL-2.0-or-later", summary="D-Bus message bus"),
    _R("openssh", "9.6p1", rdepends=["libc6", "libcrypto3", "libz1"], conffiles=["/etc/ssh/sshd_config", "/etc/ssh/ssh_config"],
       postinst=True, license="BSD-2-Clause", summary="A suite of security-related network utilities"),
    _R("curl", "8.7.1", libs=["curl:4"], rdepends=["libc6", "libssl3", "libz1"], license="curl", summary="Command line tool and library for client-side URL transfers"),
    _R("libxml2", "2.12.5", libs=["xml2:2"], rdepends=["libc6", "libz1"], summary="XML C Parser Library and Toolkit"),
    _R("xz", "5.4.6", libs=["lzma:5"], rdepends=["libc6"], license="GPL-2.0-or-later", summary="Utilities for managing LZMA compressed files"),
    _R("bzip2", "1.0.8", libs=["bz2:1"], rdepends=["libc6"], license="bzip2-1.0.6", summary="Very high-quality data compression program"),
    _R("sqlite3", "3.45.1", libs=["sqlite3:0"], rdepends=["libc6", "libz1"], license="PD", summary="Embeddable SQL database engine"),
    _R("readline", "8.2", libs=["readline:8"], rdepends=["libc6", "libtinfo5"], license="GPL-3.0-or-later", summary="Library for editing typed command lines"),
    _R("kmod", "31", libs=["kmod:2"], rdepends=["libc6"], conffiles=["/etc/modprobe.d/kmod.conf"], license="GPL-2.0-or-later", summary="Tools for managing Linux kernel modules"),
    _R("e2fsprogs", "1.47.0", libs=["ext2fs:2", "com-err:2"], rdepends=["libc6", "libblkid1", "libuuid1"],
       conffiles=["/etc/mke2fs.conf"], license="GPL-2.0-only", summary="Ext2 Filesystem Utilities"),
    _R("shadow", "4.14.2", rdepends=["libc6"], conffiles=["/etc/login.defs", "/etc/default/useradd"], postinst=True,
       license="BSD-3-Clause", summary="Tools to change and administer password and group data"),
    _R("iproute2", "6.7.0", rdepends=["libc6"], conffiles=["/etc/iproute2/rt_tables"], license="GPL-2.0-or-later",
       summary="TCP / IP networking and traffic control utilities"),
    _R("iptables", "1.8.10", libs=["xtables:12"], rdepends=["libc6"], license="GPL-2.0-only", summary="Tools for managing Netfilter rules"),
    _R("nano", "7.2", rdepends=["libc6", "libncursesw6"], conffiles=["/etc/nanorc"], doc=True, license="GPL-3.0-only", summary="Small and friendly text editor"),
    _R("htop", "3.3.0", rdepends=["libc6", "libncursesw6"], license="GPL-2.0-only", summary="Interactive process viewer"),
    _R("less", "643", rdepends=["libc6", "libtinfo5"], license="GPL-3.0-or-later", summary="Text file viewer similar to more"),
    _R("procps", "4.0.4", libs=["proc2:0"], rdepends=["libc6"], conffiles=["/etc/sysctl.conf"], license="GPL-2.0-or-later", summary="System and process monitoring utilities"),
    _R("expat", "2.6.2", libs=["expat:1"], rdepends=["libc6"], summary="Stream-oriented XML parser"),
    _R("libcap", "2.69", libs=["cap:2"], rdepends=["libc6"], license="BSD-3-Clause | GPL-2.0-only", summary="Library for getting/setting POSIX.1e capabilities"),
    _R("attr", "2.5.2", libs=["attr:1"], rdepends=["libc6"], license="LGPL-2.1-or-later", summary="Utilities for manipulating filesystem extended attributes"),
    _R("acl", "2.3.2", libs=["acl:1"], rdepends=["libc6", "libattr1"], license="LGPL-2.1-or-later", summary="Utilities for managing POSIX Access Control Lists"),
    _R("libpam", "1.5.3", libs=["pam:0"], rdepends=["libc6"], conffiles=["/etc/security/limits.conf"], license="BSD-3-Clause | GPL-2.0-only", summary="Linux-PAM"),
    _R("lz4", "1.9.4", libs=["lz4:1"], rdepends=["libc6"], license="BSD-2-Clause | GPL-2.0-only", summary="Extremely Fast Compression algorithm"),
    _R("zstd", "1.5.5", libs=["zstd:1"], rdepends=["libc6"], license="BSD-3-Clause | GPL-2.0-only", summary="Zstandard - fast real-time compression algorithm"),
    _R("opkg", "0.6.3", libs=["opkg:1"], rdepends=["libc6", "libarchive13"], conffiles=["/etc/opkg/opkg.conf"],
       license="GPL-2.0-or-later", summary="Open Package Manager"),
    _R("libarchive", "3.7.4", libs=["archive:13"], rdepends=["libc6", "libz1", "liblzma5"], license="BSD-2-Clause", summary="Support for reading various archive formats"),
    _R("update-alternatives-opkg", "0.6.3", postinst=True, rdepends=["libc6"], license="GPL-2.0-or-later", summary="Utility for managing the alternatives system"),
    _R("bindistro-hello", "1.0+git", git=True, rdepends=["libc6"], conffiles=["/etc/hello.conf"], postinst=True,
       summary="Sample application of the bindistro sample distro"),
    _R("ifupdown", "0.8.41", rdepends=["libc6"], conffiles=["/etc/network/interfaces"], license="GPL-2.0-only", summary="ifup and ifdown tools (replaced later by iproute2-ifupdown in the sample)"),
    _R("libdrm", "2.4.120", SOC, libs=["drm:2"], rdepends=["libc6"], license="MIT",
       summary="Userspace interface to the kernel DRM services (built per SoC family)"),
    _R("linux-yocto", "6.6.21+git", MACH, git=True, license="GPL-2.0-only", summary="Linux kernel"),
    _R("init-ifupdown", "1.0", MACH, conffiles=["/etc/init.d/networking"], summary="Basic TCP/IP networking init scripts"),
    _R("formfactor", "0.0", MACH, conffiles=["/etc/formfactor/machconfig"], summary="Device formfactor information"),
    _R("packagegroup-core-boot", "1.0", MACH, rdepends=["base-files", "base-passwd", "busybox", "systemd", "kernel-image", "libc6"],
       summary="Minimal boot requirements"),
    _R("tzdata", "2024a", ALL, conffiles=["/etc/timezone"], license="PD", summary="Timezone data"),
    _R("ca-certificates", "20240203", ALL, conffiles=["/etc/ca-certificates.conf"], postinst=True,
       license="GPL-2.0-or-later & MPL-2.0", summary="Common CA certificates"),
    _R("netbase", "6.4", ALL, conffiles=["/etc/protocols", "/etc/services"], license="GPL-2.0-only", summary="Basic TCP/IP networking support"),
    _R("os-release", "1.0", ALL, summary="Operating system identification"),
    _R("update-rc.d", "0.8", ALL, license="GPL-2.0-or-later", summary="Manage symlinks in /etc/rcN.d"),
    _R("shared-mime-info-data", "2.4", ALL, license="GPL-2.0-only", summary="Shared MIME type database"),
]

# New recipes, one added per release from release 2 on.
EXTRA = [
    _R("jq", "1.7.1", libs=["jq:1"], rdepends=["libc6"], summary="Lightweight and flexible command-line JSON processor"),
    _R("tmux", "3.4", rdepends=["libc6", "libncursesw6"], conffiles=["/etc/tmux.conf"], license="ISC", summary="Terminal multiplexer"),
    _R("rsync", "3.2.7", rdepends=["libc6", "libz1"], conffiles=["/etc/rsyncd.conf"], license="GPL-3.0-or-later", summary="File synchronization tool"),
    _R("strace", "6.7", rdepends=["libc6"], license="LGPL-2.1-or-later", summary="System call tracing tool"),
    _R("ethtool", "6.7", rdepends=["libc6"], license="GPL-2.0-only", summary="Display or change ethernet card settings"),
    _R("lsof", "4.99.3", rdepends=["libc6"], license="Spencer-94", summary="List open files"),
]

# Image contents (runtime package names), per machine; the machine's kernel is added.
IMAGE_INSTALL = ["packagegroup-core-boot", "base-files", "base-passwd", "busybox", "libc6", "systemd", "libsystemd0",
                 "libudev1", "dbus", "libdbus-1-3", "util-linux", "libblkid1", "libmount1", "libuuid1", "shadow",
                 "netbase", "tzdata", "os-release", "kmod", "libkmod2", "opkg", "libopkg1", "libarchive13", "libz1",
                 "liblzma5", "update-alternatives-opkg", "bindistro-hello", "bindistro-hello-ptest", "init-ifupdown", "formfactor",
                 "kernel-image", "ca-certificates", "openssh", "libcrypto3", "libssl3", "ifupdown", "libdrm2"]


def _bump(pv: str, rng: random.Random) -> str:
    nums = list(re.finditer(r"\d+", pv))
    if not nums:
        return pv + ".1"
    m = nums[-1] if len(nums) == 1 or rng.random() < 0.7 else nums[-2]
    out = pv[:m.start()] + str(int(m.group()) + 1) + pv[m.end():]
    if m is not nums[-1]:
        last = nums[-1]
        shift = len(out) - len(pv)
        out = out[:last.start() + shift] + "0" + out[last.end() + shift:]
    return out


def _srcrev(seed: int, pn: str, n: int) -> str:
    return hashlib.sha1(f"{seed}:{pn}:{n}".encode()).hexdigest()


@dataclass
class Change:
    kind: str   # version | pr | new | split | removed
    recipe: str
    detail: str


def initial(seed: int) -> dict[str, Recipe]:
    out = {}
    for r in copy.deepcopy(BASE):
        if r.git:
            r.srcrev = _srcrev(seed, r.pn, 0)
        out[r.pn] = r
    return out


def evolve(recipes: dict[str, Recipe], seed: int, release: int) -> tuple[dict[str, Recipe], list[Change]]:
    """Release `release` from release `release - 1`: about 10 % of packages change."""
    rng = random.Random(f"{seed}:{release}")
    rs = copy.deepcopy(recipes)
    changes: list[Change] = []
    # scripted events that a distro meets sooner or later
    if release == 2 and "util-linux" in rs:
        r = rs["util-linux"]
        r.split.append("util-linux-fdisk")
        r.prauto += 1
        r.rebuild += 1
        changes.append(Change("split", r.pn, "util-linux-fdisk split out of util-linux"))
    if release == 3 and "ifupdown" in rs:
        del rs["ifupdown"]
        r = rs["iproute2"]
        r.provides.append("ifupdown")
        r.replaces.append("ifupdown")
        r.conffiles.append("/etc/network/interfaces")
        r.prauto += 1
        r.rebuild += 1
        changes.append(Change("removed", "ifupdown", "ifupdown removed; iproute2 provides and replaces it"))
    extra = EXTRA[(release - 2) % len(EXTRA)]
    if extra.pn not in rs:
        n = copy.deepcopy(extra)
        rs[n.pn] = n
        changes.append(Change("new", n.pn, f"new recipe {n.pn} {n.pv}"))
    # the SoC family's recipes stay out of the random churn: adding them left every earlier sample
    # release's changes as they were
    candidates = sorted(pn for pn in rs if pn not in {c.recipe for c in changes} and rs[pn].kind != SOC)
    for pn in rng.sample(candidates, k=max(2, len(candidates) // 12)):
        r = rs[pn]
        if rng.random() < 0.5:
            old = r.pkgv
            if r.git:
                r.autoinc += 1
                r.srcrev = _srcrev(seed, pn, r.autoinc)
            else:
                r.pv = _bump(r.pv, rng)
            r.prauto = r.rebuild = 0
            changes.append(Change("version", pn, f"{old} -> {r.pkgv}"))
        else:
            r.prauto += 1
            r.rebuild += 1
            changes.append(Change("pr", pn, f"PR {r.pr}.{r.prauto - 1} -> {r.pkgr}"))
    return rs, changes


def at_release(seed: int, release: int) -> tuple[list[dict[str, Recipe]], list[list[Change]]]:
    """Recipes of every release 1..`release` and the changes each one made."""
    states, changes = [initial(seed)], [[]]
    for n in range(2, release + 1):
        rs, ch = evolve(states[-1], seed, n)
        states.append(rs)
        changes.append(ch)
    return states, changes


# --- the next branch (sample-build --series NAME): a plausible next Yocto release branch, forked
# from the first series at BRANCH_POINT and then changing on its own

BRANCH_POINT = 3
SONAME_BUMP = ("libarchive", "archive", "13", "14")      # recipe, library, old and new soversion
MERGED = ("formfactor", "base-files")                     # dropped; the other package provides and replaces it


def jump(pv: str) -> str:
    """A next branch's version: the major number up (a single number by ten), the rest from 0."""
    nums = list(re.finditer(r"\d+", pv))
    if not nums:
        return pv + ".1"
    m = nums[0]
    if len(nums) == 1:
        return pv[:m.start()] + str(int(m.group()) + 10) + pv[m.end():]
    head = pv[:m.start()] + str(int(m.group()) + 1)
    return head + re.sub(r"\d+", "0", pv[m.end():nums[-1].end()]) + pv[nums[-1].end():]


def branch(recipes: dict[str, Recipe], seed: int) -> tuple[dict[str, Recipe], list[Change]]:
    """The first release of the next branch from the first series' recipes."""
    rs = copy.deepcopy(recipes)
    changes = []
    for pn, r in sorted(rs.items()):
        old = r.pkgv
        r.pv = jump(r.pv)
        r.prauto = r.rebuild = r.autoinc = 0
        if r.git:
            r.srcrev = _srcrev(seed, pn + "@next", 0)
        changes.append(Change("version", pn, f"{old} -> {r.pkgv}"))
    pn, lib, old, new = SONAME_BUMP
    r = rs[pn]
    r.libs = [f"{lib}:{new}" if x == f"{lib}:{old}" else x for x in r.libs]
    r.lib_replaces = {f"lib{lib}{new}": f"lib{lib}{old}"}
    for x in rs.values():
        x.rdepends = [f"lib{lib}{new}" if d == f"lib{lib}{old}" else d for d in x.rdepends]
    changes.append(Change("soname", pn, f"lib{lib}{old} -> lib{lib}{new} (Replaces/Conflicts lib{lib}{old})"))
    gone, into = MERGED
    if gone in rs:
        taker = rs[into]
        taker.conffiles += [c for c in rs.pop(gone).conffiles if c not in taker.conffiles]
        taker.provides.append(gone)
        taker.replaces.append(gone)
        changes.append(Change("removed", gone, f"{gone} merged into {into}, which provides and replaces it"))
    return rs, changes


def series_at_release(seed: int, release: int) -> tuple[list[dict[str, Recipe]], list[list[Change]]]:
    """The next branch's recipes of its releases 1..`release`, after the first series' history up to
    the branch point (buildhistory carries both)."""
    states, changes = at_release(seed, BRANCH_POINT)
    rs, ch = branch(states[-1], seed)
    states.append(rs)
    changes.append(ch)
    for n in range(2, release + 1):
        # its own random changes (another seed), none of the first series' scripted events
        rs, ch = evolve(states[-1], seed + 7919, BRANCH_POINT + n + 10)
        states.append(rs)
        changes.append(ch)
    return states, changes


def image_install(series: str | None) -> list[str]:
    if not series:
        return IMAGE_INSTALL
    _pn, lib, old, new = SONAME_BUMP
    return [f"lib{lib}{new}" if n == f"lib{lib}{old}" else n for n in IMAGE_INSTALL]


def summary(changes: list[dict]) -> str:
    """A build's changes in a line; a next branch changes every version, so those are counted."""
    if len(changes) <= 12:
        return ", ".join(f"{c['kind']} {c['recipe']}" for c in changes) or "none"
    versions = sum(1 for c in changes if c["kind"] == "version")
    return ", ".join([f"{versions} versions"] + [f"{c['kind']} {c['recipe']}" for c in changes if c["kind"] != "version"])
