"""SAMPLE DATA: what `bitbake core-image-minimal -c populate_sdk` deploys into tmp/deploy/sdk/: an
installer and its host and target manifests, named as OE names them (SDK_NAME ends in -${MACHINE}).
The installer is a stand-in: a shell script that says so."""
from __future__ import annotations

from pathlib import Path

from .packages import Pkg

SDK_VERSION = "5.0"
HOST = [("nativesdk-gcc", "13.2.0-r0"), ("nativesdk-binutils", "2.42-r0"), ("nativesdk-glibc", "2.39+git0+58c4fce55c-r0"),
        ("nativesdk-cmake", "3.28.3-r0"), ("nativesdk-pkgconfig", "0.29.2+git0+d97db4fae4-r0"), ("nativesdk-python3", "3.12.3-r0")]
INSTALLER = """#!/bin/sh
# bindistro SAMPLE DATA: stand-in for the {name} SDK installer (OE's populate_sdk writes a
# self-extracting toolchain here). Nothing is installed.
echo "SAMPLE DATA: {name} SDK {version} for {machine} ({tune}); not a real toolchain" >&2
exit 0
"""


def write_sdk(deploy: Path, machine: str, tune: str, image: str, pkgs: list[Pkg]) -> list[str]:
    d = deploy / "sdk"
    d.mkdir(parents=True, exist_ok=True)
    base = f"poky-glibc-x86_64-{image}-{tune}-{machine}-toolchain-{SDK_VERSION}"
    (d / f"{base}.sh").write_text(INSTALLER.format(name=image, version=SDK_VERSION, machine=machine, tune=tune))
    (d / f"{base}.sh").chmod(0o755)
    (d / f"{base}.host.manifest").write_text("".join(f"{n} x86_64_nativesdk {v}\n" for n, v in HOST))
    # the target sysroot: the image's packages and their -dev packages, as `name arch version`
    (d / f"{base}.target.manifest").write_text("".join(f"{p.name} {p.arch} {p.version}\n" for p in pkgs))
    return [f"{base}.sh", f"{base}.host.manifest", f"{base}.target.manifest"]
