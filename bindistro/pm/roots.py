"""Installed roots of earlier releases, kept to be copied instead of installed again.

Every verify installs each earlier release's image package set into a fresh root before it upgrades
it, and every later candidate does the same install again: the same package files, the same package
manager, the same result. With qemu-user running a foreign machine's maintainer scripts that install
is most of a path's time. So a root is kept once its install succeeded, named by everything the
install reads — the package files' sha256, format, architectures, the package manager's binaries and
the code that drives them — and a later path starts from a copy (`cp -a`: the path changes its copy;
a kept root is never written again). A failed install is never kept: it runs, and fails, each time.

Where: `BINDISTRO_PM_ROOTS` (a directory, or `off`), else `pm-roots/` in the project's cache dir.
The least recently used roots beyond KEEP roots or KEEP_BYTES are removed.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from functools import cache
from pathlib import Path

from ..cache import cache_dir

KEEP = 64               # ~one verify's paths of 10 earlier releases × 3 formats × 2 machines
KEEP_BYTES = 4 << 30    # and at most this much disk: a real image's root is far bigger than the sample's


@cache
def _code() -> str:
    # the modules that install and configure roots: after a change to them, roots get other names
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in ("__init__.py", "upgrade.py", "roots.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()


def _stamp(path: str | None) -> list:
    p = shutil.which(path) if path else None
    if not p:
        return [path, None]
    st = os.stat(p)
    return [os.path.realpath(p), st.st_size, st.st_mtime_ns]


def key(fmt: str, archs: list[str], cpu: str, tools: list[str | None], packages: list[tuple[str, str]]) -> str:
    """The name of the root that installing `packages` ((file name, sha256), in install order)
    with `tools` (the package manager's binaries) for `archs` on `cpu` gives."""
    binfmt = ""
    if cpu != os.uname().machine:
        with contextlib.suppress(OSError):
            binfmt = Path(f"/proc/sys/fs/binfmt_misc/qemu-{cpu}").read_text()   # names the interpreter
    interp = next((ln.split()[1] for ln in binfmt.splitlines() if ln.startswith("interpreter ")), None)
    data = [_code(), fmt, list(archs), cpu, [_stamp(t) for t in [*tools, interp]], list(packages)]
    return hashlib.sha256(json.dumps(data).encode()).hexdigest()


class Roots:
    def __init__(self, base: Path | None):
        self.base = base

    @classmethod
    def default(cls) -> Roots:
        env = os.environ.get("BINDISTRO_PM_ROOTS")
        if env == "off":
            return cls(None)
        return cls(Path(env) if env else cache_dir() / "pm-roots")

    def restore(self, name: str, root: Path) -> bool:
        """Copy the kept root `name` to `root` (which must not exist yet); False when there is none
        or it was pruned while being copied, and `root` is then left absent."""
        if self.base is None:
            return False
        kept = self.base / name
        if not (kept / "root").is_dir():
            return False
        r = subprocess.run(["cp", "-a", "--reflink=auto", str(kept / "root"), str(root)], capture_output=True)
        # pruning renames an entry before removing it: still there after the copy = copied whole
        if r.returncode != 0 or not kept.is_dir():
            shutil.rmtree(root, ignore_errors=True)
            return False
        with contextlib.suppress(OSError):
            os.utime(kept)          # recently used: pruned last
        return True

    def keep(self, name: str, root: Path) -> None:
        """Keep a copy of `root`, just installed, as `name`. A cache: any failure only means it is
        not kept (a full disk, a second process keeping the same root first)."""
        if self.base is None or (self.base / name).is_dir():
            return
        try:
            self.base.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".new-", dir=self.base))
        except OSError:
            return
        try:
            r = subprocess.run(["cp", "-a", "--reflink=auto", str(root), str(tmp / "root")], capture_output=True)
            if r.returncode == 0:
                (tmp / "bytes").write_text(str(_disk_usage(tmp / "root")))
                os.rename(tmp, self.base / name)        # whole or not at all
        except OSError:
            pass
        shutil.rmtree(tmp, ignore_errors=True)
        self._prune()

    def _prune(self) -> None:
        with contextlib.suppress(OSError):
            entries = list(self.base.iterdir())
            kept = sorted(((p.stat().st_mtime, p) for p in entries if not p.name.startswith(".")), reverse=True)
            total, drop = 0, []
            for i, (_, p) in enumerate(kept):       # newest first: keep while within both bounds
                with contextlib.suppress(OSError, ValueError):
                    total += int((p / "bytes").read_text())
                if i >= KEEP or total > KEEP_BYTES:
                    drop.append(p)
            for p in drop:
                gone = p.with_name(f".old-{p.name}")
                os.rename(p, gone)          # first out of reach of restore (see there)
                shutil.rmtree(gone, ignore_errors=True)
            for p in entries:               # left by a process killed while keeping or pruning
                if p.name.startswith((".new-", ".old-")) and time.time() - p.stat().st_mtime > 3600:
                    shutil.rmtree(p, ignore_errors=True)


def _disk_usage(root: Path) -> int:
    total = 0
    for d, _dirs, files in os.walk(root):
        for f in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(d, f)).st_blocks * 512
    return total
