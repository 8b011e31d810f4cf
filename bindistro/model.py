"""The data that flows through the cycle: build dir -> candidate -> release.

Plain typed records; reading them from disk and writing them to the DB live elsewhere.
"""
from __future__ import annotations

import re
import sys
from dataclasses import asdict, dataclass, field

# Artifact kinds. Packages go to feeds; everything else goes under releases/<name>/.
PACKAGE = "package"
IMAGE = "image"
BUILDHISTORY = "buildhistory"
PRDB = "prdb"
HASHEQUIV = "hashequiv"
CONF = "conf"
LOG = "log"
SBOM = "sbom"
SSTATE = "sstate"
LAYERS = "layers"         # layer URLs and commits of the build (JSON list)
SOURCES = "sources"       # archiver output: tmp/deploy/sources/<TARGET_SYS>/<PF>/<file>
DOWNLOADS = "downloads"   # DL_DIR's fetched upstream files (optional: sources.downloads): a source mirror
SDK = "sdk"               # tmp/deploy/sdk/: SDK / eSDK installers and their host and target manifests
GENERATED = "generated"   # written by bindistro at release time (setup-layers.json, PR export, ...)

# The index signatures a feed of each format may carry (as OE's signing classes name them).
# what a publishing command may rewrite (everything else published is immutable): feed indexes and
# their signatures, the listing and security policy, and the feed viewer (site/, api/)
INDEXES = {"Packages", "Packages.gz", "Packages.xz", "Packages.stamps", "Release", "repomd.xml"}
LISTINGS = {"releases.json", "SECURITY.md", "security.txt"}
VIEWER = ("site/", "api/")
ROOTFS = re.compile(r"\.rootfs.*\.tar(\.(gz|bz2|xz|zst))?$")   # an image's root filesystem archive
FEED_ROOT = re.compile(r"feeds(/[A-Za-z0-9][A-Za-z0-9._+-]*)?")   # a series' feed directory (spec path, manifest)
CVE_STATUSES = ("affected", "under_investigation", "fixed", "not_affected")   # VEX states, as SPDX 3 and cve-check
CHANNELS = "channels/"    # builds for testers: a channel's content is replaced by the next one (channel.py)
CHANNEL_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,30}$")


def check_channel(name: str) -> str:
    if not CHANNEL_NAME.fullmatch(name or ""):
        from .errors import BindistroError
        raise BindistroError(f"channel name {name!r}: lower-case letters, digits and -, at most 31")
    return name


def rewritten(rel: str) -> bool:
    """Whether a publish-tree path (relative to the top) may hold other bytes in a later generation."""
    name = rel.rsplit("/", 1)[-1]
    return (name in INDEXES or name in LISTINGS or name in {n.rsplit("/", 1)[-1] for v in FEED_SIGNATURES.values() for n in v}
            or rel.startswith(VIEWER) or rel.startswith(CHANNELS))


FEED_SIGNATURES = {"ipk": ("Packages.asc", "Packages.sig"), "deb": ("InRelease", "Release.gpg"),
                   "rpm": ("repodata/repomd.xml.asc",)}


def shared(fields: dict) -> dict:
    """The same control data with its keys and short values shared with every other package's: a
    world's candidate holds 100,000 of these, and one unpickled or decoded from JSON has its own
    copy of every key ("Package", "Architecture", ...) and of every common value."""
    return {sys.intern(k): sys.intern(v) if type(v) is str and len(v) <= 64 else v for k, v in fields.items()}


@dataclass
class Artifact:
    path: str            # where it was found, relative to the staged directory
    kind: str
    sha256: str
    size: int
    md5: str = ""
    format: str | None = None   # ipk | rpm | deb for packages
    name: str | None = None
    version: str | None = None  # exactly the index's Version field
    arch: str | None = None
    meta: dict = field(default_factory=dict)  # control fields for packages, machine for images, ...

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    def to_dict(self) -> dict:
        return asdict(self)

    def but(self, **fields) -> "Artifact":
        """A copy with `fields` changed: dataclasses.replace, without its look-up of the fields and
        its __init__ call for each of the 100,000s of rows a release copies (~3x as fast)."""
        new = object.__new__(Artifact)
        new.__dict__ = {**self.__dict__, **fields}
        return new


@dataclass
class Candidate:
    id: int
    source: str
    created: str
    artifacts: list[Artifact]
    warnings: list[str] = field(default_factory=list)

    def packages(self) -> list[Artifact]:
        return [a for a in self.artifacts if a.kind == PACKAGE]


@dataclass
class Release:
    name: str
    seq: int
    candidate: int
    created: str
    eol: str | None = None
    series: str | None = None      # None: the spec's first series (or the only line of releases)
