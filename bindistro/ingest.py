"""Reading a build's new files once: each is hashed (sha256 and md5, both needed by the feeds) while
it is copied into the store's incoming directory, and a package's control data is read from that
copy, so what was hashed is what was parsed is what will be stored. Payloads are not unpacked here
(the `payload` gate does that, once per object). Files are spread over worker processes, one per
core: hashing releases the GIL, parsing control data does not.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .formats import get as get_format
from .formats.base import PackageError, PackageInfo
from .store.objects import copy_hashing, hash_file

PARALLEL_FROM = 64          # fewer files than this: a worker pool costs more than it saves


@dataclass
class Job:
    path: str
    fmt: str | None            # package format, None for other artifacts
    known: tuple | None        # (sha256, md5) when the file's stat matches what was hashed before
    copy: bool                 # copy into the incoming dir; False with no known sums: hash only


@dataclass
class Result:
    sha256: str = ""
    md5: str = ""
    size: int = 0
    stat: tuple = ()           # (size, mtime_ns, inode) before reading
    tmp: str | None = None     # the copy in the incoming directory
    info: PackageInfo | None = None
    problems: list[str] = field(default_factory=list)


def ingest(job: Job, incoming: str, n: int) -> Result:
    st = os.stat(job.path)
    res = Result(stat=(st.st_size, st.st_mtime_ns, st.st_ino))
    read_from = job.path
    if job.known and not job.copy:
        res.sha256, res.md5 = job.known
        res.size = st.st_size
    elif not job.copy:
        res.sha256, res.md5, res.size = hash_file(Path(job.path))
    else:
        res.tmp = os.path.join(incoming, f"{n}")
        res.sha256, res.md5, res.size = copy_hashing(Path(job.path), Path(res.tmp), sync=False)
        after = os.stat(job.path)
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns) or res.size != st.st_size:
            res.problems.append("changed while it was staged; stage again when the build is done")
            return res
        read_from = res.tmp
    if job.fmt:
        try:
            res.info = get_format(job.fmt).read_control(Path(read_from), os.path.basename(job.path))
        except PackageError as e:
            res.problems += e.problems
    return res


def _batch(jobs: list[tuple[int, Job]], incoming: str) -> list[tuple[int, Result]]:
    return [(n, ingest(j, incoming, n)) for n, j in jobs]


def ingest_all(jobs: list[Job], incoming: Path, progress=None) -> list[Result]:
    """Results in the order of `jobs`; `progress(k)` is called as k more are done."""
    out: list[Result | None] = [None] * len(jobs)
    numbered = list(enumerate(jobs))
    workers = min(os.cpu_count() or 1, 8)
    if len(jobs) < PARALLEL_FROM or workers < 2:
        for n, j in numbered:
            out[n] = ingest(j, str(incoming), n)
            if progress:
                progress(1)
        return out
    # fork: the workers need nothing but these arguments, and start in milliseconds
    size = max(8, len(jobs) // (workers * 16))
    batches = [numbered[i:i + size] for i in range(0, len(numbered), size)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as ex:
        for done in ex.map(_batch, batches, [str(incoming)] * len(batches)):
            for n, r in done:
                out[n] = r
            if progress:
                progress(len(done))
    return out
