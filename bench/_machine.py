"""This machine's speed at a moment, to set a timing beside. It drifts (here, by up to a factor of two
within the hour, with no change of work), so a ratio of two timings taken minutes apart measures the
machine as much as the code: a bench divides each timing by this, measured just before it."""
from __future__ import annotations

import hashlib
import statistics
import time

_DATA = bytes(range(256)) * (1 << 14)       # 4 MB


def reference() -> float:
    """Seconds of a fixed mix of interpreter work (dicts, strings, a sort) and hashing, as a release
    is: the median of three runs (~0.1 s in all)."""
    runs = []
    for _ in range(3):
        t = time.perf_counter()
        d = {f"k{i}": str(i) * 3 for i in range(40000)}
        sorted(d.items(), key=lambda kv: kv[1])
        hashlib.sha256(_DATA).digest()
        hashlib.md5(_DATA).digest()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)
