"""`bindistro feed index|check`: work on any feed directory, an OE deploy directory included."""
from __future__ import annotations

from pathlib import Path

from .errors import Problem
from .formats import FORMATS, Format
from .formats.base import (Indexed, PackageError, PackageInfo, compare_with_index, index_entries,
                           scan_files, stamp_of)
from .progress import progress
from .store.objects import hash_file


def detect_format(feed_dir: Path) -> Format:
    """The format most package files in `feed_dir` have (ipk and deb share index names)."""
    counts = {f.name: sum(1 for _ in feed_dir.rglob(f"*{f.suffix}")) for f in FORMATS.values()}
    best = max(counts, key=counts.get)
    if counts[best]:
        return FORMATS[best]
    for f in FORMATS.values():
        if f.find_indexes(feed_dir):
            return f
    raise ValueError(f"{feed_dir}: no packages or index of a known format (ipk, rpm, deb)")


def index(fmt: Format, feed_dir: Path, all_versions: bool = False,
          checksums: tuple[str, ...] = ("md5", "sha256")) -> tuple[list[Path], int, int]:
    """Index `feed_dir` in place. Files whose stamp matches the old index are not re-read.

    Returns (files written, packages read, packages reused).
    """
    old = {}
    stamps = fmt.read_stamps(feed_dir)
    if stamps:
        for idx in fmt.find_indexes(feed_dir):
            if fmt.index_dir(idx) == feed_dir:
                old = {e.filename: e for e in fmt.read_index(idx)}
    items, read, reused = [], 0, 0
    files = scan_files(fmt, feed_dir)
    for rel in progress(files, f"indexing {feed_dir.name or feed_dir}"):
        path = feed_dir / rel
        stamp = stamp_of(path)
        e = old.get(rel)
        if e and stamps.get(rel) == stamp and all(c in e.sums for c in checksums):
            info = PackageInfo(e.name, e.version, e.arch, e.fields)
            items.append(Indexed(rel, info, e.size, e.sums.get("md5", ""), e.sums.get("sha256", ""), stamp))
            reused += 1
            continue
        info = fmt.read(path, deep=False)
        sha, md5, size = hash_file(path)
        items.append(Indexed(rel, info, size, md5, sha, stamp))
        read += 1
    return fmt.write_index(feed_dir, items, all_versions, checksums), read, reused


SIGNATURES = {"ipk": ("Packages.asc", "Packages.sig"), "deb": ("InRelease", "Release.gpg"),
              "rpm": ("repodata/repomd.xml.asc",)}


def signature_problems(fmt: Format, feed_dir: Path, keys: bytes | None) -> list[Problem]:
    """The index signature of a feed, checked when the feed has one (with fsck's checks)."""
    present = [n for n in SIGNATURES[fmt.name] if (feed_dir / n).exists()]
    if not present:
        return []
    if keys is None:
        return [Problem(str(feed_dir / present[0]), "signed, but not checked: give the public key with --keyring",
                        severity="warning")]
    from . import fsck
    from .keys import SignatureChecker
    rep = fsck.Report()
    getattr(fsck.SIGNATURE_CHECKS, fmt.name)(feed_dir, rep, fsck.Hashes(), SignatureChecker([keys]))
    return rep.problems


def check(fmt: Format, feed_dir: Path, keys: bytes | None = None) -> tuple[list[Problem], int]:
    """Every problem of a feed: unreadable packages, disagreements with its index, and (when the
    feed is signed) its index signature, checked with `keys`."""
    entries, problems = index_entries(fmt, feed_dir)
    if not fmt.find_indexes(feed_dir):
        problems.append(Problem(str(feed_dir), f"no {fmt.name} index found"))
    sums, names = {}, {}
    files = scan_files(fmt, feed_dir)
    for rel in progress(files, f"checking {feed_dir.name or feed_dir}"):
        path = feed_dir / rel
        sha, md5, size = hash_file(path)
        sums[rel] = (sha, md5, size)
        try:
            info = fmt.read(path, deep=True)
            names[rel] = (info.name, info.version, info.arch)
        except PackageError as e:
            problems += [Problem(str(path), m) for m in e.problems]
    problems += compare_with_index(fmt, feed_dir, entries, sums, names)
    problems += signature_problems(fmt, feed_dir, keys)
    return problems, len(files)
