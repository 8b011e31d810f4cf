"""Package formats as plug-ins: each implements formats.base.Format."""
from __future__ import annotations

from .base import Format
from .deb import Deb
from .ipk import Ipk
from .rpm import Rpm

FORMATS: dict[str, Format] = {"ipk": Ipk(), "rpm": Rpm(), "deb": Deb()}


def get(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown package format {name!r} (known: {', '.join(FORMATS)})") from None


def by_suffix(path: str) -> Format | None:
    for f in FORMATS.values():
        if path.endswith(f.suffix):
            return f
    return None
