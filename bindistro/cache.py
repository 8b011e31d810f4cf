"""The project's cache outside the repository: tools built by scripts/ (opkg) and the sample's boot
inputs. BINDISTRO_CACHE moves it; the default follows XDG."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    base = os.environ.get("BINDISTRO_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                               os.path.expanduser("~/.cache"), "bindistro")
    return Path(base)
