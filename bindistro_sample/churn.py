"""SAMPLE DATA: cheap next candidates for publishing tests and benchmarks.

A deploy directory (tmp/deploy shape) holding the packages of an earlier sample build (hard links:
nothing is rebuilt) plus `count` small packages `churn-<i>` at version 1.<k>, every feed indexed as
OE's package index tasks would. Releasing one after another makes the cumulative feeds grow by
`count` packages per format each time, like a distro where that many packages change per release.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from .build import write_deploy
from .packages import File, Pkg
from .recipes import Recipe

FORMATS = ("ipk", "rpm", "deb")


def churn_packages(k: int, count: int, prefix: str = "churn") -> list[Pkg]:
    out = []
    for i in range(count):
        r = Recipe(pn=f"{prefix}-{i}", pv=f"1.{k}", summary=f"sample churn package {i}")
        out.append(Pkg(name=f"{prefix}-{i}", recipe=r, arch="all", section="misc",
                       description=f"sample churn package {i}",
                       files=[File(f"/usr/share/{prefix}/{i}", data=f"{prefix} {i} release {k}\n".encode())]))
    return out


def write_churn(out: Path, k: int, count: int, base: Path | None = None, formats=FORMATS,
                prefix: str = "churn") -> Path:
    """`out` becomes a deploy dir: `base`'s package files (hard links) + the churn packages of step k."""
    if base is not None:
        for fmt in formats:
            if (base / fmt).is_dir():
                shutil.copytree(base / fmt, out / fmt, copy_function=os.link,
                                ignore=shutil.ignore_patterns("Packages*", "Release", "repodata"))
    write_deploy(out, churn_packages(k, count, prefix), k, formats)
    return out
