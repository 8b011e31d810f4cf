"""What a device says it has installed, in the five shapes devices and builds write it:

    opkg status      /var/lib/opkg/status (or /usr/lib/opkg/status): control stanzas, `Installed-Time:`
    dpkg status      /var/lib/dpkg/status: control stanzas
    rpm -qa          `rpm -qa --qf '%{NAME} %{EPOCH}:%{VERSION}-%{RELEASE} %{ARCH}\\n'`
    OE manifest      an image's .manifest (rootfs-postcommands: `name arch version`)
    aktualizr        /usr/package.manifest (`name version`)

The format is told by content, not by file name; site/static/site.js parses the same way."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .errors import BindistroError
from .formats.control import read_paragraphs

MAX_MANIFEST = 64 << 20     # a dpkg status of 20,000 packages is ~40 MB
FORMAT_OF = {"opkg-status": "ipk", "dpkg-status": "deb", "rpm-qa": "rpm", "oe-manifest": None, "aktualizr": None}
_RPM_EVR = re.compile(r"^(\(none\)|\d+):\S+-\S+$")


@dataclass
class Installed:
    name: str
    version: str
    arch: str = ""


@dataclass
class DeviceManifest:
    kind: str                     # one of FORMAT_OF
    format: str | None            # the package format it implies, if any
    packages: list[Installed]


class ManifestError(BindistroError):
    pass


def load(path: Path) -> DeviceManifest:
    try:
        if path.stat().st_size > MAX_MANIFEST:
            raise ManifestError(f"{path}: larger than {MAX_MANIFEST >> 20} MB; not a device manifest")
        text = path.read_bytes().decode("utf-8", errors="replace")
    except IsADirectoryError:
        raise ManifestError(f"{path}: a directory, not a manifest file") from None
    try:
        return parse(text)
    except ManifestError as e:
        raise ManifestError(f"{path}: {e}") from None


def parse(text: str) -> DeviceManifest:
    if re.search(r"^Package:", text, re.M):
        return _status(text)
    kind = None
    pkgs = []
    for n, line in enumerate(text.splitlines(), 1):
        w = line.split()
        if not w:
            continue
        k = ("aktualizr" if len(w) == 2 else "rpm-qa" if len(w) == 3 and _RPM_EVR.match(w[1])
             else "oe-manifest" if len(w) == 3 else None)
        if k is None or (kind and k != kind):
            raise ManifestError(f"line {n}: not a line of a known manifest format "
                                f"(opkg/dpkg status, rpm -qa, image .manifest, package.manifest): {line[:80]!r}")
        kind = k
        if k == "aktualizr":
            pkgs.append(Installed(w[0], w[1]))
        elif k == "oe-manifest":
            pkgs.append(Installed(w[0], w[2], w[1]))
        else:
            epoch, _, vr = w[1].partition(":")
            pkgs.append(Installed(w[0], vr if epoch in ("(none)", "0") else w[1], w[2]))
    if kind is None:
        raise ManifestError("line 1: empty; not a device manifest")
    return DeviceManifest(kind, FORMAT_OF[kind], pkgs)


def _status(text: str) -> DeviceManifest:
    """opkg's and dpkg's status file: the control paragraphs apt's own parser reads (formats.control)."""
    kind = "opkg-status" if re.search(r"^Installed-Time:", text, re.M) else "dpkg-status"
    pkgs = []
    for n, f in enumerate(read_paragraphs(text.encode()), 1):
        if "Package" not in f or "Version" not in f:
            raise ManifestError(f"paragraph {n}: no Package and Version field")
        if not f.get("Status") or f["Status"].endswith(" installed"):
            pkgs.append(Installed(f["Package"], f["Version"], f.get("Architecture", "")))
    return DeviceManifest(kind, FORMAT_OF[kind], pkgs)
