"""What every command shares: the project context, output, options, and the one way failures reach
the user (Group.invoke)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import BadInput, BindistroError

if TYPE_CHECKING:       # SQLAlchemy is 150 ms to import: a command that opens no store does not pay it
    from .. import spec as specmod      # (and the spec's schema, yaml: one that reads no spec)
    from ..store import Store

class _Console:
    """rich's Console, made on first use: a command whose output is --json never imports rich. A
    line of text is written as it is (click.echo): no markup or emoji codes read into a path or a
    package name, and no rich imported for a one-line report (30 ms of a `feed index`)."""

    def __init__(self, **kw):
        self._kw, self._made = kw, None

    def print(self, *objects, **kw):
        if len(objects) == 1 and isinstance(objects[0], str) and not kw.keys() - {"markup"}:
            click.echo(objects[0], err=bool(self._kw.get("stderr")))
            return
        return self.__getattr__("print")(*objects, **kw)

    def __getattr__(self, name: str):
        if self._made is None:
            from rich.console import Console
            self._made = Console(highlight=False, soft_wrap=True, **self._kw)
        return getattr(self._made, name)


out = _Console()
err = _Console(stderr=True)


class Reported(BindistroError):
    """The command has printed its report (problems included); exit 1 without another line."""

    def __init__(self):
        super().__init__("")


class Project:
    def __init__(self, directory: Path | None):
        self.dir = directory
        self._spec = None
        self._store = None

    @property
    def spec(self) -> specmod.Spec:
        if self._spec is None:
            from .. import spec as specmod
            path = (self.dir / specmod.SPEC_FILE) if self.dir else specmod.find(Path.cwd())
            self._spec = specmod.load(path)
        return self._spec

    @property
    def store(self) -> Store:
        if self._store is None:
            from ..store import open_store
            self._store = open_store(self.spec)
        return self._store

def emit(as_json: bool, data, human) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=1, default=str))
    else:
        human(data)

def one_line(text: str) -> str:
    """A message as one line: a newline or escape in a hostile name must not start a line of its own."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)

def fail_on(e: BindistroError, as_json: bool = False) -> None:
    if isinstance(e, Reported):
        sys.exit(e.exit_code)
    problems = e.problems if isinstance(e, BadInput) else None
    if as_json and not getattr(e, "reported", False):
        click.echo(json.dumps({"error": str(e).splitlines()[0] if not problems else f"{len([p for p in problems if p.severity == 'error'])} problem(s)",
                               "problems": [{"path": p.path, "message": p.message, "severity": p.severity}
                                            for p in problems or []]}, indent=1))
    if problems:
        for p in problems:
            err.print(f"bindistro: {p.severity}: {one_line(str(p))}", markup=False)
    else:
        err.print(f"bindistro: error: {one_line(str(e))}", markup=False)
    sys.exit(e.exit_code)

REPORT_URL = "https://github.com/bindistro/bindistro/issues"

class Group(click.Group):
    """Every failure reaches the user as one line: the project's errors and environment faults
    (EROFS, ENOSPC, EACCES, a missing tool) name the file; anything else is our bug, said so, with
    the trace only under --debug."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except BindistroError as e:
            fail_on(e, ctx.meta.get("json", False))
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except KeyboardInterrupt:
            err.print("bindistro: interrupted", markup=False)
            sys.exit(130)
        except OSError as e:
            if ctx.meta.get("debug"):
                raise
            fail_on(BindistroError(os_problem(e)), ctx.meta.get("json", False))
        except Exception as e:
            if ctx.meta.get("debug"):
                raise
            if _db_fault(e):      # disk full, read-only, locked: the DB says which
                store = getattr(ctx.obj, "_store", None)
                where = store.db.engine.url.render_as_string(hide_password=True) if store else "state database"
                fail_on(BindistroError(f"{where}: {str(e.orig).splitlines()[0]}"), ctx.meta.get("json", False))
            err.print(f"bindistro: internal error: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}"
                      f" (a bug: please report it at {REPORT_URL} with the output of --debug)", markup=False)
            sys.exit(1)
        finally:
            store = getattr(ctx.obj, "_store", None)
            if store is not None:
                store.close()


def _db_fault(e: Exception) -> bool:
    exc = sys.modules.get("sqlalchemy.exc")      # not imported: no database was opened
    return exc is not None and isinstance(e, exc.OperationalError)


def os_problem(e: OSError) -> str:
    """One line for an environment fault, naming the file where the OS told us which."""
    what = e.strerror or str(e)
    if isinstance(e, FileNotFoundError) and e.filename and not Path(str(e.filename)).is_absolute() and "/" not in str(e.filename):
        return f"{e.filename}: command not found (install it, see README)"
    return f"{e.filename}: {what}" if e.filename else what

def _remember_json(ctx, _param, value):
    ctx.meta["json"] = value   # so errors raised later are reported as JSON too
    return value

json_opt = click.option("--json", "as_json", is_flag=True, callback=_remember_json,
                        help="Print a JSON report on stdout.")

from_build_opt = click.option(
    "--from-build", "from_build", type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Take the machines and their package architectures (SoC family feeds too) from this build directory: "
         "its images' opkg arch.conf, else its buildhistory.")


def machines_from_build(build: Path) -> list[specmod.Machine]:
    """The machines and their package architectures a build made (init, series add)."""
    from .. import spec as specmod
    from ..yocto.machines import from_build as machines_of
    found = {m: a for m, a in machines_of(build).items() if a}
    if not found:
        raise BindistroError(f"{build}: no machine's package architectures found (no image with "
                             "etc/opkg/arch.conf under tmp/deploy/images/, no buildhistory/images/)")
    return [specmod.Machine(m, a) for m, a in sorted(found.items())]


series_opt = click.option("--series", metavar="NAME", help="The series (branch) it is for; needed when the spec "
                          "has several and nothing else says which.")

pass_file = click.option("--passphrase-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                         help="File holding the key passphrase (or set BINDISTRO_KEY_PASSPHRASE).")
