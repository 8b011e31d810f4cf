"""Progress bars for long work, on stderr and only when it is a terminal (so --json stays clean;
rich is imported only then)."""
from __future__ import annotations

import resource
import sys
import time
from collections.abc import Iterable, Sequence
from contextlib import contextmanager


def _bar():
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=Console(stderr=True), transient=True)


def progress(items: Sequence | Iterable, label: str, total: int | None = None):
    if total is None:
        items = list(items) if not isinstance(items, Sequence) else items
    if not sys.stderr.isatty() or (total or len(items)) < 20:
        yield from items
        return
    with _bar() as p:
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
    with _bar() as p:
        t = p.add_task(label, total=total)
        yield lambda n=1: p.advance(t, n)


class Laps:
    """Seconds per step of a long command, for its --json report (`laps("index")` ends that step),
    and the process's peak RSS in MB when each step ended (the step where it rises set it)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        # CPU seconds of this process and of the workers it waited for: unlike wall time, not
        # stretched when the machine's CPUs are busy elsewhere
        self.cpu: dict[str, float] = {}
        self.peak_mb: dict[str, int] = {}
        self._t, self._cpu = time.perf_counter(), _cpu()

    def __call__(self, step: str) -> None:
        now, cpu = time.perf_counter(), _cpu()
        self.seconds[step] = round(self.seconds.get(step, 0) + now - self._t, 3)
        self.cpu[step] = round(self.cpu.get(step, 0) + cpu - self._cpu, 3)
        self.peak_mb[step] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        self._t, self._cpu = now, cpu


def _cpu() -> float:
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
