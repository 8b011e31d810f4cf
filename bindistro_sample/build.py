"""SAMPLE DATA: write a Yocto-shaped build directory (TOPDIR) for one release of the sample distro.

Layout follows OE: tmp/deploy/ipk/<arch>/ with opkg-make-index indexes, tmp/deploy/images/<machine>/,
buildhistory/ (a git repository with one commit per release), conf/, cache/prserv.sqlite3,
cache/hashserv.db, tmp/log/cooker/<machine>/. Nothing in it comes from a real build.
"""
from __future__ import annotations

import dataclasses

import datetime as dt
import gzip
import hashlib
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import zstandard

from bindistro import feed
from bindistro.errors import BindistroError
from bindistro.formats import get as get_format
from bindistro.progress import progress
from bindistro.yocto import layers as layersmod
from . import archiver, bootimg, buildhistory, defects, feedconf, pkgcache, spdx, state, world
from . import sdk as sdkmod
from .debbuild import write_deb
from .ipkbuild import _tar, write_ipk
from .rpmbuild import rpm_arch, write_rpms
from .packages import File, Pkg, build_packages
from .recipes import BRANCH_POINT, Recipe, at_release, image_install, series_at_release

MARKER = ".bindistro-sample"
PTEST_RUNNER = """#!/bin/sh
# SAMPLE DATA stand-in for OE's ptest-runner: runs every /usr/lib/*/ptest/run-ptest, same output format
echo "START: ptest-runner"
date +%Y-%m-%dT%H:%M
n=0
for d in /usr/lib/*/ptest; do
  [ -x "$d/run-ptest" ] || continue
  n=$((n + 1))
  echo "BEGIN: $d"
  (cd "$d" && ./run-ptest)
  echo "DURATION: 0"
  echo "END: $d"
done
date +%Y-%m-%dT%H:%M
echo "STOP: ptest-runner"
echo "TOTAL: $n FAIL: 0"
"""
IMAGE = "core-image-minimal"


@dataclass(frozen=True)
class MachineDef:
    name: str
    tune: str
    arch: str     # MACHINE_ARCH

    tune_archs: tuple[str, ...] = ()     # PACKAGE_EXTRA_ARCHS of the tune, most generic first
    soc: str = ""                        # SOC_FAMILY: its recipes' PACKAGE_ARCH is <tune>-<soc> (MACHINE_SOCARCH)

    @property
    def soc_arch(self) -> str | None:
        return f"{self.tune}-{self.soc}" if self.soc else None

    @property
    def archs(self) -> list[str]:
        return ["all", self.tune, *([self.soc_arch] if self.soc else []), self.arch]

    @property
    def package_archs(self) -> list[str]:
        """PACKAGE_ARCHS as OE orders it (opkg-arch-config writes them into arch.conf)."""
        return ["all", "any", "noarch", *self.tune_archs, *([self.soc_arch] if self.soc else []), self.arch]


# qemuarm64 has a SoC family of its own (as meta-freescale's i.MX machines have: MACHINE_SOCARCH
# aarch64-mx8qxp beside the tune's feed): its graphics stack is built once per SoC, not per machine
MACHINES = [MachineDef("qemux86-64", "core2-64", "qemux86_64", ("x86_64", "core2-64")),
            MachineDef("qemuarm64", "cortexa57", "qemuarm64", ("aarch64", "armv8a", "armv8a-crc", "cortexa57"), "virt")]
# the next branch (sample-build --series): its BSP layer renamed the SoC family, so that feed has
# another name there (cortexa57-virt -> cortexa57-qemuvirt), as BSP renames do between branches
NEXT_SOC = {"qemuarm64": "qemuvirt"}


def machines_of(series: str | None) -> list[MachineDef]:
    if not series:
        return MACHINES
    return [dataclasses.replace(m, soc=NEXT_SOC.get(m.name, m.soc)) for m in MACHINES]


def source_date_epoch(r: Recipe) -> int:
    """Like reproducible_build: a fixed time per recipe version, so unchanged recipes rebuild to
    the same bytes in every release."""
    h = int(hashlib.sha256(f"{r.pn}:{r.version}".encode()).hexdigest()[:6], 16)
    return int(dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc).timestamp()) + h


def release_time(release: int) -> dt.datetime:
    return dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc) + dt.timedelta(days=30 * (release - 1))


def all_packages(recipes: dict[str, Recipe], machines: list[MachineDef] = MACHINES) -> list[Pkg]:
    out = []
    for r in sorted(recipes.values(), key=lambda r: r.pn):
        for a in state.recipe_archs(r, machines):
            out += build_packages(r, a)
    return out


def image_packages(pkgs: list[Pkg], m: MachineDef, series: str | None = None) -> list[Pkg]:
    """IMAGE_INSTALL plus its Depends closure, each name resolved in the machine's arch priority."""
    prio = {a: i for i, a in enumerate(m.archs)}
    by_name: dict[str, Pkg] = {}
    providers: dict[str, Pkg] = {}
    for p in pkgs:
        if p.arch not in prio:
            continue
        cur = by_name.get(p.name)
        if cur is None or prio[p.arch] > prio[cur.arch]:
            by_name[p.name] = p
        for v in p.provides:
            providers.setdefault(v, p)
    chosen: dict[str, Pkg] = {}
    todo = list(image_install(series))
    while todo:
        n = todo.pop().split(" ", 1)[0]
        p = by_name.get(n) or providers.get(n)
        if p is None or p.name in chosen:
            continue
        chosen[p.name] = p
        todo += p.depends
    return sorted(chosen.values(), key=lambda p: p.name)


def rootfs_generated(machine: str, inject: list[str]) -> list[File]:
    """What OE's rootfs step writes besides package files: the user database and the units
    `systemctl preset-all` enables. Defects for the image security gate go in here."""
    root = "$6$sample$0X4CsWI6wDCXPc3IlJkcCnr2X5MC.5AWHQm7hJ3TnUj8u9z1mBLHgbOlC9Nw4ZW2b7v6yTBhG1lYGVCV0yVr1." \
        if "root-password" in inject else "*"
    d = lambda p: File(p, "dir")   # noqa: E731
    out = [d("/etc"), File("/etc/passwd", data=b"root:x:0:0:root:/home/root:/bin/sh\n"
                                            b"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
                                            b"messagebus:x:999:998::/var/lib/dbus:/usr/sbin/nologin\n"),
           File("/etc/shadow", data=f"root:{root}:20089:0:99999:7:::\ndaemon:*:20089:0:99999:7:::\n"
                                    "messagebus:!:20089::::::\n".encode(), mode=0o600),
           File("/etc/group", data=b"root:x:0:\ndaemon:x:1:\nmessagebus:x:998:\n"),
           d("/etc/systemd"), d("/etc/systemd/system"), d("/etc/systemd/system/multi-user.target.wants"),
           d("/etc/systemd/system/getty.target.wants"),
           File("/etc/systemd/system/multi-user.target.wants/systemd-networkd.service", "symlink",
                target="/usr/lib/systemd/system/systemd-networkd.service"),
           File("/etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service", "symlink",
                target="/usr/lib/systemd/system/serial-getty@.service")]
    # ptest-runner (a C program in OE): a shell stand-in with its output format, so the boot gate's
    # ptest path runs on the sample images
    out += [d("/usr"), d("/usr/bin"), File("/usr/bin/ptest-runner", data=PTEST_RUNNER.encode(), mode=0o755)]
    if "host-keys" in inject:
        out += [d("/etc/ssh"), File("/etc/ssh/ssh_host_ed25519_key", data=b"-----BEGIN OPENSSH PRIVATE KEY-----\n"
                                    b"SAMPLE DATA, injected defect\n-----END OPENSSH PRIVATE KEY-----\n", mode=0o600),
                File("/etc/ssh/ssh_host_ed25519_key.pub", data=b"ssh-ed25519 AAAASAMPLE root@build\n")]
    if "extra-service" in inject:
        out.append(File("/etc/systemd/system/multi-user.target.wants/telnetd.service", "symlink",
                        target="/usr/lib/systemd/system/telnetd.service"))
    return out


def rootfs_removed(inject: list[str]) -> set[str]:
    """Package files a rootfs post-process step deletes (defects only)."""
    return {"/usr/lib/systemd/system/sshdgenkeys.service"} if "no-first-boot-keys" in inject else set()


def write_rootfs(pkgs: list[Pkg], dest: Path, mtime: int, extra: list[File] = (), removed: set[str] = frozenset()) -> None:
    seen: dict[str, File] = {}
    for p in pkgs:
        for f in p.files:
            seen[f.path] = f
    for f in extra:
        seen[f.path] = f
    for path in removed:
        seen.pop(path, None)
    entries = [("./", File("/", "dir"))] + [("." + path, seen[path]) for path in sorted(seen)]
    dest.write_bytes(zstandard.ZstdCompressor(level=3).compress(_tar(entries, mtime)))


def write_boot_files(idir: Path, m: MachineDef, pkgs: list[Pkg], base: str, stamp: str, mtime: int,
                     panic: bool, extra: list[File] = ()) -> bool:
    """Kernel, initramfs and qemuboot.conf, when scripts/fetch-boot.sh has cached a kernel."""
    got = bootimg.boot_inputs(m.name)
    if got is None:
        return False
    kernel, busybox = got
    ktype = bootimg.kernel_type(m.name, kernel)
    kfile = f"{ktype}-6.1-r0-{m.name}-{stamp}.bin"
    dest = idir / kfile
    dest.unlink(missing_ok=True)
    try:
        os.link(kernel, dest)
    except OSError:
        shutil.copyfile(kernel, dest)
    for link in (ktype, f"{ktype}-{m.name}.bin"):
        (idir / link).unlink(missing_ok=True)
        (idir / link).symlink_to(kfile)
    files = [f for p in pkgs for f in p.files] + list(extra) + bootimg.boot_files(m.name, busybox, panic)
    bootimg.write_initramfs(files, idir / f"{base}-{stamp}.cpio.gz", mtime)
    bootimg.write_qemuboot(idir / f"{base}-{stamp}.qemuboot.conf", m.name, f"{base}-{stamp}", base, kfile, "cpio.gz", ktype)
    return True


def _db_hashserv(path: Path, history: list[dict[str, Recipe]]) -> None:
    path.unlink(missing_ok=True)
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE unihashes_v3 (id INTEGER PRIMARY KEY AUTOINCREMENT, method TEXT NOT NULL,
            taskhash TEXT NOT NULL, unihash TEXT NOT NULL, gc_mark TEXT NOT NULL DEFAULT '',
            UNIQUE(method, taskhash));
        CREATE TABLE outhashes_v2 (id INTEGER PRIMARY KEY AUTOINCREMENT, method TEXT NOT NULL,
            taskhash TEXT NOT NULL, outhash TEXT NOT NULL, created DATETIME, owner TEXT, PN TEXT, PV TEXT,
            PR TEXT, task TEXT, outhash_siginfo TEXT, UNIQUE(method, taskhash, outhash));
    """)
    for n, recipes in enumerate(history, 1):
        for r in recipes.values():
            for task in ("do_package", "do_populate_sysroot", "do_package_write_ipk"):
                th = hashlib.sha256(f"task:{r.pn}:{r.pkgv}:{r.prauto}:{task}".encode()).hexdigest()
                oh = hashlib.sha256(f"out:{r.pn}:{r.pkgv}:{task}".encode()).hexdigest()
                uh = hashlib.sha256(f"uni:{r.pn}:{r.pkgv}:{task}".encode()).hexdigest()
                con.execute("INSERT OR IGNORE INTO unihashes_v3 (method, taskhash, unihash) VALUES (?,?,?)",
                            ("oe.sstatesig.OEOuthashBasic", th, uh))
                con.execute("INSERT OR IGNORE INTO outhashes_v2 (method, taskhash, outhash, created, owner, PN, PV, PR, task) "
                            "VALUES (?,?,?,?,?,?,?,?,?)", ("oe.sstatesig.OEOuthashBasic", th, oh,
                                                           release_time(n).isoformat(), "", r.pn, r.pv, r.pr, task))
    con.commit()
    con.close()


LOCAL_CONF = """\
# bindistro SAMPLE DATA: conf/local.conf of a build that never ran (written by `bindistro sample-build`).
MACHINE ??= "qemux86-64"
DISTRO ?= "poky-altcfg"
INIT_MANAGER = "systemd"
PACKAGE_CLASSES ?= "{package_classes}"
EXTRA_IMAGE_FEATURES ?= ""
USER_CLASSES ?= ""
INHERIT += "buildhistory"
BUILDHISTORY_COMMIT = "1"
INHERIT += "reproducible_build"
INHERIT += "archiver"
ARCHIVER_MODE[src] = "original"
ARCHIVER_MODE[recipe] = "1"
ARCHIVER_MODE[dumpdata] = "1"
BB_SIGNATURE_HANDLER = "OEEquivHash"
BB_HASHSERVE = "auto"
PRSERV_HOST = "localhost:0"
# where devices get packages (the sample spec's publish.url): OE writes each image's feed lines from these
PACKAGE_FEED_URIS ?= "http://localhost:8000"
PACKAGE_FEED_BASE_PATHS ?= "feeds/${{IMAGE_PKGTYPE}}"
CONF_VERSION = "2"
"""

BBLAYERS_CONF = """\
# bindistro SAMPLE DATA: conf/bblayers.conf (written by `bindistro sample-build`).
POKY_BBLAYERS_CONF_VERSION = "2"
BBPATH = "${TOPDIR}"
BBFILES ?= ""
BBLAYERS ?= " \\
  ${TOPDIR}/../layers/poky/meta \\
  ${TOPDIR}/../layers/poky/meta-poky \\
  ${TOPDIR}/../layers/poky/meta-yocto-bsp \\
  "
"""


def _console_log(release: int, m: MachineDef, npkgs: int) -> str:
    t = release_time(release).strftime("%Y%m%d%H%M%S")
    return (f"NOTE: bindistro SAMPLE DATA: console log of release {release} for {m.name} (no real build ran)\n"
            f"Build Configuration:\nBB_VERSION           = \"2.8.0\"\nMACHINE              = \"{m.name}\"\n"
            f"DISTRO               = \"poky-altcfg\"\nTUNE_FEATURES        = \"m64 {m.tune}\"\n\n"
            f"NOTE: Started PRServer with DBfile: cache/prserv.sqlite3\n"
            f"Initialising tasks...done.\nNOTE: Executing Tasks\n"
            f"NOTE: Tasks Summary: Attempted {npkgs * 9} tasks of which {npkgs * 7} didn't need to be rerun and all succeeded.\n"
            f"NOTE: Build {t} completed\n")


def write_deploy(deploy: Path, pkgs: list[Pkg], release: int, formats=("ipk", "rpm", "deb"),
                 world_pkgs: list[Pkg] = (), before: Path | None = None) -> None:
    """tmp/deploy/{ipk,rpm,deb}/<arch>/ with the indexes OE's package_*-index tasks write;
    `before`: the previous build's deploy dirs, whose unchanged files are kept."""
    jobs = []
    for p in pkgs:
        for fmt in [f for f in ("ipk", "deb") if f in formats]:
            d = deploy / fmt / p.arch
            d.mkdir(parents=True, exist_ok=True)
            jobs.append((write_ipk if fmt == "ipk" else write_deb, p, d))
    by_recipe: dict[tuple[str, str], list[Pkg]] = {}
    for p in pkgs:
        by_recipe.setdefault((p.recipe.pn, p.arch), []).append(p)
    for (pn, arch), group in by_recipe.items() if "rpm" in formats else ():
        d = deploy / "rpm" / rpm_arch(arch)
        d.mkdir(parents=True, exist_ok=True)
        jobs.append((write_rpms, group, d))
    jobs += world.deploy_jobs(deploy, world_pkgs, formats)
    if before is not None:
        for _fn, _what, d in jobs:
            pkgcache.REUSE[d] = before / d.relative_to(deploy)

    def run(job):
        fn, what, d = job
        if fn is world.write_job:
            return what(d)
        sde = source_date_epoch((what[0] if isinstance(what, list) else what).recipe)
        if fn is write_rpms:
            pkgcache.built(fn.__name__, (what, sde), d,
                           lambda: fn(what, d, sde, config_noreplace=what[0].recipe.config_noreplace))
        else:
            pkgcache.built(fn.__name__, (what, sde), d, lambda: fn(what, d, sde))
    try:
        with ThreadPoolExecutor(max(2, os.cpu_count() or 2)) as ex:
            for _ in progress(ex.map(run, jobs), f"sample-build release {release}: packages", total=len(jobs)):
                pass
    finally:
        pkgcache.REUSE.clear()

    if "ipk" in formats:
        ipk = get_format("ipk")
        for d in sorted(x for x in (deploy / "ipk").iterdir() if x.is_dir()):
            feed.index(ipk, d, all_versions=False)
        (deploy / "ipk" / "Packages").write_text("")   # OE writes an empty top-level index
    for d in sorted(x for x in (deploy / "deb").iterdir() if x.is_dir()) if "deb" in formats else ():
        # as OE's DpkgIndexer: apt-ftparchive packages/release in each arch directory
        pk = subprocess.run(["apt-ftparchive", "packages", "."], cwd=d, check=True, capture_output=True).stdout
        (d / "Packages").write_bytes(pk)
        (d / "Packages.gz").write_bytes(gzip.compress(pk, 9, mtime=0))
        rel = subprocess.run(["apt-ftparchive", "release", "."], cwd=d, check=True, capture_output=True).stdout
        (d / "Release").write_bytes(f"Label: {d.name}\n".encode() + rel)
    if "rpm" in formats:
        # as OE's RpmIndexer: one repository over the whole rpm deploy directory
        subprocess.run(["createrepo_c", "--update", "-q", str(deploy / "rpm")], check=True, capture_output=True)


def generate(out: Path, release: int, seed: int = 1, inject: list[str] = (), formats=("ipk", "rpm", "deb"),
             packages: int | None = None, series: str | None = None) -> dict:
    """Write release `release` of the sample build into `out`; returns a summary. `packages`: grow
    each machine's feeds to about that many package names with world recipes (world.py). `series`:
    release `release` of a next branch of the distro (recipes.branch) instead of the first one."""
    if release < 1:
        raise ValueError("release must be 1 or more")
    out = out.resolve()
    relative = [d for d in inject if d not in defects.ANY_RELEASE]
    if relative and release < 2:
        raise BindistroError(f"--inject {relative[0]} needs --release 2 or later: it is relative to the release before")
    restored = (out / "conf" / "bindistro.conf").exists()
    if out.exists() and any(out.iterdir()) and not (out / MARKER).exists() and not restored:
        raise BindistroError(f"{out}: exists and is not a bindistro sample build; refusing to overwrite")
    out.mkdir(parents=True, exist_ok=True)
    # a rebuild replaces its outputs (files are unlinked, never rewritten in place), but package
    # files that did not change stay as they were, as in OE: they are moved aside and taken back
    # (pkgcache.REUSE). cache/prserv.sqlite3 is the PR server's memory and stays, as in a build dir.
    old_deploy = out / "tmp-deploy-before"
    shutil.rmtree(old_deploy, ignore_errors=True)
    if (out / "tmp" / "deploy").is_dir():
        old_deploy.mkdir()
        for fmt in ("ipk", "rpm", "deb"):
            if (out / "tmp" / "deploy" / fmt).is_dir():
                (out / "tmp" / "deploy" / fmt).rename(old_deploy / fmt)
    for d in ("tmp", "buildhistory", "sstate-cache"):
        shutil.rmtree(out / d, ignore_errors=True)
    (out / "cache" / "hashserv.db").unlink(missing_ok=True)
    (out / MARKER).write_text(f"seed={seed} release={release} inject={','.join(inject)}"
                             + (f" packages={packages}" if packages else "") + (f" series={series}" if series else "") + "\n")

    history, changes = series_at_release(seed, release) if series else at_release(seed, release)
    nth = len(history)         # its place in the build's history: times, layers, buildhistory
    recipes = history[-1]
    defects.on_recipes(recipes, list(inject))
    machines = machines_of(series)
    state.assign_pr(out / "cache" / "prserv.sqlite3", recipes, machines)
    history[-1] = recipes
    when = release_time(nth)
    mtime = int(when.timestamp())
    pkgs = all_packages(recipes, machines)
    changed_in_place = defects.on_packages(pkgs, recipes, history[-2] if nth > 1 else {}, list(inject))

    world_pkgs: list[Pkg] = []
    world_recipes = world.at_release(seed, release, packages, series) if packages else []
    if packages:
        world_pkgs = world.all_packages(world_recipes, machines)
    try:
        write_deploy(out / "tmp" / "deploy", pkgs, release, formats, world_pkgs, old_deploy)
    finally:
        shutil.rmtree(old_deploy, ignore_errors=True)

    archiver.write_downloads(out / "downloads", list(recipes.values()))
    # the archiver's output for copyleft recipes (a defect drops busybox's)
    archiver.write_sources(out / "tmp" / "deploy", list(recipes.values()) + [w.recipe for w in world_recipes],
                           "x86_64-poky-linux", {"busybox"} if "missing-sources" in inject else set())

    # conf first: the rootfs step reads the feed settings from it, as OE's does
    conf = out / "conf"
    conf.mkdir(exist_ok=True)
    classes = " ".join(f"package_{f}" for f in formats)      # the first one makes the images
    (conf / "local.conf").write_text(defects.on_local_conf(LOCAL_CONF.format(package_classes=classes), list(inject)))
    (conf / "bblayers.conf").write_text(BBLAYERS_CONF)
    local = conf / "local.conf"
    if restored:
        local.write_text(local.read_text() + "require conf/bindistro.conf\n")
    stamp = when.strftime("%Y%m%d%H%M%S")
    images = {}
    for m in machines:
        ip = image_packages(pkgs, m, series)
        images[m.name] = ip
        idir = out / "tmp" / "deploy" / "images" / m.name
        idir.mkdir(parents=True, exist_ok=True)
        base = f"{IMAGE}-{m.name}.rootfs"
        extra = rootfs_generated(m.name, list(inject)) + feedconf.image_files(
            out, m.name, m.package_archs, out / "tmp" / "deploy", list(inject))
        write_rootfs(ip, idir / f"{base}-{stamp}.tar.zst", mtime, extra, rootfs_removed(list(inject)))
        (idir / f"{base}-{stamp}.manifest").write_text("".join(f"{p.name} {p.arch} {p.version}\n" for p in ip))
        sdkmod.write_sdk(out / "tmp" / "deploy", m.name, m.tune, IMAGE, ip)
        (idir / f"{base}-{stamp}.spdx.json").write_bytes(spdx.write_sbom(ip, f"{base}-{stamp}", when.isoformat()))
        suffixes = [".tar.zst", ".manifest", ".spdx.json"]
        if write_boot_files(idir, m, ip, base, stamp, mtime, "boot-panic" in inject, extra):
            suffixes += [".cpio.gz", ".qemuboot.conf"]
        for suffix in suffixes:
            link = idir / f"{base}{suffix}"
            link.unlink(missing_ok=True)
            link.symlink_to(f"{base}-{stamp}{suffix}")
        logdir = out / "tmp" / "log" / "cooker" / m.name
        logdir.mkdir(parents=True, exist_ok=True)
        (logdir / f"{stamp}.log").write_text(defects.on_log(_console_log(nth, m, len(pkgs)), list(inject)))
        (logdir / "console-latest.log").unlink(missing_ok=True)
        (logdir / "console-latest.log").symlink_to(f"{stamp}.log")

    snaps = []
    for n, rs in enumerate(history, 1):
        ps = pkgs if n == nth else all_packages(rs, machines_of(series if n > BRANCH_POINT else None))
        t = release_time(n)
        snaps.append(buildhistory.Snapshot(
            n, t.isoformat(), t.strftime("%Y%m%d%H%M%S"), rs, ps,
            {m.name: (m.arch, images[m.name] if n == nth else image_packages(ps, m, series if n > BRANCH_POINT else None))
             for m in machines_of(series if n > BRANCH_POINT else None)}))
    buildhistory.write_history(out / "buildhistory", snaps)

    (out / "cache").mkdir(exist_ok=True)
    _db_hashserv(out / "cache" / "hashserv.db", history)
    sstate_objects = state.write_sstate(out / "sstate-cache", recipes, machines)
    (out / "setup-layers.json").write_text(layersmod.to_setup_layers(state.sample_layers(seed, nth)))
    (out / "README.sample").write_text(
        "bindistro SAMPLE DATA\n\nThis directory is laid out like a Yocto Project build directory, but no build ran:\n"
        f"`bindistro sample-build` wrote it (seed {seed}, release {release}). The packages are real ipk files\n"
        "with made-up contents. Do not install them on a device.\n")
    return {"out": str(out), "release": release, "series": series, "seed": seed, "packages": len(pkgs) + len(world_pkgs),
            "world_packages": len(world_pkgs),
            "recipes": len(recipes), "changes": [c.__dict__ for c in changes[-1]],
            "images": {k: len(v) for k, v in images.items()}, "inject": list(inject),
            "changed_in_place": changed_in_place, "formats": list(formats), "sstate_objects": sstate_objects,
            "restored": restored}
