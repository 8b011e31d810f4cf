"""SAMPLE DATA: real .rpm files made by `rpmbuild`, one spec per recipe and arch, as OE's package_rpm does.

OE names: rpm arch = PACKAGE_ARCH with '-' -> '_' ('all' -> 'noarch'); Version = PKGV,
Release = PKGR, Epoch = PE; RREPLACES -> Obsoletes, RCONFLICTS -> Conflicts; conffiles are
%config(noreplace). SOURCE_DATE_EPOCH keeps unchanged recipes byte-identical between releases.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from .packages import Pkg, materialize


def rpm_arch(arch: str) -> str:
    return "noarch" if arch == "all" else arch.replace("-", "_")


def rpm_dep(dep: str) -> str:
    """'foo (= 1.0-r0)' -> 'foo = 1.0-r0' ; '<<' / '>>' -> '<' / '>'."""
    m = re.match(r"^\s*(\S+)\s*(?:\((<<|>>|<=|>=|=|<|>)\s*([^)]+)\))?\s*$", dep)
    if not m:
        return dep
    name, op, ver = m.groups()
    if not op:
        return name
    return f"{name} {dict({'<<': '<', '>>': '>'}).get(op, op)} {ver.strip()}"


def rpm_filename(p: Pkg) -> str:
    r = p.recipe
    return f"{p.name}-{r.pkgv}-{r.pkgr}.{rpm_arch(p.arch)}.rpm"


def _tags(p: Pkg, main: str) -> list[str]:
    """Preamble of one package: `%package -n` for subpackages, then its dependencies."""
    tag = "" if p.name == main else f" -n {p.name}"
    lines = [f"%package{tag}", f"Summary: {p.description}", f"License: {p.recipe.license}"] if tag else []
    lines.append(f"Group: {p.section}")
    for d in p.depends:
        lines.append(f"Requires: {rpm_dep(d)}")
    for d in p.recommends:
        lines.append(f"Recommends: {rpm_dep(d)}")
    for d in p.provides:
        lines.append(f"Provides: {rpm_dep(d)}")
    for d in p.replaces:
        if "(" not in d:    # versioned Replaces only allow taking over files: nothing to say in rpm
            lines.append(f"Obsoletes: {rpm_dep(d)}")
    for d in p.conflicts:
        lines.append(f"Conflicts: {rpm_dep(d)}")
    return lines + [f"%description{tag}", f"{p.description}.", ""]


def _files(p: Pkg, main: str) -> list[str]:
    tag = "" if p.name == main else f" -n {p.name}"
    files = []
    for f in p.files:
        if f.kind == "dir":
            files.append(f"%dir {f.path}")
        elif f.path in p.conffiles:
            files.append(f"%config(noreplace) {f.path}")
        else:
            files.append(f.path)
    lines = [f"%files{tag}", "%defattr(-,root,root,-)", *files, ""]
    for script, section in (("postinst", "post"), ("prerm", "preun")):
        if script in p.scripts:
            body = p.scripts[script].split("\n", 1)[1] if p.scripts[script].startswith("#!") else p.scripts[script]
            lines += [f"%{section}{tag}", body.rstrip("\n"), ""]
    return lines


def _rpmbuild(t: Path, spec: Path, arch: str, sde: int, payload: str) -> subprocess.CompletedProcess:
    """rpmbuild -bb in the private directory `t` (its own HOME, so no user's macros), reproducibly."""
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(sde), HOME=str(t))
    (t / ".rpmmacros").write_text("%_dbpath /var/lib/rpm\n")
    cmd = ["rpmbuild", "-bb", "--quiet", "--target", arch,
           "--define", f"_topdir {t / 'top'}", "--define", "_build_id_links none",
           "--define", "__os_install_post %{nil}", "--define", "_buildhost sample.bindistro.invalid",
           "--define", "use_source_date_epoch_as_buildtime 1", "--define", "clamp_mtime_to_source_date_epoch 1",
           "--define", f"_binary_payload {payload}", "--define", "_unpackaged_files_terminate_build 0",
           "--define", "_rpmfilename %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm", str(spec)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env)


def write_rpms(pkgs: list[Pkg], dest: Path, sde: int, config_noreplace: bool = True) -> list[Path]:
    """Build every package of one recipe and arch (`pkgs`) with one rpmbuild run into `dest`."""
    r = pkgs[0].recipe
    arch = rpm_arch(pkgs[0].arch)
    main = r.pn
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        t = Path(tmp)
        tree = t / "tree"
        for p in pkgs:
            materialize(p.files, tree)
        head = [f"Name: {main}", f"Version: {r.pkgv}", f"Release: {r.pkgr}"]
        if r.pe:
            head.append(f"Epoch: {r.pe}")
        mp = next((p for p in pkgs if p.name == main), None)
        head += [f"Summary: {(mp or pkgs[0]).description}", f"License: {r.license}",
                 f"URL: https://sample.bindistro.invalid/{r.pn}", "Vendor: bindistro sample data",
                 "Packager: bindistro sample data <sample@bindistro.invalid>", "AutoReqProv: no"]
        if mp:
            head += _tags(mp, main)
        else:
            head += ["", "%description", "SAMPLE DATA.", ""]
        for p in pkgs:
            if p is not mp:
                head += _tags(p, main)
        body = [f"%install\nmkdir -p %{{buildroot}}\ncp -a {tree}/. %{{buildroot}}/\n"]
        for p in pkgs:
            body += _files(p, main)
        spec = "\n".join(head + body)
        if not config_noreplace:
            spec = spec.replace("%config(noreplace)", "%config")
        (t / f"{main}.spec").write_text(spec)
        res = _rpmbuild(t, t / f"{main}.spec", arch, sde, "w19.zstdio")
        if res.returncode != 0:
            raise RuntimeError(f"rpmbuild failed for {main} ({arch}): {res.stderr.strip()[-500:]}")
        out = []
        for f in (t / "top" / "RPMS").iterdir():
            target = dest / f.name
            shutil.move(f, target)
            out.append(target)
        return out


BATCH_MAIN = "bindistro-world-sample"


def write_rpm_batch(pkgs: list[Pkg], dest: Path, sde: int) -> dict[str, Path]:
    """Many packages of many recipes in one rpmbuild run (world-sized samples: one run per recipe
    would take an hour): each is a subpackage with its own Version, Release, Epoch and License,
    so its file is the one a build of its recipe alone would make, but for SOURCERPM (the batch's)
    and the build time (one SOURCE_DATE_EPOCH). Returns {rpm file name: path}."""
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        t = Path(tmp)
        tree = t / "tree"
        for p in pkgs:
            materialize(p.files, tree)
        arch = rpm_arch(pkgs[0].arch)
        head = [f"Name: {BATCH_MAIN}", "Version: 1", "Release: r0", "Summary: SAMPLE DATA world batch",
                "License: MIT", "URL: https://sample.bindistro.invalid/", "Vendor: bindistro sample data",
                "Packager: bindistro sample data <sample@bindistro.invalid>", "AutoReqProv: no", "",
                "%description", "SAMPLE DATA.", ""]
        for p in pkgs:
            r = p.recipe
            lines = _tags(p, BATCH_MAIN)
            extra = [f"Version: {r.pkgv}", f"Release: {r.pkgr}", f"URL: https://sample.bindistro.invalid/{r.pn}"]
            if r.pe:
                extra.append(f"Epoch: {r.pe}")
            head += lines[:3] + extra + lines[3:]
        body = [f"%install\nmkdir -p %{{buildroot}}\ncp -a {tree}/. %{{buildroot}}/\n"]
        for p in pkgs:
            body += _files(p, BATCH_MAIN)
        (t / "batch.spec").write_text("\n".join(head + body))
        res = _rpmbuild(t, t / "batch.spec", arch, sde, "w3.zstdio")    # zstd -19 on gigabytes: hours
        if res.returncode != 0:
            raise RuntimeError(f"rpmbuild failed for a world batch ({arch}): {res.stderr.strip()[-500:]}")
        out = {}
        for f in (t / "top" / "RPMS").rglob("*.rpm"):
            shutil.move(f, dest / f.name)
            out[f.name] = dest / f.name
        return out
