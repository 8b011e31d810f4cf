"""The cumulative feeds as libsolv repos kept between verify runs, one file per (format, feed).

The solver gates' pools hold every package a series ever published. Building them from the
store's control data grew with each release (at 20,000 names, decoding 209,000 rows was half of
the closure and upgrade gates). Published files never change, so a feed's repo after release N is
its repo after N-1 plus what N published first: a run decodes only what the releases since the
last run added. A file is named by a digest of the releases it holds (name, candidate, time), so
a different store or history never matches it; one that is missing or unreadable is rebuilt.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from ..model import Release
from ..solve import Pool

VERSION = "1"       # bump when solve.Pool's text of a package changes: older files are not read


def _digest(*parts) -> str:
    return hashlib.blake2b(json.dumps(parts).encode(), digest_size=16).hexdigest()


class History:
    """The repos of one line of releases (`rels`, oldest first) under `top`."""

    def __init__(self, store, rels: list[Release], top: Path):
        self.store, self.rels, self.top = store, rels, top

    def load(self, pool: Pool, fmt: str, feeds: list[str]) -> dict[str, dict[str, str]]:
        """Add a repo of each feed of `feeds` (of `fmt`) to `pool`; return, per feed, each package it
        holds as sha256 -> file name."""
        held = {}
        for feed in feeds:
            path, held[feed] = self._current(fmt, feed)
            if path is None:
                continue
            try:
                pool.add_solv(feed, path)
            except OSError:     # damaged, or replaced by a run that saw a newer release: made again
                path.unlink(missing_ok=True)
                path, held[feed] = self._current(fmt, feed)
                pool.add_solv(feed, path)
        return held

    def _current(self, fmt: str, feed: str) -> tuple[Path | None, dict[str, str]]:
        """The file of `feed`'s repo after every release of the line (None: nothing published),
        written from the newest one kept and what the releases since published."""
        d = self.top / _digest(VERSION, fmt, feed)
        keys = [_digest(VERSION, fmt, feed)]
        for r in self.rels:
            keys.append(_digest(keys[-1], r.name, r.candidate, r.created))
        n = len(keys) - 1
        i, held = 0, {}
        for k in range(n, 0, -1):       # the newest file this history extends
            got = _read_index(d / f"{keys[k]}.idx")
            if got is not None and (d / f"{keys[k]}.solv").is_file():
                i, held = k, got
                break
        if i == n:
            return (d / f"{keys[n]}.solv" if n else None), held
        scratch = Pool(fmt)
        try:
            repo = scratch.add_solv(feed, d / f"{keys[i]}.solv" if i else None)
        except OSError:                 # a damaged file: from the first release
            (d / f"{keys[i]}.idx").unlink(missing_ok=True)
            return self._current(fmt, feed)
        fresh = []      # (a file in two lines of releases is one package)
        for a in self.store.db.first_released([r.candidate for r in self.rels[i:]], fmt, feed):
            if a.sha256 not in held:
                held[a.sha256] = a.filename
                fresh.append(a)
        scratch.fill(repo, fresh)
        d.mkdir(parents=True, exist_ok=True)
        path = d / f"{keys[n]}.solv"
        _replace(d / f"{keys[n]}.idx", lambda p: p.write_text(json.dumps(held)))
        _replace(path, lambda p: Pool.write(repo, p))
        for old in d.iterdir():     # older histories (not another run's file being written)
            if old.stem != keys[n] and not old.name.startswith("."):
                old.unlink(missing_ok=True)
        return path, held


def _read_index(path: Path) -> dict[str, str] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _replace(path: Path, write) -> None:
    """`write(tmp)` then rename over `path`: a reader sees the old file or the whole new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
