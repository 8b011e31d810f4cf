"""The project's cache outside the repository: tools built by scripts/ (opkg) and the sample's boot
inputs. BINDISTRO_CACHE moves it; the default follows XDG."""
from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path


def cache_dir() -> Path:
    base = os.environ.get("BINDISTRO_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                               os.path.expanduser("~/.cache"), "bindistro")
    return Path(base)


@functools.cache
def code_key() -> str:
    """Digest of bindistro's own sources: what is kept from one run for another (site documents,
    index stanzas) is a function of its inputs and of this."""
    h = hashlib.blake2b(digest_size=12)
    for p in sorted(Path(__file__).parent.rglob("*.py")):
        h.update(p.name.encode() + b"\0" + p.read_bytes())
    return h.hexdigest()
