"""The worker processes of one bindistro process: forked on first use, one per core (at most 8), and
kept for the process's life. Stage (hashing and control data) and the payload gate (unpacking) both
spread files over them; forking costs ~7 ms per 100 MB of the parent (page tables), paid once
instead of per step in a process that runs several (demo, release running its gates, CI jobs).
Work functions get everything they need as arguments: a worker forked early never sees later
state of its parent.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

_pool: ProcessPoolExecutor | None = None
_owner = 0          # the pid that made _pool: a forked child must not use its parent's workers


def count() -> int:
    return min(os.cpu_count() or 1, 8)


def pool() -> ProcessPoolExecutor:
    global _pool, _owner
    if _pool is None or _owner != os.getpid() or getattr(_pool, "_broken", False):
        # fork: start in milliseconds, no re-import (the functions come from this process's modules)
        _pool = ProcessPoolExecutor(count(), mp_context=multiprocessing.get_context("fork"))
        _owner = os.getpid()
    return _pool


def _forget() -> None:
    global _pool
    _pool = None        # the child's copy of the parent's executor: its threads did not survive the fork


os.register_at_fork(after_in_child=_forget)
