"""Progress bars for long work, on stderr and only when it is a terminal (so --json stays clean)."""
from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from contextlib import contextmanager

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


@contextmanager
def counter(label: str, total: int):
    """A bar advanced by hand (`advance(n)`), for work done elsewhere (worker processes)."""
    if not sys.stderr.isatty() or total < 20:
        yield lambda n=1: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=_console, transient=True) as p:
        t = p.add_task(label, total=total)
        yield lambda n=1: p.advance(t, n)
