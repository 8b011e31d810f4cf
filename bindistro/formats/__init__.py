"""Package formats as plug-ins: each implements formats.base.Format."""
from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping

from .base import Format

SUFFIXES = {"ipk": ".ipk", "rpm": ".rpm", "deb": ".deb"}


class _Formats(Mapping):
    """name -> its Format, its module imported when first asked for (rpm's loads createrepo_c,
    deb's python-debian: a third of indexing an unchanged ipk feed)."""

    def __init__(self):
        self._made: dict[str, Format] = {}

    def __getitem__(self, name: str) -> Format:
        if name not in self._made:
            if name not in SUFFIXES:
                raise KeyError(name)
            mod = importlib.import_module(f"{__name__}.{name}")
            self._made[name] = getattr(mod, name.capitalize())()
        return self._made[name]

    def __iter__(self) -> Iterator[str]:
        return iter(SUFFIXES)

    def __len__(self) -> int:
        return len(SUFFIXES)


FORMATS: Mapping[str, Format] = _Formats()


def get(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown package format {name!r} (known: {', '.join(FORMATS)})") from None


def by_suffix(path: str) -> Format | None:
    for name, suffix in SUFFIXES.items():
        if path.endswith(suffix):
            return FORMATS[name]
    return None
