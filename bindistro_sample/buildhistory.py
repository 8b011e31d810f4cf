"""SAMPLE DATA: buildhistory in OE's format, one git commit per release (like BUILDHISTORY_COMMIT)."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from .packages import Pkg
from .recipes import Recipe


@dataclass
class Snapshot:
    release: int
    when: str                       # git date
    stamp: str                      # BUILDNAME
    recipes: dict[str, Recipe]
    pkgs: list[Pkg]
    images: dict[str, tuple[str, list[Pkg]]]   # machine -> (MACHINE_ARCH, packages)


def _kv(pairs) -> str:
    return "".join(f"{k} = {v}\n" for k, v in pairs)


def _write_packages(root: Path, snap: Snapshot) -> None:
    by_sys: dict[tuple[str, str], list[Pkg]] = defaultdict(list)
    for p in snap.pkgs:
        by_sys[(f"{p.arch}-poky-linux", p.recipe.pn)].append(p)
    for (sysdir, pn), pkgs in sorted(by_sys.items()):
        r = pkgs[0].recipe
        d = root / "packages" / sysdir / pn
        d.mkdir(parents=True, exist_ok=True)
        head = ([("PE", r.pe)] if r.pe else []) + [("PV", r.pv), ("PR", r.pr)]
        (d / "latest").write_text(_kv(head + [
            ("DEPENDS", "virtual/libc virtual/x86_64-poky-linux-gcc" if r.pn != "glibc" else "virtual/x86_64-poky-linux-gcc"),
            ("PACKAGES", " ".join(p.name for p in pkgs))]))
        for p in pkgs:
            pd = d / p.name
            pd.mkdir(exist_ok=True)
            pairs = list(head)
            if r.pkgv != r.pv:
                pairs.append(("PKGV", r.pkgv))
            if r.pkgr != r.pr:
                pairs.append(("PKGR", r.pkgr))
            pairs += [("RPROVIDES", " ".join(p.provides)), ("RDEPENDS", " ".join(p.depends)),
                      ("RRECOMMENDS", " ".join(p.recommends))]
            if p.replaces:
                pairs.append(("RREPLACES", " ".join(p.replaces)))
            if p.conflicts:
                pairs.append(("RCONFLICTS", " ".join(p.conflicts)))
            files = [f.path for f in p.files if f.kind != "dir"]
            pairs += [("PKGSIZE", p.size), ("FILES", " ".join(sorted({f.rsplit("/", 1)[0] for f in files}))),
                      ("FILELIST", " ".join(sorted(files)))]
            (pd / "latest").write_text(_kv(pairs))
            for name, text in p.scripts.items():
                (pd / f"latest.pkg_{name}").write_text(text)


def _mode(f) -> str:
    if f.kind == "dir":
        return stat.filemode(stat.S_IFDIR | 0o755)
    if f.kind == "symlink":
        return stat.filemode(stat.S_IFLNK | 0o777)
    return stat.filemode(stat.S_IFREG | f.mode)


def _write_images(root: Path, snap: Snapshot) -> None:
    for machine, (march, pkgs) in snap.images.items():
        d = root / "images" / march / "glibc" / "core-image-minimal"
        d.mkdir(parents=True, exist_ok=True)
        names = sorted(p.name for p in pkgs)
        (d / "installed-package-names.txt").write_text("".join(n + "\n" for n in names))
        (d / "installed-packages.txt").write_text("".join(p.filename + "\n" for p in sorted(pkgs, key=lambda p: p.filename)))
        sizes = sorted(((max(1, p.size // 1024), p.name) for p in pkgs), key=lambda t: (-t[0], t[1]))
        (d / "installed-package-sizes.txt").write_text("".join(f"{s}\tKiB\t{n}\n" for s, n in sizes))
        files = {}
        for p in pkgs:
            for f in p.files:
                files[f.path] = f
        lines = []
        for path in sorted(files):
            f = files[path]
            size = 4096 if f.kind == "dir" else (len(f.target) if f.kind == "symlink" else len(f.data))
            tail = f" -> {f.target}" if f.kind == "symlink" else ""
            lines.append(f"{_mode(f)} root       root       {size:>10} .{path}{tail}\n")
        (d / "files-in-image.txt").write_text("".join(lines))
        dot = ["digraph depends {\n", "    node [shape=plaintext]\n"]
        for p in sorted(pkgs, key=lambda p: p.name):
            for dep in p.depends:
                dot.append(f'"{p.name}" -> "{dep.split(" ", 1)[0]}"\n')
            for rec in p.recommends:
                dot.append(f'"{p.name}" -> "{rec}" [style=dotted]\n')
        dot.append("}\n")
        (d / "depends.dot").write_text("".join(dot))
        imagesize = sum(p.size for p in pkgs) // 1024
        (d / "image-info.txt").write_text(_kv([
            ("DISTRO", "poky-altcfg"), ("DISTRO_VERSION", "5.0"),
            ("USER_CLASSES", "buildstats"), ("IMAGE_CLASSES", "qemuboot"),
            ("IMAGE_FEATURES", ""), ("IMAGE_LINGUAS", ""),
            ("IMAGE_INSTALL", "packagegroup-core-boot bindistro-hello openssh"),
            ("BAD_RECOMMENDATIONS", ""), ("NO_RECOMMENDATIONS", ""), ("PACKAGE_EXCLUDE", ""),
            ("ROOTFS_POSTPROCESS_COMMAND", "write_package_manifest; license_create_manifest; "
                                           "rootfs_update_timestamp; rootfs_reproducible;"),
            ("IMAGE_POSTPROCESS_COMMAND", " buildhistory_get_imageinfo ;"),
            ("IMAGESIZE", imagesize),
            ("SAMPLE_DATA", "written by bindistro sample-build; not a real Yocto build")]))
        (d / "build-id.txt").write_text(
            f"{machine}: core-image-minimal configured for poky-altcfg 5.0\n\nBuild Configuration:\n"
            f'BB_VERSION           = "2.8.0"\nMACHINE              = "{machine}"\nDISTRO               = "poky-altcfg"\n'
            'meta                 = "scarthgap:0000000000000000000000000000000000000000"\n'
            "(bindistro SAMPLE DATA)\n")


def write_history(root: Path, snaps: list[Snapshot]) -> None:
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    env = dict(os.environ, GIT_CONFIG_GLOBAL="/dev/null", GIT_CONFIG_NOSYSTEM="1")

    def git(*args, **kw):
        subprocess.run(["git", "-c", "user.name=buildhistory", "-c", "user.email=buildhistory@localhost",
                        "-c", "commit.gpgsign=false", *args], cwd=root, check=True, capture_output=True,
                       env={**env, **kw})

    git("init", "-q", "-b", "master")
    for snap in snaps:
        for sub in ("packages", "images"):
            shutil.rmtree(root / sub, ignore_errors=True)
        _write_packages(root, snap)
        _write_images(root, snap)
        (root / "metadata-revs").write_text(
            "meta              = scarthgap:0000000000000000000000000000000000000000\n"
            "meta-poky         = scarthgap:0000000000000000000000000000000000000000\n"
            "meta-yocto-bsp    = scarthgap:0000000000000000000000000000000000000000\n")
        git("add", "-A")
        git("commit", "-q", "-m", f"Build {snap.stamp} of poky-altcfg 5.0 for machine qemux86-64 on bindistro-sample "
            f"(release {snap.release}, SAMPLE DATA)", GIT_AUTHOR_DATE=snap.when, GIT_COMMITTER_DATE=snap.when)
