"""Bring a metadata DB to the schema this code knows (Alembic; SQLAlchemy Core, any back end).

A new DB gets every migration. A DB made before versions were recorded (bindistro before schema
0002: tables, no `alembic_version`) is recognised by its tables, stamped as the baseline and
upgraded. A DB newer than this code is refused: an older bindistro must not write a schema it does
not know.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from sqlalchemy import inspect, text

from ..errors import BindistroError
from .schema import SCHEMA_VERSION

MIGRATIONS = Path(__file__).with_name("migrations")
BASELINE = "0001"
BASELINE_TABLES = {"filestat", "candidates", "artifacts", "releases", "published", "signed", "settings"}


class SchemaError(BindistroError):
    pass


def advisory_key(name: str) -> int:
    """The PostgreSQL advisory lock id of a named lock (schema migration, publishing)."""
    return int.from_bytes(hashlib.sha256(f"bindistro:{name}".encode()).digest()[:8], "big", signed=True)


def current(conn) -> str | None:
    """The DB's recorded schema version; None when it records none."""
    if not inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(text("SELECT version_num FROM alembic_version")).scalar()


def ensure(engine) -> None:
    where = engine.url.render_as_string(hide_password=True)
    with engine.connect() as conn:          # the common case, checked without loading Alembic
        version = current(conn)
        tables = set(inspect(conn).get_table_names())
    if version == SCHEMA_VERSION:
        return
    if version is not None and version not in _known():
        raise SchemaError(f"{where}: schema version {version} is newer than this bindistro knows "
                          f"({SCHEMA_VERSION}); use the bindistro that wrote it, or a newer one")
    legacy = version is None and bool(tables & BASELINE_TABLES)
    if legacy and not BASELINE_TABLES <= tables:
        raise SchemaError(f"{where}: not a bindistro state database (tables {', '.join(sorted(tables))})")
    if engine.dialect.name == "postgresql":
        # hosts sharing the DB: one upgrades, the others wait and find it done
        with engine.connect() as c:
            c.execution_options(isolation_level="AUTOCOMMIT")
            c.execute(text("SELECT pg_advisory_lock(:k)"), {"k": advisory_key("schema")})
            try:
                if current(c) != SCHEMA_VERSION:
                    upgrade(engine, stamp_first=BASELINE if legacy and current(c) is None else None)
            finally:
                c.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": advisory_key("schema")})
        return
    upgrade(engine, stamp_first=BASELINE if legacy else None)


def _known() -> set[str]:
    return {p.name.split("_", 1)[0] for p in (MIGRATIONS / "versions").glob("[0-9]*.py")}


def upgrade(engine, stamp_first: str | None = None) -> None:
    from alembic import command
    from alembic.config import Config
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        if stamp_first:
            command.stamp(cfg, stamp_first)
        command.upgrade(cfg, "head")
