"""SAMPLE DATA: real .deb files made by `dpkg-deb --build`, as OE's package_deb does.

Control Architecture is the Debian arch (DPKG_ARCH: amd64, arm64, all); the directory under
tmp/deploy/deb/ is the PACKAGE_ARCH. Tree mtimes and SOURCE_DATE_EPOCH make builds reproducible.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from .packages import Pkg, materialize

DPKG_ARCH = {"core2-64": "amd64", "qemux86_64": "amd64", "cortexa57": "arm64", "qemuarm64": "arm64", "cortexa57-virt": "arm64", "cortexa57-qemuvirt": "arm64", "all": "all"}


def deb_filename(p: Pkg) -> str:
    r = p.recipe
    return f"{p.name}_{r.pkgv}-{r.pkgr}_{DPKG_ARCH[p.arch]}.deb"


def deb_control(p: Pkg) -> str:
    r = p.recipe
    fields = [("Package", p.name), ("Version", p.version),
              ("Description", f"{p.description}\n SAMPLE DATA package of the bindistro sample distro."),
              ("Section", p.section), ("Priority", "optional"),
              ("Maintainer", "bindistro sample data <sample@bindistro.invalid>"), ("License", r.license),
              ("Architecture", DPKG_ARCH[p.arch]), ("OE", r.pn), ("PackageArch", p.arch),
              ("Homepage", f"https://sample.bindistro.invalid/{r.pn}"),
              ("Installed-Size", str(max(1, p.size // 1024)))]
    for key, vals in (("Depends", p.depends), ("Recommends", p.recommends), ("Provides", p.provides),
                      ("Replaces", p.replaces), ("Conflicts", p.conflicts)):
        if vals:
            fields.append((key, ", ".join(vals)))
    return "".join(f"{k}: {v}\n" for k, v in fields)


def write_deb(p: Pkg, dest: Path, sde: int, compress: str = "xz") -> Path:
    """`compress`: OE's xz, or zstd for world-sized samples (xz on gigabytes takes an hour)."""
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        root = Path(tmp) / "root"
        ctl = root / "DEBIAN"
        ctl.mkdir(parents=True)
        (ctl / "control").write_text(deb_control(p))
        if p.conffiles and p.recipe.config_noreplace:      # the injected defect: not declared
            (ctl / "conffiles").write_text("".join(c + "\n" for c in p.conffiles))
        for name, text in p.scripts.items():
            (ctl / name).write_text(text)
            (ctl / name).chmod(0o755)
        materialize(p.files, root)
        for q in [root, *root.rglob("*")]:
            os.utime(q, (sde, sde), follow_symlinks=False)
        out = dest / deb_filename(p)
        env = dict(os.environ, SOURCE_DATE_EPOCH=str(sde))
        res = subprocess.run(["dpkg-deb", "--root-owner-group", f"-Z{compress}", "--build", str(root), str(out)],
                             capture_output=True, text=True, env=env)
        if res.returncode != 0:
            raise RuntimeError(f"dpkg-deb failed for {p.name}: {res.stderr.strip()}")
    return out
