"""Command line: one module per command group; this entry point only assembles them, and imports a
group's module when one of its commands runs (`feed index` of an unchanged feed is a tenth of a
second, about what importing every command's dependencies took).

Exit codes: 0 success; 1 bad input, a refused candidate, an environment fault or an internal error
(one line each, naming the file); 2 usage error; 130 interrupted.
"""
from __future__ import annotations

import gc
import importlib
import signal
from pathlib import Path

import click

from .. import __version__
from .base import Group, Project

# command -> the module of this package that defines it (in its COMMANDS); tests check the table
MODULES = {
    **dict.fromkeys(["init", "schema", "stage", "verify", "waive", "history-diff", "notes", "release", "releases",
                     "show", "boot"], "cycle"),
    "series": "series",
    **dict.fromkeys(["restore", "bundle", "build"], "source"),
    **dict.fromkeys(["fsck", "eol", "feed", "device-config", "upload", "publish", "channels"], "publish"),
    "keys": "keys", "cve": "cve", "ci": "ci",
    **dict.fromkeys(["site", "serve", "device"], "site"),
    **dict.fromkeys(["sample-build", "demo"], "sample"),
}


class Commands(Group):
    def list_commands(self, ctx) -> list[str]:
        return sorted(MODULES)

    def get_command(self, ctx, name: str):
        if name not in MODULES:
            return None
        mod = importlib.import_module(f"{__name__}.{MODULES[name]}")
        return next(c for c in mod.COMMANDS if c.name == name)


GC_THRESHOLD = 50_000


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-C", "directory", type=click.Path(file_okay=False, path_type=Path),
              help="Project directory (holding bindistro.yml); default: found from the current directory.")
@click.option("--debug", is_flag=True, envvar="BINDISTRO_DEBUG",
              help="Show the full trace of an unexpected error (for bug reports).")
@click.version_option(__version__)
@click.pass_context
def main(ctx, directory, debug):
    """Run the release cycle of a binary distribution built with the Yocto Project."""
    ctx.meta["debug"] = debug
    ctx.obj = Project(directory)
    # a step holds tens of thousands of long-lived objects (metadata rows, index entries): at the
    # default threshold (700 new objects) the cycle collector walked them all about ten times a
    # command, 10-13 % of a 5,000-package stage or release. Cycles are still collected, later.
    gc.set_threshold(GC_THRESHOLD, 10, 10)


def run() -> None:
    """The `bindistro` program (console script): main() with SIGTERM unwinding like Ctrl-C."""
    signal.signal(signal.SIGTERM, _terminated)
    try:
        main()
    finally:
        # Python's teardown walks every object left (sqlalchemy's, click's...) in cycle collections
        # as it clears the modules: 0.1 s after every command here. Frozen, they are only freed.
        gc.freeze()


def _terminated(_sig, _frame):
    # as Ctrl-C: unwinds, so a half-done stage removes what it added and temp dirs go away
    raise KeyboardInterrupt
