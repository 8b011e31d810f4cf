"""SAMPLE DATA: the feed configuration an image gets at rootfs time, as OE writes it, read from the
build's conf with bitbake's parser: opkg-arch-config's arch.conf (PACKAGE_ARCHS), the feed lines
OE writes from PACKAGE_FEED_URIS / _BASE_PATHS / _ARCHS (ipk: base-feeds.conf), then, when the
conf inherits bindistro-feeds (written by `bindistro restore`), what that class copies over them."""
from __future__ import annotations

from pathlib import Path

from bindistro.yocto import conf
from bindistro.yocto.machines import arch_conf
from .packages import File

PKGTYPE = "ipk"     # the sample images are opkg images, whatever else the build packages


def _dirs(paths) -> list[File]:
    out = set()
    for p in paths:
        parts = p.strip("/").split("/")[:-1]
        out |= {"/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return [File(d, "dir", mode=0o755) for d in sorted(out)]


def image_files(topdir: Path, machine: str, package_archs: list[str], deploy: Path, inject: list[str]) -> list[File]:
    files = {"/etc/opkg/arch.conf": arch_conf(package_archs).encode()}
    if "image-not-preconfigured" not in inject and (topdir / "conf" / "local.conf").exists():
        d = conf.parse([topdir / "conf" / "local.conf"], topdir, preset={"MACHINE": machine, "IMAGE_PKGTYPE": PKGTYPE})
        d.setVar("OVERRIDES", f"{machine}:pn-core-image-minimal")
        uris, bases = conf.words(d, "PACKAGE_FEED_URIS"), conf.words(d, "PACKAGE_FEED_BASE_PATHS") or [""]
        archs = conf.words(d, "PACKAGE_FEED_ARCHS") or [a for a in package_archs if (deploy / PKGTYPE / a).is_dir()]
        lines = [f"src/gz uri-{a}-{i} {u.rstrip('/')}/{b.strip('/')}/{a}\n" if b else f"src/gz uri-{a}-{i} {u.rstrip('/')}/{a}\n"
                 for i, u in enumerate(uris) for b in bases for a in archs]
        if lines:
            files["/etc/opkg/base-feeds.conf"] = "".join(lines).encode()
        if "bindistro-feeds" in conf.words(d, "INHERIT") and d.getVar("BINDISTRO_FEED_FILES"):
            src = Path(d.getVar("BINDISTRO_FEED_FILES")) / machine / PKGTYPE
            for p in sorted(src.rglob("*")) if src.is_dir() else ():
                if p.is_file():
                    files["/" + str(p.relative_to(src))] = p.read_bytes()
    modes = {p: (0o600 if "/gpg/" in p else 0o644) for p in files}
    return _dirs(files) + [File(p, data=data, mode=modes[p]) for p, data in sorted(files.items())]
