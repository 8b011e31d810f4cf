"""How many processes to share work out to. A worker is forked, and a fork costs the parent its page
tables and copy-on-write faults afterwards (~50 ms for a 150 MB Python process here, more the
larger it is): a small candidate's files are done sooner in this process.
BINDISTRO_WORKERS=N sets the number (1: never fork), as BB_NUMBER_THREADS does for bitbake."""
from __future__ import annotations

import os

from .errors import BindistroError

ENV = "BINDISTRO_WORKERS"
FORK_SECONDS = 0.05         # a worker's fork, start and the faults it causes, per worker


def cores(cap: int = 8) -> int:
    """Processes to run at once when starting them costs this one nothing (tools it runs and waits
    on): one per core, at most `cap`, or BINDISTRO_WORKERS."""
    if (v := os.environ.get(ENV)) is not None:
        if not v.isdigit() or int(v) < 1:
            raise BindistroError(f"{ENV}={v!r}: a number of processes (1: none forked)")
        return int(v)
    return min(os.cpu_count() or 1, cap)


def count(work_seconds: float, cap: int = 8) -> int:
    """Worker processes for an estimated `work_seconds` of CPU work: one per core (at most `cap`)
    when the share they take off this process outweighs forking them, else 1 (work here)."""
    n = cores(cap)
    if os.environ.get(ENV) is not None:
        return n
    return n if n > 1 and work_seconds * (1 - 1 / n) > 2 * FORK_SECONDS * n else 1
