"""The state directory: metadata DB + content-addressed objects."""
from __future__ import annotations

import os
from pathlib import Path

from .objects import ObjectStore


def open_store(spec) -> "Store":
    """The store of a project: its state dir, and its metadata DB (spec.database_url)."""
    return Store(spec.state_path, spec.database_url, spec.objects_url)


class Store:
    def __init__(self, state_dir: Path, db_url: str | None = None, objects_url: str | None = None):
        self.dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        remote = None
        if objects_url:
            from .remote import RemoteObjects
            remote = RemoteObjects(objects_url)
        self.objects = ObjectStore(state_dir / "objects", remote)
        from .db import MetaDB      # (here: SQLAlchemy is a third of the start of a command that needs no DB, `feed index`)
        self.db = MetaDB(db_url or f"sqlite:///{state_dir / 'bindistro.db'}")
        self._stats: dict[str, tuple] | None = None

    def close(self) -> None:
        """Close the DB's pooled connections now: SQLite removes its WAL file when the last one
        closes, which must not happen at a garbage collector's whim (a copy of the state dir, a
        test's snapshot of it, would race with it)."""
        self.db.engine.dispose()

    def known(self, path: Path | str, st: os.stat_result) -> tuple[str, str] | None:
        """(sha256, md5) of `path` as hashed before, when its (size, mtime, inode) still match."""
        if self._stats is None:
            self._stats = self.db.all_filestats()
        cached = self._stats.get(str(path))
        if cached and cached[:3] == (st.st_size, st.st_mtime_ns, st.st_ino):
            return cached[3], cached[4]
        return None

    def stale_filestats(self, under: str, found: set[str]) -> list[str]:
        """Remembered paths below directory `under` that are not in `found` (what a stage of `under`
        listed): a build directory renames every file it rebuilds, and the table would otherwise grow
        by every churned file of every build, loaded whole by each stage."""
        prefix = under.rstrip("/") + "/"
        return [p for p in (self._stats or {}) if p.startswith(prefix) and p not in found]

    def referenced_objects(self) -> set[str]:
        """Every object hash the DB relies on (artifacts, signed and published forms, and hashes that
        verify reports quote)."""
        import json
        import re
        from sqlalchemy import select
        from .schema import artifacts, published, reports, signed
        sha = re.compile(r"\b[0-9a-f]{64}\b")
        refs: set[str] = set()
        with self.db.engine.connect() as c:
            refs |= {r[0] for r in c.execute(select(artifacts.c.sha256))}
            refs |= {r[0] for r in c.execute(select(signed.c.sha256))}
            refs |= {r[0] for r in c.execute(select(published.c.sha256))}
            for r in c.execute(select(reports.c.findings)):
                refs |= set(sha.findall(json.dumps(r[0])))
        return refs
