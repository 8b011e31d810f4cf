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

from .formats import get as get_format
from .formats.base import Indexed
from .formats.control import read_paragraphs
from .pm import AptRoot, DnfRoot, PMError

MARKER = "# bindistro upgrade test: local change\n"
SAVED = (".rpmsave", ".rpmnew", ".rpmorig", ".dpkg-old", ".dpkg-dist", ".dpkg-new", ".dpkg-bak", "-opkg", ".opkg-old")
SKIP_DIRS = ("proc", "sys", "dev", "run", "tmp", "var/lib/rpm", "var/lib/dpkg", "var/cache", "var/log",
             "var/lib/dnf", "var/lib/apt", "home")
SCRIPTLET_FAIL = re.compile(r"(?:error|warning): %(\w+)\(([^)]+)\) scriptlet failed, exit status (\d+)")


@dataclass
class PathProblem:
    severity: str      # error | warning | info
    subject: str       # package or file
    message: str


@dataclass
class PathResult:
    fmt: str
    machine: str
    path: str          # first | last | random | n-2
    source: str        # release upgraded from
    problems: list[PathProblem] = field(default_factory=list)
    upgraded: int = 0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not any(p.severity == "error" for p in self.problems)


def _run(cmd: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


class RpmRoot:
    fmt = "rpm"

    def __init__(self, work: Path, repo: Path, archs: list[str]):
        self.d = DnfRoot(work, [f"file://{repo}"], archs)
        self.root, self.env = self.d.root, self.d.env

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
        cmd = [c for c in self.d.dnf_cmd("upgrade") if c != "-q"]    # -q hides rpm's scriptlet warnings
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
        self.root, self.env = self.a.root, self.a.env
        self.admin = self.root / "var/lib/dpkg"

    def install(self, files: list[Path]) -> str:
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
        owners: dict[str, list[str]] = {}
        conf: dict[str, str] = {}
        installed = set(self.installed())
        for lst in (self.admin / "info").glob("*.list"):
            pkg = lst.stem.split(":")[0]
            if pkg not in installed:
                continue
            for path in lst.read_text().splitlines():
                p = self.root / path.lstrip("/")
                if path and (p.is_symlink() or p.is_file()):
                    owners.setdefault(path, []).append(pkg)
        for par in read_paragraphs((self.admin / "status").read_bytes()):
            if par.get("Package") in installed:
                for line in par.get("Conffiles", "").splitlines():
                    if line.strip():
                        conf[line.split()[0]] = par["Package"]
        return owners, conf

    def audit(self) -> list[str]:
        r = _run(["dpkg", f"--root={self.root}", f"--admindir={self.admin}", "--audit"], self.env)
        return [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()]


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


def run_path(pm, old_files: list[Path], res: PathResult) -> PathResult:
    t0 = time.monotonic()
    make_dev(pm.root)
    try:
        pm.install(old_files)
    except PMError as e:
        res.problems.append(PathProblem("error", res.source, f"installing the {res.source} image set failed: "
                                    f"{_last_error(e.out)}"))
        res.seconds = round(time.monotonic() - t0, 1)
        return res
    before_pkgs = pm.installed()
    owners_before, conf_before = pm.files()
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
        res.problems.append(PathProblem("error", _failed_subject(e.out) or res.source,
                                    f"upgrade transaction failed: {_last_error(e.out)}"))
        res.seconds = round(time.monotonic() - t0, 1)
        return res
    for m in SCRIPTLET_FAIL.finditer(out):
        name = m.group(2).rsplit("-", 2)[0]
        res.problems.append(PathProblem("error", name, f"%{m.group(1)} scriptlet of {m.group(2)} exited {m.group(3)}"))
    after_pkgs = pm.installed()
    res.upgraded = sum(1 for k, v in after_pkgs.items() if before_pkgs.get(k) != v)
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
            res.problems.append(PathProblem("info", pkg, f"{path}: package removed, local changes kept in {', '.join(kept)}"))
            continue
        where = f"; see {', '.join(saved)}" if saved else ""
        res.problems.append(PathProblem("error", path, f"configuration changes lost: {path} of {pkg} no longer holds the "
                                    f"local change{where}"))
    # files of removed packages
    for path, pkgs in owners_before.items():
        if path in owners_after or path not in t:
            continue
        if path in conf_before:
            continue          # conffiles of removed (not purged) packages stay by policy
        if all(p not in after_pkgs for p in pkgs):
            res.problems.append(PathProblem("error", path, f"left behind by removed package {', '.join(pkgs)}"))
    for path, pkgs in owners_after.items():
        if len(set(pkgs)) > 1:
            res.problems.append(PathProblem("error", path, f"owned by two packages: {', '.join(sorted(set(pkgs)))}"))
    for link, target in broken_symlinks(pm.root, t):
        res.problems.append(PathProblem("error", link, f"broken symlink -> {target}"))
    for line in pm.audit():
        res.problems.append(PathProblem("error", res.fmt, f"package database check: {line.strip()}"))
    res.seconds = round(time.monotonic() - t0, 1)
    return res


def _last_error(out: str) -> str:
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]
    # the line that says what went wrong, before the package manager's summary of it
    key = [ln for ln in lines if re.search(r"subprocess returned error|trying to overwrite|conflicts with file|"
                                           r"scriptlet failed|unmet dependencies|nothing provides", ln, re.I)]
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
    m = re.search(r"installed (\S+) package post-installation script subprocess returned error", out) or \
        re.search(r"Errors were encountered while processing:\s*\n\s*(\S+)", out)
    return m.group(1) if m else None


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


def find_opkg(build_dir: Path | None = None) -> str | None:
    path = shutil.which("opkg")
    if path:
        return path
    if build_dir:
        for p in sorted((build_dir / "tmp" / "sysroots-components").glob("*/opkg-native/usr/bin/opkg")):
            return str(p)
    return None
