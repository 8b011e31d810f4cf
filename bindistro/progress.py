"""Progress bars for long work, on stderr and only when it is a terminal (so --json stays clean)."""
from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

_console = Console(stderr=True)


def progress(items: Sequence | Iterable, label: str, total: int | None = None):
    if total is None:
        items = list(items) if not isinstance(items, Sequence) else items
    if not sys.stderr.isatty() or (total or len(items)) < 20:
        yield from items
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=_console, transient=True) as p:
        t = p.add_task(label, total=total or len(items))
        for it in items:
            yield it
            p.advance(t)
