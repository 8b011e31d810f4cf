"""`bindistro feed index|check`: work on any feed directory, an OE deploy directory included."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import BadInput, Problem
from .model import FEED_SIGNATURES
from .formats import FORMATS, SUFFIXES, Format
from .formats.base import (Indexed, PackageError, PackageInfo, compare_with_index, index_entries,
                           scan_files)
from .progress import counter, progress
from .store.objects import hash_file


def detect_format(feed_dir: Path) -> Format:
    """The format most package files in `feed_dir` have (ipk and deb share index names)."""
    counts = dict.fromkeys(FORMATS, 0)
    suffixes = {x: name for name, x in SUFFIXES.items()}
    for _dirpath, _dirs, names in os.walk(feed_dir):      # one walk, not a glob per format
        for n in names:
            fmt = suffixes.get(n[-4:])          # (every suffix is 4 characters; splitext was a third of the walk)
            if fmt:
                counts[fmt] += 1
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
    index_ok = False
    stamps = fmt.read_stamps(feed_dir)
    files = scan_files(fmt, feed_dir)
    base = str(feed_dir)
    now = {rel: fmt.file_stamp(f"{base}/{rel}") for rel in files}      # (a str: 20,000 of them)
    if stamps:
        # every package file and the index itself as the last index left them: nothing to do
        me = fmt.index_stamp_name(all_versions, checksums)
        try:
            index_ok = stamps.pop(me, None) == fmt.index_stamp(feed_dir)
        except OSError:
            index_ok = False
        if index_ok and stamps == now:
            return [], 0, len(files)
    texts: dict[str, str] = {}
    if stamps and fmt.REUSES_INDEX:
        for idx in fmt.find_indexes(feed_dir):
            if fmt.index_dir(idx) == feed_dir:
                # the index as we wrote it with these options: its kept stanzas are copied, not rendered
                got = fmt.index_texts(idx) if index_ok else None
                if got is not None:
                    old = {e.filename: e for e, _ in got}
                    texts = {e.filename: t for e, t in got}
                else:
                    old = {e.filename: e for e in fmt.read_index(idx)}
    items: list[Indexed | None] = []
    todo: list[tuple[int, str, int]] = []
    for rel in files:
        stamp = now[rel]
        e = old.get(rel)
        if e and stamps.get(rel) == stamp and all(c in e.sums for c in checksums):
            info = PackageInfo(e.name, e.version, e.arch, e.fields)
            items.append(Indexed(rel, info, e.size, e.sums.get("md5", ""), e.sums.get("sha256", ""), stamp,
                                 texts.get(rel)))
            continue
        todo.append((len(items), rel, stamp))
        items.append(None)
    # new or changed files: hashed and read in worker processes (ingest.py), each once
    from .ingest import Job, ingest_all
    with counter(f"indexing {feed_dir.name or feed_dir}", len(todo)) as advance:
        results = ingest_all([Job(p, fmt.name, None, False, os.path.getsize(p)) for _, rel, _ in todo
                              for p in [f"{feed_dir}/{rel}"]], feed_dir, advance)
    bad = [Problem(str(feed_dir / rel), m) for (_, rel, _), r in zip(todo, results) for m in r.problems]
    if bad:
        raise BadInput(bad)
    for (n, rel, stamp), r in zip(todo, results):
        items[n] = Indexed(rel, r.info, r.size, r.md5, r.sha256, stamp)
    read, reused = len(todo), len(items) - len(todo)
    written = fmt.write_index(feed_dir, items, all_versions, checksums)
    if not fmt.OPKG_STAMPS:
        written.append(fmt.write_stamps(feed_dir, items, all_versions, checksums))
    return written, read, reused


def signature_problems(fmt: Format, feed_dir: Path, keys: bytes | None) -> list[Problem]:
    """The index signature of a feed, checked when the feed has one (with fsck's checks)."""
    present = [n for n in FEED_SIGNATURES[fmt.name] if (feed_dir / n).exists()]
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
        sha, md5, size = hash_file(path, md5=True)
        sums[rel] = (sha, md5, size)
        try:
            info = fmt.read(path, deep=True)
            names[rel] = (info.name, info.version, info.arch)
        except PackageError as e:
            problems += [Problem(str(path), m) for m in e.problems]
    problems += compare_with_index(fmt, feed_dir, entries, sums, names)
    problems += signature_problems(fmt, feed_dir, keys)
    return problems, len(files)
