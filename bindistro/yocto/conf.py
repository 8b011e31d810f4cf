"""bitbake configuration files, parsed by bitbake's own ConfHandler and datastore.

The `bitbake-setup` wheel ships `bb` with its parser, but `bb.parse` imports `bb.siggen`, which
imports `hashserv` (the hash-equivalence client, not shipped). Parsing never talks to a hash
server, so an empty stand-in module is registered before the import; everything else is bitbake's.
"""
from __future__ import annotations

import logging
import sys
import types
from pathlib import Path

from ..errors import BindistroError

for _name in ("hashserv", "hashserv.client"):
    sys.modules.setdefault(_name, types.ModuleType(_name))

import bb.data  # noqa: E402
import bb.parse  # noqa: E402
from bb.parse.parse_py import ConfHandler  # noqa: E402

logging.getLogger("BitBake").setLevel(logging.ERROR)


class ConfError(BindistroError):
    pass


def parse(files: list[Path], topdir: Path | None = None, text_files: dict[str, str] | None = None,
          preset: dict[str, str] | None = None):
    """A bitbake datastore after parsing `files` in order (like bitbake reads bblayers.conf then
    local.conf). `text_files` adds in-memory fragments (e.g. kas local_conf_header) by name;
    `preset`: values set before parsing (MACHINE as the environment would give it)."""
    d = bb.data.init()
    top = str(topdir or (files[0].parent.parent if files else Path.cwd()))
    d.setVar("TOPDIR", top)
    d.setVar("BBPATH", top)
    for k, v in (preset or {}).items():
        d.setVar(k, v)
    for f in files:
        _handle(f, d)
    for name, text in (text_files or {}).items():
        import tempfile
        with tempfile.NamedTemporaryFile("w", suffix=".conf", dir=top if Path(top).is_dir() else None,
                                         delete=True) as tmp:
            tmp.write(text)
            tmp.flush()
            _handle(Path(tmp.name), d, shown=name)
    return d


def _handle(f: Path, d, shown: str | None = None) -> None:
    try:
        ConfHandler.handle(str(f), d, True)
    except bb.parse.ParseError as e:
        raise ConfError(f"{shown or f}: {e.msg if hasattr(e, 'msg') else e}") from None
    except Exception as e:   # bitbake raises several kinds on malformed input
        raise ConfError(f"{shown or f}: cannot parse: {e}") from None


def words(d, var: str) -> list[str]:
    return (d.getVar(var) or "").split()
