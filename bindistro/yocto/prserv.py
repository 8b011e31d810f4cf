"""bitbake's PR service database (cache/prserv.sqlite3) and the export format of
`bitbake-prserv-tool export`:

    PRAUTO$<version>$<pkgarch>$<checksum> = "<value>"
    PRAUTO_<version>_<pkgarch> = "<max value>"
"""
from __future__ import annotations

import re
import sqlite3
from pathlib import Path

Row = tuple[str, str, str, int]   # version, pkgarch, checksum, value
_EXPORT = re.compile(r'^PRAUTO\$(?P<version>[^$]+)\$(?P<pkgarch>[^$]+)\$(?P<checksum>[^ ]+) = "(?P<value>-?\d+)"$')


def read_db(path: Path) -> list[Row]:
    """Rows of PRMAIN (current bitbake) or PRMAIN_nohist / PRMAIN_hist (older)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        table = next((t for t in ("PRMAIN", "PRMAIN_nohist", "PRMAIN_hist") if t in tables), None)
        if table is None:
            raise ValueError(f"{path}: no PRMAIN table: not a bitbake PR database")
        rows = con.execute(f"SELECT version, pkgarch, checksum, value FROM {table}").fetchall()
    except sqlite3.DatabaseError as e:
        raise ValueError(f"{path}: not a PR database ({e})") from None
    finally:
        con.close()
    return [(v, a, c, int(x)) for v, a, c, x in rows]


def maxima(rows: list[Row]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for v, a, _c, x in rows:
        out[(v, a)] = max(out.get((v, a), -1), x)
    return out


def export(rows: list[Row]) -> str:
    lines = [f'PRAUTO${v}${a}${c} = "{x}"' for v, a, c, x in sorted(rows)]
    lines += [f'PRAUTO_{v}_{a} = "{x}"' for (v, a), x in sorted(maxima(rows).items())]
    return "\n".join(lines) + "\n"


def parse_export(text: str) -> list[Row]:
    out = []
    for line in text.splitlines():
        m = _EXPORT.match(line.strip())
        if m:
            out.append((m["version"], m["pkgarch"], m["checksum"], int(m["value"])))
    return out


def ensure(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE IF NOT EXISTS PRMAIN (version TEXT NOT NULL, pkgarch TEXT NOT NULL, "
                "checksum TEXT NOT NULL, value INTEGER, PRIMARY KEY (version, pkgarch, checksum))")
    return con


def import_rows(path: Path, rows: list[Row]) -> tuple[int, int]:
    """Merge rows into a PR database without ever lowering a value. Returns (added, raised)."""
    con = ensure(path)
    added = raised = 0
    with con:
        for v, a, c, x in rows:
            cur = con.execute("SELECT value FROM PRMAIN WHERE version=? AND pkgarch=? AND checksum=?", (v, a, c)).fetchone()
            if cur is None:
                con.execute("INSERT INTO PRMAIN VALUES (?,?,?,?)", (v, a, c, x))
                added += 1
            elif int(cur[0]) < x:
                con.execute("UPDATE PRMAIN SET value=? WHERE version=? AND pkgarch=? AND checksum=?", (x, v, a, c))
                raised += 1
    con.close()
    return added, raised


def get_value(con: sqlite3.Connection, version: str, pkgarch: str, checksum: str) -> int:
    """What the PR server answers: the known value, else one above the highest for (version, arch)."""
    r = con.execute("SELECT value FROM PRMAIN WHERE version=? AND pkgarch=? AND checksum=?",
                    (version, pkgarch, checksum)).fetchone()
    if r:
        return int(r[0])
    m = con.execute("SELECT MAX(value) FROM PRMAIN WHERE version=? AND pkgarch=?", (version, pkgarch)).fetchone()[0]
    value = 0 if m is None else int(m) + 1
    con.execute("INSERT INTO PRMAIN VALUES (?,?,?,?)", (version, pkgarch, checksum, value))
    return value
