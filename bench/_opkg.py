"""opkg-make-index as every bench runs it: the reference for `feed index` of ipk. Debian 12 has no
opkg-utils (a build has opkg-utils-native): the benches run it when it is on PATH."""
from __future__ import annotations

import shutil
from pathlib import Path


def present() -> bool:
    return shutil.which("opkg-make-index") is not None


def make_index(feed: Path) -> list[str]:
    """The command indexing `feed` into feed/Packages with both sums, as bindistro's index has them
    (its default is md5 alone)."""
    return ["opkg-make-index", "--checksum", "md5", "--checksum", "sha256", "-p", str(feed / "Packages"), str(feed)]
