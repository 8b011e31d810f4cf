"""Upgrade tests with the real package managers, in the spirit of Debian's piuparts.

One path = one fresh root: install an old release's image package set (rpm -i / dpkg -i of exactly
those files: fast, and no package manager choices involved), append a marker to every conffile,
record the tree, then upgrade with the real dnf / apt from a repository holding the candidate's
cumulative feed (indexed as bindistro publishes it), and check what a device would suffer: failed scriptlets, lost configuration changes,
files left behind by removed packages, broken symlinks, files owned twice, a damaged package DB.
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..yocto.machines import arch_conf
from ..cache import cache_dir
from ..errors import Finding
from ..formats import get as get_format
from ..formats.base import Indexed
from ..formats.control import read_paragraphs
from . import DEB_ARCH, AptRoot, DnfRoot, PMError, run as _run

MARKER = "# bindistro upgrade test: local change\n"
SAVED = (".rpmsave", ".rpmnew", ".rpmorig", ".dpkg-old", ".dpkg-dist", ".dpkg-new", ".dpkg-bak", "-opkg", ".opkg-old")
SKIP_DIRS = ("proc", "sys", "dev", "run", "tmp", "var/lib/rpm", "var/lib/dpkg", "var/cache", "var/log",
             "var/lib/dnf", "var/lib/apt", "home")
SCRIPTLET_FAIL = re.compile(r"(?:error|warning): %(\w+)\(([^)]+)\) scriptlet failed, exit status (\d+)")


def problem(severity: str, rule: str, subject: str, message: str, scope: str = "") -> Finding:
    """What one upgrade path found; the pm-upgrade gate adds where (format, machine, path)."""
    return Finding(severity, "pm-upgrade", f"pm-upgrade.{rule}", subject, message, scope=scope)


@dataclass
class PathResult:
    fmt: str
    machine: str
    path: str          # first | last | random | n-2
    source: str        # release upgraded from
    problems: list[Finding] = field(default_factory=list)
    upgraded: int = 0
    seconds: float = 0.0
    owned_before: set = field(default_factory=set, repr=False)   # paths packages owned before the upgrade
    changed: dict = field(default_factory=dict, repr=False)      # package -> its version before the upgrade
    after: dict = field(default_factory=dict, repr=False)        # package -> its version right after the upgrade
    reverted: int = 0                   # packages downgraded back to their old versions afterwards
    kept_root: bool = False             # the old release's root was a copy of a kept one (roots.py)
    boot: object = None                 # BootResult of the upgraded root, when it was booted

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)


class RpmRoot:
    fmt = "rpm"

    def __init__(self, work: Path, repo: Path, archs: list[str], move: bool = False):
        """`move`: a device moving to another series upgrades with `dnf distro-sync`: `upgrade`
        keeps a package whose architecture was renamed (a renamed SoC feed) at its old version and
        says nothing; distro-sync (libsolv's distupgrade) lets it change architecture."""
        self.d = DnfRoot(work, [f"file://{repo}"], archs)
        self.root, self.env, self.move = self.d.root, self.d.env, move

    def _rpm(self, *args: str) -> subprocess.CompletedProcess:
        return _run(["rpm", f"--root={self.root}", "--dbpath=/var/lib/rpm", *args], self.env)

    def install(self, files: list[Path]) -> str:
        # /bin/sh first: rpm runs %post right after each package, before the rest of the transaction
        first = [f for f in files if f.name.startswith(("busybox-", "glibc-", "libc6-"))]
        out = ""
        for batch in (first, [f for f in files if f not in first]):
            if batch:
                r = self._rpm("-i", "--nosignature", "--nodigest", *map(str, batch))
                out += r.stdout + r.stderr
                if r.returncode != 0:
                    raise PMError(["rpm", "-i"], out)
        return out

    def upgrade(self) -> str:
        # dnf reports failed scriptlets on stderr and still exits 0: keep both streams
        cmd = [c for c in self.d.dnf_cmd("distro-sync" if self.move else "upgrade") if c != "-q"]  # -q hides rpm's scriptlet warnings
        r = _run(cmd, self.env)
        if r.returncode != 0:
            raise PMError(cmd, r.stdout + r.stderr)
        return r.stdout + r.stderr

    def installed(self) -> dict[str, str]:
        return self.d.installed()

    def files(self) -> tuple[dict[str, list[str]], dict[str, str]]:
        """(path -> owning packages) for files and symlinks; (conffile -> package)."""
        r = self._rpm("-qa", "--qf", "[%{=NAME}\t%{FILENAMES}\t%{FILEFLAGS:fflags}\t%{FILEMODES:perms}\n]")
        owners: dict[str, list[str]] = {}
        conf: dict[str, str] = {}
        for line in r.stdout.splitlines():
            parts = line.split("\t")
            if len(parts) != 4 or parts[3].startswith("d"):
                continue
            owners.setdefault(parts[1], []).append(parts[0])
            if "c" in parts[2]:
                conf[parts[1]] = parts[0]
        return owners, conf

    def audit(self) -> list[str]:
        r = self._rpm("-Va", "--nosignature", "--nodigest")
        # modified config files are the test's own markers; anything else is damage
        return [ln for ln in r.stdout.splitlines() if ln.strip() and not re.match(r"^\S+\s+c\s", ln)]


class DebRoot:
    fmt = "deb"

    def __init__(self, work: Path, repo: Path, dpkg_arch: str = "amd64"):
        self.a = AptRoot(work, [f"file:{repo}"], dpkg_arch)
        self.root, self.env, self.dpkg_arch = self.a.root, self.a.env, dpkg_arch
        self.admin = self.root / "var/lib/dpkg"

    def install(self, files: list[Path]) -> str:
        if self.dpkg_arch != DEB_ARCH.get(os.uname().machine):
            # another CPU's packages: foreign to this dpkg, so the root's dpkg database must allow them
            _run(["dpkg", f"--admindir={self.admin}", "--add-architecture", self.dpkg_arch], self.env)
        r = _run(["dpkg", f"--root={self.root}", f"--admindir={self.admin}", "--force-not-root",
                  "--log=/dev/null", "-i", *map(str, files)], self.env)
        if r.returncode != 0:
            raise PMError(["dpkg", "-i"], r.stdout + r.stderr)
        return r.stdout + r.stderr

    def upgrade(self) -> str:
        self.a.apt_get("update")
        return self.a.apt_get("-oDpkg::Options::=--force-confdef", "-oDpkg::Options::=--force-confold", "full-upgrade")

    def installed(self) -> dict[str, str]:
        return self.a.installed()

    def files(self) -> tuple[dict[str, list[str]], dict[str, str]]:
        installed = set(self.installed())
        return (list_owners(self.root, self.admin / "info", installed),
                status_conffiles(read_paragraphs((self.admin / "status").read_bytes()), installed))

    def audit(self) -> list[str]:
        r = _run(["dpkg", f"--root={self.root}", f"--admindir={self.admin}", "--audit"], self.env)
        return [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]


def list_owners(root: Path, info: Path, installed: set[str]) -> dict[str, list[str]]:
    """path -> owning packages, from dpkg's or opkg's info/<pkg>.list files (opkg adds a tab and mode)."""
    owners: dict[str, list[str]] = {}
    for lst in info.glob("*.list"):
        pkg = lst.stem.split(":")[0]          # dpkg names foreign-arch lists pkg:arm64.list
        if pkg not in installed:
            continue
        for line in lst.read_text().splitlines():
            path = line.split("\t")[0]
            p = root / path.lstrip("/")
            if path and (p.is_symlink() or p.is_file()):
                owners.setdefault(path, []).append(pkg)
    return owners


def status_conffiles(status: list, installed: set[str]) -> dict[str, str]:
    """conffile -> package, from the Conffiles fields of a dpkg/opkg status file."""
    conf: dict[str, str] = {}
    for par in status:
        if par.get("Package") in installed:
            for line in par.get("Conffiles", "").splitlines():
                if line.strip():
                    conf[line.split()[0]] = par["Package"]
    return conf


# opkg runs maintainer scripts as `/bin/sh -c "<script> <args>"` on the host; in this runner's
# private mount namespace /bin/sh is this wrapper, which runs them inside the root, as on a device
SH_WRAPPER = """#!/bin/bash
root="$BINDISTRO_OPKG_ROOT"
cmd="${2//$root\\//\\/}"
/usr/sbin/chroot "$root" /bin/sh -c "$cmd"
rc=$?
[ $rc -ne 0 ] && echo "bindistro-opkg-script-failed rc=$rc: $cmd" >&2
exit $rc
"""


class IpkRoot:
    """opkg on an offline root (`-o ROOT`, as OE's rootfs does) whose maintainer scripts still run,
    inside the root, with a device's arguments (`configure <old-version>`): the host's /bin/sh is
    replaced in a private mount namespace (unshare) by a wrapper that chroots into the root."""
    fmt = "ipk"

    def __init__(self, work: Path, repo: Path, archs: list[str], opkg: str):
        self.work, self.root, self.opkg = work, work / "root", opkg
        (self.root / "tmp").mkdir(parents=True, exist_ok=True)
        (self.root / "var/lib/opkg").mkdir(parents=True, exist_ok=True)
        self.conf = work / "opkg.conf"
        self.conf.write_text("dest root /\noption lists_dir /var/lib/opkg/lists\n" +
                             arch_conf(archs) +
                             f"src/gz candidate file://{repo}\n")
        self.wrapper = work / "sh-wrapper"
        self.wrapper.write_text(SH_WRAPPER)
        self.wrapper.chmod(0o755)
        self.env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8", "TMPDIR": str(self.root / "tmp"),
                    "BINDISTRO_OPKG_ROOT": str(self.root)}

    def run(self, *args: str) -> str:
        inner = (f"mount --bind {self.wrapper} /bin/sh && exec {self.opkg} -f {self.conf} -o {self.root} "
                 f"--force-postinstall {' '.join(args)}")
        user = [] if os.geteuid() == 0 else ["--map-root-user"]
        cmd = ["unshare", *user, "--mount", "--propagation", "private", "/bin/bash", "-c", inner]
        r = _run(cmd, self.env)
        out = (r.stdout + r.stderr).replace(f"{self.root}/", "/")     # paths as the device sees them
        if r.returncode != 0 or "bindistro-opkg-script-failed" in out:
            raise PMError(["opkg", *args], out)
        return out

    def install(self, files: list[Path]) -> str:
        return self.run("install", *map(str, files))

    def upgrade(self) -> str:
        self.run("update")
        return self.run("upgrade")

    def downgrade(self, versions: dict[str, str]) -> str:
        """Back to earlier versions from the cumulative feed, as a device reverts an upgrade."""
        return self.run("install", "--force-downgrade", *(f"{n}={v}" for n, v in sorted(versions.items())))

    def _status(self) -> list[dict]:
        p = self.root / "var/lib/opkg/status"
        return read_paragraphs(p.read_bytes()) if p.exists() else []

    def installed(self) -> dict[str, str]:
        return {s["Package"]: s.get("Version", "") for s in self._status() if s.get("Status", "").endswith(" installed")}

    def files(self) -> tuple[dict[str, list[str]], dict[str, str]]:
        installed = set(self.installed())
        return (list_owners(self.root, self.root / "var/lib/opkg/info", installed),
                status_conffiles(self._status(), installed))

    def audit(self) -> list[str]:
        return [f"{s.get('Package')}: status {s.get('Status')!r}, not 'install ok installed'"
                for s in self._status() if s.get("Status") != "install ok installed"]


def tree(root: Path) -> dict[str, str]:
    """path -> 'f' | 'l:<target>' for everything but directories and the package managers' own state."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel
        dirnames[:] = [d for d in dirnames if not any(os.path.join(rel, d) == s for s in SKIP_DIRS)]
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            p = os.path.join(dirpath, name)
            key = "/" + os.path.join(rel, name)
            out[key] = f"l:{os.readlink(p)}" if os.path.islink(p) else "f"
    return out


def broken_symlinks(root: Path, t: dict[str, str]) -> list[tuple[str, str]]:
    out = []
    for path, kind in t.items():
        if not kind.startswith("l:"):
            continue
        target = kind[2:]
        resolved = (root / target.lstrip("/")) if target.startswith("/") else (root / path.lstrip("/")).parent / target
        # resolve inside the root: an absolute link must not reach the host
        seen = 0
        while resolved.is_symlink() and seen < 20:
            t2 = os.readlink(resolved)
            resolved = (root / t2.lstrip("/")) if t2.startswith("/") else resolved.parent / t2
            seen += 1
        if not resolved.exists():
            out.append((path, target))
    return out


def make_dev(root: Path) -> None:
    """/dev/null in the root, as every device has one (maintainer scripts redirect to it)."""
    dev = root / "dev"
    dev.mkdir(parents=True, exist_ok=True)
    null = dev / "null"
    if not null.exists():
        try:
            os.mknod(null, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        except PermissionError:
            null.touch(mode=0o666)     # not root: a file stands in (writes land in it, reads are empty)


def run_path(pm, old_files: list[Path], res: PathResult, installed: bool = False, on_installed=None) -> PathResult:
    """`installed`: the root already holds the old release (a kept copy, see roots.py);
    `on_installed()` is called right after a successful install, before anything changes the root."""
    t0 = time.monotonic()
    make_dev(pm.root)
    if not installed:
        try:
            pm.install(old_files)
        except PMError as e:
            res.problems.append(problem("error", "old-install-failed", res.source, f"installing the {res.source} image set failed: "
                                        f"{_last_error(e.out)}"))
            res.seconds = round(time.monotonic() - t0, 1)
            return res
        if on_installed:
            on_installed()
    before_pkgs = pm.installed()
    owners_before, conf_before = pm.files()
    res.owned_before = set(owners_before)
    marked = []
    for path in conf_before:
        p = pm.root / path.lstrip("/")
        if p.is_file() and not p.is_symlink():
            with open(p, "a") as fh:
                fh.write(MARKER)
            marked.append(path)
    try:
        out = pm.upgrade()
    except PMError as e:
        subject = _failed_subject(e.out) or res.source
        if not subject.startswith("/"):
            subject = subject.split(":")[0]        # dpkg names a foreign-arch package pkg:arm64
        res.problems.append(problem("error", "transaction-failed", subject, f"upgrade transaction failed: {_last_error(e.out)}"))
        res.seconds = round(time.monotonic() - t0, 1)
        return res
    for m in SCRIPTLET_FAIL.finditer(out):
        name = m.group(2).rsplit("-", 2)[0]
        res.problems.append(problem("error", "scriptlet-failed", name, f"%{m.group(1)} scriptlet of {m.group(2)} exited {m.group(3)}",
                                    scope=f"{m.group(2)}/{m.group(1)}"))
    after_pkgs = pm.installed()
    res.after = dict(after_pkgs)
    res.upgraded = sum(1 for k, v in after_pkgs.items() if before_pkgs.get(k) != v)
    res.changed = {k: before_pkgs[k] for k, v in after_pkgs.items() if k in before_pkgs and before_pkgs[k] != v}
    owners_after, conf_after = pm.files()
    t = tree(pm.root)
    # configuration changes survive
    for path in marked:
        p = pm.root / path.lstrip("/")
        still = p.is_file() and MARKER in p.read_text(errors="replace")
        saved = [path + s for s in SAVED if (pm.root / (path + s).lstrip("/")).exists()]
        if still:
            continue
        pkg = conf_before[path]
        kept = [s for s in saved if MARKER in (pm.root / s.lstrip("/")).read_text(errors="replace")]
        if pkg not in after_pkgs and kept:
            res.problems.append(problem("info", "conffile-kept", pkg, f"{path}: package removed, local changes kept in {', '.join(kept)}"))
            continue
        where = f"; see {', '.join(saved)}" if saved else ""
        res.problems.append(problem("error", "conffile-lost", path, f"configuration changes lost: {path} of {pkg} no longer holds the "
                                    f"local change{where}"))
    # files of removed packages
    for path, pkgs in owners_before.items():
        if path in owners_after or path not in t:
            continue
        if path in conf_before:
            continue          # conffiles of removed (not purged) packages stay by policy
        if all(p not in after_pkgs for p in pkgs):
            res.problems.append(problem("error", "file-left-behind", path, f"left behind by removed package {', '.join(pkgs)}"))
    for path, pkgs in owners_after.items():
        if len(set(pkgs)) > 1:
            res.problems.append(problem("error", "file-conflict", path, f"owned by two packages: {', '.join(sorted(set(pkgs)))}"))
    for link, target in broken_symlinks(pm.root, t):
        res.problems.append(problem("error", "broken-symlink", link, f"broken symlink -> {target}"))
    for line in pm.audit():
        res.problems.append(problem("error", "database-check", res.fmt, f"package database check: {line.strip()}",
                                    scope=line.strip()))
    res.seconds = round(time.monotonic() - t0, 1)
    return res


def revert(pm, res: PathResult) -> None:
    """The seed's promise that devices may go back: the packages the upgrade changed are installed
    again at their old versions, which the cumulative feed still holds (where the format has a way)."""
    if not res.changed or not hasattr(pm, "downgrade"):
        return
    try:
        pm.downgrade(res.changed)
    except PMError as e:
        res.problems.append(problem("error", "revert-failed", _failed_subject(e.out) or res.source,
                                        f"reverting to the {res.source} versions failed: {_last_error(e.out)}"))
        return
    back = pm.installed()
    for name, old in sorted(res.changed.items()):
        if back.get(name) != old:
            res.problems.append(problem("error", "revert-version", name, f"revert: {name} is {back.get(name)} after downgrading to {old}"))
    res.reverted = sum(1 for n, v in res.changed.items() if back.get(n) == v)


def _last_error(out: str) -> str:
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    # the line that says what went wrong, before the package manager's summary of it
    key = [ln for ln in lines if re.search(r"subprocess returned error|trying to overwrite|conflicts with file|"
                                           r"scriptlet failed|unmet dependencies|nothing provides|"
                                           r"opkg-script-failed|wants to install file", ln, re.I)]
    if key:
        return key[0][:300]
    errs = [ln for ln in lines if re.search(r"error|fail|conflict|overwrite", ln, re.I)]
    return (errs or lines or ["(no output)"])[-1][:300]


def _failed_subject(out: str) -> str | None:
    m = re.search(r"file (\S+) (?:from install of \S+ conflicts with file from package|conflicts between "
                  r"attempted installs of) (\S+)", out) or \
        re.search(r"trying to overwrite '([^']+)', which is also in package (\S+)", out)
    if m:
        return m.group(1)
    m = re.search(r"wants to install file (\S+)\s+But that file is already provided by package", out)
    if m:
        return m.group(1)
    m = re.search(r"bindistro-opkg-script-failed rc=\d+: (\S+)", out)
    if m:
        return opkg_script_package(m.group(1))
    m = re.search(r"installed (\S+) package post-installation script subprocess returned error", out) or \
        re.search(r"Errors were encountered while processing:\s*\n\s*(\S+)", out)
    return m.group(1) if m else None


def opkg_script_package(path: str) -> str:
    """The package of a maintainer script opkg ran: info/<pkg>.postinst, or <tmp>/<pkg>-XXXXXX/postinst."""
    parent, name = path.rsplit("/", 2)[-2:]
    if "." in name and parent == "info":
        return name.rsplit(".", 1)[0]
    return parent.rsplit("-", 1)[0]


def make_repo(fmt: str, files: list[tuple[Path, Indexed]], dest: Path) -> Path:
    """A flat repository of the given package files (store path, index entry) for dnf or apt, indexed
    by the same writer as the published feeds: the upgrade goes through the index devices will read."""
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    items: dict[str, Indexed] = {}
    for src, it in files:
        if it.filename in items:
            continue
        try:
            os.link(src, dest / it.filename)
        except OSError:
            shutil.copyfile(src, dest / it.filename)
        items[it.filename] = it
    get_format(fmt).write_index(dest, list(items.values()), all_versions=True)
    return dest


def find_opkg(spec=None, build_dir: Path | None = None) -> str | None:
    """The opkg to test ipk upgrades with: `verify --opkg` or the spec's tools.opkg, or BINDISTRO_OPKG,
    then the candidate build's opkg-native, then the one scripts/build-opkg.sh built, then PATH."""
    given = (spec.opkg if spec is not None else None) or os.environ.get("BINDISTRO_OPKG")
    if given:
        p = spec.resolve(given) if spec is not None else Path(given)
        return str(p) if os.access(p, os.X_OK) else None
    if build_dir:
        for p in sorted((build_dir / "tmp" / "sysroots-components").glob("*/opkg-native/usr/bin/opkg")):
            return str(p)
    cached = cache_dir() / "opkg" / "bin" / "opkg"
    if os.access(cached, os.X_OK):
        return str(cached)
    return shutil.which("opkg")
