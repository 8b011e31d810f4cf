"""SAMPLE DATA: built package files kept by what they were built from.

The generator is deterministic (fixed times, SOURCE_DATE_EPOCH, sorted archives), so the same inputs
give the same bytes. Releases of the sample share ~90 % of their packages and the tests build many
variants of the same releases: a package is built once per machine and copied after that. The key
covers the writer's inputs (the package with its recipe and files, the epoch), the writers' own
source and the build tools' versions; a change to any of them builds afresh.
"""
from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import pickle
import shutil
import subprocess
import tempfile
from pathlib import Path

from bindistro.cache import cache_dir

WRITERS = ("ipkbuild.py", "rpmbuild.py", "debbuild.py", "packages.py", "clib.py", "pkgcache.py", "world.py")
TOOLS = (["rpmbuild", "--version"], ["dpkg-deb", "--version"], ["ar", "--version"])


@functools.cache
def _salt() -> bytes:
    h = hashlib.sha256()
    here = Path(__file__).parent
    for name in WRITERS:
        h.update((here / name).read_bytes())
    for cmd in TOOLS:
        try:
            h.update(subprocess.run(cmd, capture_output=True).stdout[:200])
        except OSError:
            h.update(b"missing")
    return h.digest()


def root() -> Path:
    return cache_dir() / "sample-packages"


def warm_stamp() -> Path:
    """Made by scripts/setup.sh once it has built the sample's packages with these writers."""
    return root() / f".built-{_salt().hex()[:16]}"


def key(writer: str, inputs) -> str:
    h = hashlib.sha256(_salt())
    h.update(writer.encode())
    h.update(pickle.dumps(inputs, protocol=5))
    return h.hexdigest()


def lookup(writer: str, inputs) -> Path | None:
    """The cache directory holding what `writer` made from `inputs`, if it was made before."""
    if os.environ.get("BINDISTRO_SAMPLE_NOCACHE"):
        return None
    return _hit(key(writer, inputs))


def _hit(k: str) -> Path | None:
    hit = root() / k[:2] / k
    return hit if hit.is_dir() else None


# deploy dir -> the same dir of the build before (write_deploy moves it aside): a package that did
# not change keeps its file (inode, mtime), as in an OE build, where an unchanged package's
# do_package_write task does not run again
REUSE: dict[Path, Path] = {}


def copy_out(hit: Path, dest: Path) -> list[Path]:
    out = []
    old_dir = REUSE.get(dest)
    for f in sorted(hit.iterdir()):
        old = old_dir / f.name if old_dir else None
        st = f.stat()
        if old is not None and old.is_file() and (old.stat().st_size, old.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns):
            os.replace(old, dest / f.name)
        else:
            shutil.copy2(f, dest / f.name)
        out.append(dest / f.name)
    return out


def keep(writer: str, inputs, files: list[Path], k: str | None = None) -> None:
    """Keep `files` as what `writer` made from `inputs` (`k`: their key, when computed already)."""
    if os.environ.get("BINDISTRO_SAMPLE_NOCACHE"):
        return
    k = k or key(writer, inputs)
    hit = root() / k[:2] / k
    hit.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=hit.parent))
    for f in files:
        shutil.copy2(f, tmp / f.name)
    try:
        tmp.rename(hit)            # another process may have kept the same build meanwhile
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)


@contextlib.contextmanager
def _one_builder(k: str):
    """One process builds what key `k` names while the others wait for it: with a cold cache, test
    workers and the demo build the same releases at the same time (each built everything once)."""
    lock = root() / k[:2] / f"{k}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield


def built(writer: str, inputs, dest: Path, build) -> list[Path]:
    """The files `build()` writes into `dest` for these inputs: from the cache when they were built
    before, else built now and kept."""
    if os.environ.get("BINDISTRO_SAMPLE_NOCACHE"):
        return _as_list(build())
    k = key(writer, inputs)         # pickles the package with its files: once
    hit = _hit(k)
    if hit is not None:
        return copy_out(hit, dest)
    with _one_builder(k):
        hit = _hit(k)               # built by another process while this one waited
        if hit is not None:
            return copy_out(hit, dest)
        out = _as_list(build())
        keep(writer, inputs, out, k)
    return out


def derived(writer: str, data: bytes, make) -> bytes:
    """`make(data)` (a pure function of the bytes, e.g. gzip at level 9 of an initramfs: slow, and
    the same for most builds), kept by the hash of `data`."""
    if os.environ.get("BINDISTRO_SAMPLE_NOCACHE"):
        return make(data)
    k = key(writer, hashlib.sha256(data).digest())
    hit = root() / k[:2] / f"{k}.bin"
    try:
        return hit.read_bytes()
    except FileNotFoundError:
        pass
    with _one_builder(k):
        if hit.exists():
            return hit.read_bytes()
        out = make(data)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=hit.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(out)
        os.replace(tmp, hit)
    return out


def _as_list(x) -> list[Path]:
    return list(x) if isinstance(x, (list, tuple)) else [x]
