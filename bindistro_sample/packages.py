"""SAMPLE DATA: turn sample recipes into binary package descriptions (names, fields, files, scripts)."""
from __future__ import annotations

import hashlib
from pathlib import Path
from dataclasses import dataclass, field

from bindistro.cache import cache_dir
from . import clib
from .recipes import ALL, MACH, Recipe

MAINTAINER = "bindistro sample data <sample@bindistro.invalid>"
MAIN_NAME = {"linux-yocto": "kernel-image"}
NO_SPLITS = ("packagegroup-", "linux-yocto")


@dataclass
class File:
    path: str                 # absolute path on the device
    kind: str = "file"        # file | dir | symlink
    data: bytes = b""
    target: str = ""
    mode: int = 0o644
    lazy: tuple[str, int] | None = None    # (key, size): bytes made when written (world.fill)


@dataclass
class Pkg:
    name: str
    recipe: Recipe
    arch: str
    section: str
    description: str
    depends: list[str] = field(default_factory=list)
    recommends: list[str] = field(default_factory=list)
    provides: list[str] = field(default_factory=list)
    replaces: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    files: list[File] = field(default_factory=list)
    conffiles: list[str] = field(default_factory=list)
    scripts: dict[str, str] = field(default_factory=dict)   # postinst, prerm, ...

    @property
    def version(self) -> str:
        return self.recipe.version

    @property
    def filename(self) -> str:
        # OE strips the epoch from file names
        return f"{self.name}_{self.recipe.pkgv}-{self.recipe.pkgr}_{self.arch}.ipk"

    @property
    def size(self) -> int:
        return sum(f.lazy[1] if f.lazy else len(f.data) for f in self.files if f.kind == "file")

    def control_fields(self) -> list[tuple[str, str]]:
        r = self.recipe
        out = [("Package", self.name), ("Version", self.version),
               ("Description", self.description), ("Section", self.section), ("Priority", "optional"),
               ("Maintainer", MAINTAINER), ("License", r.license), ("Architecture", self.arch),
               ("OE", r.pn), ("Homepage", f"https://sample.bindistro.invalid/{r.pn}")]
        for key, vals in (("Depends", self.depends), ("Recommends", self.recommends),
                          ("Provides", self.provides), ("Replaces", self.replaces),
                          ("Conflicts", self.conflicts)):
            if vals:
                out.append((key, ", ".join(vals)))
        out.append(("Source", f"{r.pn}_{r.pv}.bb"))
        return out


def materialize(files: list[File], root: Path) -> None:
    """Write package files into a directory tree (for rpmbuild and dpkg-deb)."""
    for f in files:
        target = root / f.path.lstrip("/")
        if f.kind == "dir":
            target.mkdir(parents=True, exist_ok=True)
        elif f.kind == "symlink":
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.is_symlink():
                target.symlink_to(f.target)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(f.data)
            target.chmod(f.mode)


def D(path: str) -> File:
    return File(path, "dir")


def _blob(*key: str, size: int) -> bytes:
    """Deterministic filler so packages have realistic, version-dependent content."""
    seed = hashlib.sha256("\0".join(key).encode()).digest()
    head = ("# bindistro SAMPLE DATA: " + " ".join(key) + "\n").encode()
    n = max(0, size - len(head))
    # hex text from one extendable-output hash (a sha256 per 64 bytes was a tenth of a sample build)
    return head + hashlib.shake_256(seed).hexdigest((n + 1) // 2).encode()[:n]


def _size(pn: str, what: str, lo: int, hi: int) -> int:
    h = int(hashlib.md5(f"{pn}:{what}".encode()).hexdigest()[:8], 16)
    return lo + h % (hi - lo)


HOST_BUSYBOX = Path("/bin/busybox")
HOST_ARCHS = {"core2-64", "qemux86_64"}


ARM64_ARCHS = {"cortexa57", "cortexa57-virt", "cortexa57-qemuvirt", "qemuarm64"}
# bindistro-hello's ptest (PN-ptest, /usr/lib/PN/ptest/run-ptest, as OE's ptest class installs it)
HELLO_PTEST = """#!/bin/sh
# SAMPLE DATA: the package test of bindistro-hello, in automake's result format
if [ -f /etc/hello.conf ]; then echo "PASS: config-present"; else echo "FAIL: config-present"; fi
if [ ! -e /var/lib/bindistro-hello/migration-failed ]; then echo "PASS: settings-migrated"; else echo "FAIL: settings-migrated"; fi
echo "SKIP: network-greeting"
"""


def busybox_files(arch: str) -> list[File]:
    """/bin/sh for scriptlets in install roots: Debian's static busybox of the architecture,
    repackaged (x86-64 from the host, arm64 from the boot cache of scripts/fetch-boot.sh: it runs
    under qemu-user); made-up bytes for any other architecture."""
    if arch in HOST_ARCHS:
        if not HOST_BUSYBOX.exists():
            raise FileNotFoundError(f"{HOST_BUSYBOX}: missing; install Debian's busybox-static (scripts/setup.sh does)")
        data = HOST_BUSYBOX.read_bytes()
    elif arch in ARM64_ARCHS:
        bb = cache_dir() / "boot" / "arm64" / "busybox"      # where scripts/fetch-boot.sh puts it
        if not bb.is_file():
            raise FileNotFoundError(f"{bb}: missing; run scripts/fetch-boot.sh (scripts/setup.sh does)")
        data = bb.read_bytes()
    else:
        data = _blob("busybox", arch, size=60000)
    return [D("/bin"), File("/bin/busybox", data=data, mode=0o755), File("/bin/sh", "symlink", target="busybox")]


def hello_lib(r: Recipe, arch: str, ident: tuple, debug: bool = False) -> list[File]:
    """libhello.so.1 of bindistro-hello: real code from gcc -g on x86-64, made-up bytes elsewhere;
    `debug`: its split debug info for the -dbg package, in OE's /usr/lib/.debug/."""
    real = "libhello.so.1.0"
    if arch in HOST_ARCHS and clib.available():
        src = clib.source(r.autoinc, r.pkgv, r.abi_break)
        lib, dbg = clib.build(src, real)
    else:
        lib = dbg = _blob(*ident, real, size=8000)
    if debug:
        return [D("/usr/lib/.debug"), File(f"/usr/lib/.debug/{real}.debug", data=dbg)]
    return [D("/usr/lib"), File(f"/usr/lib/{real}", data=lib, mode=0o755),
            File(f"/usr/lib/{clib.SONAME}", "symlink", target=real)]


# as OE's openssh recipe installs them: sshd per connection (socket activated), wanting the unit that
# makes the host keys on first boot (so no two devices share them)
SSHD_UNITS = {
    "sshd.socket": "[Unit]\nConflicts=sshd.service\n\n[Socket]\nListenStream=22\nAccept=yes\n\n[Install]\nWantedBy=sockets.target\n",
    "sshd@.service": "[Unit]\nDescription=OpenSSH Per-Connection Daemon\nWants=sshdgenkeys.service\nAfter=sshdgenkeys.service\n\n"
                     "[Service]\nExecStart=-/usr/sbin/sshd -i\nStandardInput=socket\n",
    "sshdgenkeys.service": "[Unit]\nDescription=OpenSSH Key Generation\nConditionPathExists=|!/etc/ssh/ssh_host_ed25519_key\n\n"
                           "[Service]\nExecStart=/usr/bin/ssh-keygen -A\nType=oneshot\nRemainAfterExit=yes\n",
}


def openssh_units(ident: tuple) -> list[File]:
    out = [D("/usr/sbin"), File("/usr/sbin/sshd", data=_blob(*ident, "sshd", size=9000), mode=0o755),
           D("/usr/lib/systemd"), D("/usr/lib/systemd/system")]
    return out + [File(f"/usr/lib/systemd/system/{n}", data=t.encode()) for n, t in SSHD_UNITS.items()]


def build_packages(r: Recipe, arch: str) -> list[Pkg]:
    """Binary packages of recipe `r` built for package architecture `arch`."""
    v = r.version
    ident = (r.pn, v, arch, str(r.rebuild))   # another task checksum gives other bytes
    main = MAIN_NAME.get(r.pn, r.pn)
    pkgs: list[Pkg] = []
    summary = r.summary or r.pn
    lib_pkgs = []
    for spec in r.libs:
        lname, sover = spec.split(":")
        pname = f"lib{lname}{sover}" if not lname[-1].isdigit() else f"lib{lname}-{sover}"
        real = f"/usr/lib/lib{lname}.so.{sover}.{r.pv.split('+')[0]}"
        p = Pkg(pname, r, arch, "libs", f"{summary} - shared library lib{lname}",
                depends=[d for d in r.rdepends if d != pname] if pname != "libc6" else [])
        if pname in r.lib_replaces:        # a soname bump: the new library package takes the old one's place
            p.replaces = [r.lib_replaces[pname]]
            p.conflicts = [r.lib_replaces[pname]]
        p.files = [D("/usr"), D("/usr/lib"),
                   File(real, data=_blob(*ident, real, size=_size(r.pn, real, 2000, 30000)), mode=0o755),
                   File(f"/usr/lib/lib{lname}.so.{sover}", "symlink", target=real.rsplit("/", 1)[1])]
        p.scripts["postinst"] = "#!/bin/sh\nif [ x\"$D\" = \"x\" ]; then\n\tif [ -x /sbin/ldconfig ]; then /sbin/ldconfig ; fi\nfi\n"
        lib_pkgs.append(p)
    pkgs += lib_pkgs

    m = Pkg(main, r, arch, "base" if r.kind in (ALL, MACH) else "console/utils", summary)
    m.depends = [d for d in r.rdepends if d != main]
    if lib_pkgs and main not in ("glibc",):
        m.depends = sorted(set(m.depends) | {p.name for p in lib_pkgs} - {main})
    m.recommends = list(r.recommends)
    m.provides = list(r.provides)
    m.replaces = list(r.replaces)
    m.conflicts = list(r.replaces) + list(r.conflicts)
    files = [D("/usr"), D("/usr/bin")]
    if not r.pn.startswith("packagegroup-"):
        binp = "/boot/bzImage" if r.pn == "linux-yocto" else f"/usr/bin/{r.pn}"
        if r.pn == "linux-yocto":
            files = [D("/boot")]
        files.append(File(binp, data=_blob(*ident, binp, size=_size(r.pn, "bin", 3000, 60000)), mode=0o755))
    dirs = set()
    for c in r.conffiles:
        parts = c.split("/")[1:-1]
        for i in range(1, len(parts) + 1):
            d = "/" + "/".join(parts[:i])
            if d not in dirs:
                dirs.add(d)
                files.append(D(d))
        files.append(File(c, data=f"# {c} of {r.pn} (bindistro sample data)\n# version {v}\nsetting = default\n".encode()))
    if r.pn == "busybox":
        files += busybox_files(arch)
    if r.pn == "openssh":
        files += openssh_units(ident)
    m.conffiles = list(r.conffiles)
    m.files = files
    if r.pn == "bindistro-hello":
        files += hello_lib(r, arch, ident)
        pt = Pkg(f"{r.pn}-ptest", r, arch, "devel", f"{summary} - Package test suite", depends=[main])
        pt.files = [D("/usr/lib"), D(f"/usr/lib/{r.pn}"), D(f"/usr/lib/{r.pn}/ptest"),
                    File(f"/usr/lib/{r.pn}/ptest/run-ptest", data=HELLO_PTEST.encode(), mode=0o755)]
        pkgs.append(pt)
    if r.postinst:
        m.scripts["postinst"] = f"#!/bin/sh\n# {r.pn} postinst (sample)\nset -e\nexit 0\n"
        m.scripts["prerm"] = f"#!/bin/sh\n# {r.pn} prerm (sample)\nexit 0\n"
    if r.breaks_after_upgrade:
        # a settings migration that only runs on upgrade and leaves the system broken (no error):
        # dpkg passes `configure <old-version>`, rpm passes 2, opkg's preinst gets `upgrade <old>`
        broken = ("mkdir -p /var/lib/bindistro-hello && echo 'settings migration failed' "
                  "> /var/lib/bindistro-hello/migration-failed")
        m.scripts["postinst"] = (f"#!/bin/sh\n# {r.pn} postinst (sample, injected defect)\n"
                                 f"if [ \"$1\" = configure ] && [ -n \"$2\" ]; then {broken}; fi\n"
                                 f"if [ \"$1\" -gt 1 ] 2>/dev/null; then {broken}; fi\nexit 0\n")
        m.scripts["preinst"] = (f"#!/bin/sh\n# {r.pn} preinst (sample, injected defect)\n"
                                f"if [ \"$1\" = upgrade ]; then {broken}; fi\nexit 0\n")
    if r.postinst_fails_upgrade:
        # fails when called for an upgrade: dpkg/opkg pass `configure <old-version>`, rpm passes 2
        m.scripts["postinst"] = (f"#!/bin/sh\n# {r.pn} postinst (sample, injected defect)\n"
                                 "if [ \"$1\" = configure ] && [ -n \"$2\" ]; then echo 'cannot migrate settings' >&2; exit 1; fi\n"
                                 "if [ \"$1\" -gt 1 ] 2>/dev/null; then echo 'cannot migrate settings' >&2; exit 1; fi\nexit 0\n")
    for sub in r.split:
        sp = Pkg(sub, r, arch, m.section, f"{summary} - {sub.removeprefix(r.pn + '-')} tools")
        sp.depends = list(m.depends)
        path = f"/usr/sbin/{sub.removeprefix(r.pn + '-')}"
        sp.files = [D("/usr"), D("/usr/sbin"), File(path, data=_blob(*ident, path, size=4000), mode=0o755)]
        # files moved out of the main package: the new package must be allowed to take them over
        sp.replaces = [f"{r.pn} (<< {v})"]
        m.recommends.append(sub)
        pkgs.append(sp)
    pkgs.insert(len(lib_pkgs), m)

    if r.kind not in (ALL, MACH) and not r.pn.startswith(NO_SPLITS):
        first = lib_pkgs[0].name if lib_pkgs else main
        dev = Pkg(f"{r.pn}-dev", r, arch, "devel", f"{summary} - Development files",
                  depends=[f"{first} (= {v})"])
        hdr = f"/usr/include/{r.pn}.h"
        dev.files = [D("/usr"), D("/usr/include"), File(hdr, data=_blob(*ident, hdr, size=1500))]
        for spec in r.libs:
            lname, sover = spec.split(":")
            dev.files += [D("/usr/lib"), File(f"/usr/lib/lib{lname}.so", "symlink",
                                                 target=f"lib{lname}.so.{sover}.{r.pv.split('+')[0]}")]
        dbg = Pkg(f"{r.pn}-dbg", r, arch, "devel", f"{summary} - Debugging files",
                  recommends=["glibc-dbg"] if r.pn != "glibc" else [])
        dbgp = f"/usr/lib/debug/usr/bin/{r.pn}.debug"
        dbg.files = [D("/usr"), D("/usr/lib"), D("/usr/lib/debug"), D("/usr/lib/debug/usr"),
                     D("/usr/lib/debug/usr/bin"), File(dbgp, data=_blob(*ident, dbgp, size=_size(r.pn, "dbg", 5000, 80000)))]
        if r.pn == "bindistro-hello":
            dbg.files += hello_lib(r, arch, ident, debug=True)
        pkgs += [dev, dbg]
    if r.doc:
        doc = Pkg(f"{r.pn}-doc", r, arch, "doc", f"{summary} - Documentation files")
        man = f"/usr/share/man/man1/{r.pn}.1"
        doc.files = [D("/usr"), D("/usr/share"), D("/usr/share/man"), D("/usr/share/man/man1"),
                     File(man, data=_blob(*ident, man, size=3000))]
        pkgs.append(doc)
    for p in pkgs:
        # dedupe directory entries, keep order
        seen, uniq = set(), []
        for f in p.files:
            if f.path not in seen:
                seen.add(f.path)
                uniq.append(f)
        p.files = uniq
    return pkgs
