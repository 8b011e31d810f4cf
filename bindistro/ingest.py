"""Reading a build's new files: each is hashed (sha256, and md5 for packages: their feeds list both) from the
bytes that go into the store's incoming directory (or that the store already holds as that object),
and a package's control data is read from those bytes, so what was hashed is what was parsed is what
will be stored. Every file is read once. Payloads are not unpacked here (the `payload` gate does that, once
per object). Files are spread over worker processes, one per core, when there is enough to read to pay
for forking them (workers.py): hashing releases the GIL, parsing control data does not.
"""
from __future__ import annotations

import hashlib
import os
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from .formats import get as get_format
from .formats.base import PackageError, PackageInfo
from .model import shared
from .store.objects import copy_hashing, hash_file, object_name, write_new
from . import workers as workersmod

IN_MEMORY = 4 << 20         # files up to this size are hashed in memory before anything is written
# an estimate of the work, to decide whether to fork workers for it (measured here: control data
# parsed from a package's bytes ~0.3 ms; sha256 + md5 + the copy ~400 MB/s)
FILE_SECONDS = 0.3e-3
READ_RATE = 400e6


@dataclass
class Job:
    path: str
    fmt: str | None            # package format, None for other artifacts
    known: tuple | None        # (sha256, md5) when the file's stat matches what was hashed before
    copy: bool                 # copy into the incoming dir; False with no known sums: hash only
    size: int = 0              # its size when it was listed (for the estimate of the work only)


@dataclass
class Result:
    sha256: str = ""
    md5: str = ""
    size: int = 0
    stat: tuple = ()           # (size, mtime_ns, inode) before reading
    tmp: str | None = None     # the copy in the incoming directory
    info: PackageInfo | None = None
    problems: list[str] = field(default_factory=list)
    stored: bool = False       # info's control data is package_meta's row for this file (not read now)


def _read_new(path: str, size: int, tmp: str, objects: str | None, md5: bool) -> tuple[str, str, str, int, bytes | None]:
    """(file to parse, sha256, md5, size, its bytes when they were read into memory) of a file not
    known by its stat. A small file is read into memory and hashed; it is written to `tmp` only
    when the store lacks its object, and parsed from the bytes that were hashed either way (the
    object is those bytes; no file is opened again to parse them): a new build directory holding
    mostly released packages writes and deletes nothing for them. A large one (an image, a kernel)
    is copied to `tmp` as it is hashed, in one read, and the copy dropped when the store has the
    object already (a second full read to avoid that write cost more than the write: most large
    files are new). (A file that changes meanwhile is caught by the caller's stat check.) `md5`:
    only packages need one (their feeds list it); "" for the others."""
    def stored(sha: str) -> str | None:
        p = objects and os.path.join(objects, object_name(sha))
        return p if p and os.path.exists(p) else None

    if size > IN_MEMORY:
        # one pass: copied while hashed (the copy is what was hashed); dropped when the store has it
        sums = copy_hashing(Path(path), Path(tmp), sync=False, md5=md5)
        if have := stored(sums[0]):
            os.unlink(tmp)
            return (have, *sums, None)
        return (tmp, *sums, None)
    data, sha, m = _read_small(path, size, md5)
    if have := stored(sha):
        return have, sha, m, len(data), data
    write_new(tmp, data)
    return tmp, sha, m, len(data), data


def _read_small(path: str, size: int, md5: bool) -> tuple[bytes, str, str]:
    """(bytes, sha256, md5 or "") of a file of `size` bytes at most IN_MEMORY, read whole."""
    with open(path, "rb") as f:
        data = f.read(size + 1)      # (not IN_MEMORY + 1: a buffer that large is an mmap and its faults per file)
    return data, hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest() if md5 else ""


def ingest(job: Job, incoming: str, n: int, objects: str | None = None) -> Result:
    st = os.stat(job.path)
    res = Result(stat=(st.st_size, st.st_mtime_ns, st.st_ino))
    read_from, data = job.path, None
    if job.known and not job.copy:
        res.sha256, res.md5 = job.known
        res.size = st.st_size
    elif not job.copy:
        got = _read_small(job.path, st.st_size, bool(job.fmt)) if st.st_size <= IN_MEMORY else None
        if got and len(got[0]) <= st.st_size:
            # (`feed index`): hashed and parsed from the same bytes, read once
            data, res.sha256, res.md5 = got
            res.size = len(data)
        else:       # a large file, or one that grew meanwhile: hashed whole, in chunks
            res.sha256, res.md5, res.size = hash_file(Path(job.path), md5=bool(job.fmt))
    else:
        tmp = os.path.join(incoming, f"{n}")
        read_from, res.sha256, res.md5, res.size, data = _read_new(job.path, st.st_size, tmp, objects, bool(job.fmt))
        res.tmp = tmp if read_from == tmp else None
        after = os.stat(job.path)
        if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns) or res.size != st.st_size:
            res.problems.append("changed while it was staged; stage again when the build is done")
            return res
    if job.fmt:
        try:
            res.info = get_format(job.fmt).read_control(Path(read_from), os.path.basename(job.path), data)
        except PackageError as e:
            res.problems += e.problems
    return res


def _batch(jobs: list[tuple[int, Job]], incoming: str, objects: str | None) -> list[tuple[int, Result]]:
    return [(n, ingest(j, incoming, n, objects)) for n, j in jobs]


def _kept(r: Result) -> Result:
    if r.info is not None:
        r.info.fields = shared(r.info.fields)
    return r


def ingest_all(jobs: list[Job], incoming: Path, progress=None, objects: Path | None = None,
               alongside=nullcontext) -> list[Result]:
    """Results in the order of `jobs`; `progress(k)` is called as k more are done. `objects`: the
    store's local object directory (an object there is not copied again). `alongside()`: a context
    entered while the files are read, once the workers are forked (a thread it starts must not be
    running at a fork: the child would inherit the locks it holds)."""
    objs = str(objects) if objects else None
    out: list[Result | None] = [None] * len(jobs)
    numbered = list(enumerate(jobs))
    read = sum(j.size for j in jobs if j.copy or not j.known)
    workers = workersmod.count(len(jobs) * FILE_SECONDS + read / READ_RATE)
    if workers < 2:
        with alongside():
            for n, j in numbered:
                out[n] = _kept(ingest(j, str(incoming), n, objs))
                if progress:
                    progress(1)
        return out
    # fork: the workers need nothing but these arguments, and start in milliseconds. They end with
    # the step: a worker kept would hold every descriptor it was forked with (the store's shared
    # lock among them, which a failed stage then waits forever to take exclusively)
    import multiprocessing       # (~11 ms: a feed's few new files are read here, without them)
    from concurrent.futures import ProcessPoolExecutor
    size = max(8, len(jobs) // (workers * 16))
    batches = [numbered[i:i + size] for i in range(0, len(numbered), size)]
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as ex:
        # (map submits every batch: with "fork" the first submit forks all the workers)
        results = ex.map(_batch, batches, [str(incoming)] * len(batches), [objs] * len(batches))
        with alongside():
            for done in results:
                for n, r in done:
                    out[n] = _kept(r)
                if progress:
                    progress(len(done))
    return out
