"""The store owns its schema: an old state dir is migrated, a newer one is refused."""
from __future__ import annotations

import sqlite3

import pytest
from sqlalchemy import JSON, Column, Integer, MetaData, String, Table, create_engine, insert

from bindistro import verify
from bindistro.store import Store
from bindistro.store.migrate import SchemaError
from bindistro.store.schema import SCHEMA_VERSION


def old_state_dir(state) -> None:
    """A state dir as bindistro wrote it before schema versions (tables as they were defined then,
    verify's tables created on first use), with a candidate, a release, a report and a waiver."""
    md = MetaData()
    Table("filestat", md, Column("path", String, primary_key=True), Column("size", Integer, nullable=False),
          Column("mtime_ns", Integer, nullable=False), Column("inode", Integer, nullable=False),
          Column("sha256", String, nullable=False), Column("md5", String, nullable=False))
    cands = Table("candidates", md, Column("id", Integer, primary_key=True, autoincrement=True),
                  Column("source", String, nullable=False), Column("created", String, nullable=False),
                  Column("warnings", JSON, nullable=False, default=list))
    arts = Table("artifacts", md, Column("id", Integer, primary_key=True, autoincrement=True),
                 Column("candidate", Integer, nullable=False, index=True), Column("path", String, nullable=False),
                 Column("kind", String, nullable=False), Column("sha256", String, nullable=False, index=True),
                 Column("size", Integer, nullable=False), Column("md5", String, nullable=False),
                 Column("format", String), Column("name", String), Column("version", String), Column("arch", String),
                 Column("meta", JSON, nullable=False))
    rels = Table("releases", md, Column("name", String, primary_key=True), Column("seq", Integer, nullable=False, unique=True),
                 Column("candidate", Integer, nullable=False), Column("created", String, nullable=False))
    Table("published", md, Column("path", String, primary_key=True), Column("sha256", String, nullable=False),
          Column("size", Integer, nullable=False), Column("release", String, nullable=False))
    Table("signed", md, Column("unsigned", String, primary_key=True), Column("sha256", String, nullable=False),
          Column("size", Integer, nullable=False), Column("md5", String, nullable=False),
          Column("meta", JSON, nullable=False), Column("key", String, nullable=False))
    Table("settings", md, Column("key", String, primary_key=True), Column("value", String, nullable=False))
    reports = Table("reports", md, Column("candidate", Integer, primary_key=True), Column("created", String, nullable=False),
                    Column("gates", JSON, nullable=False), Column("findings", JSON, nullable=False))
    waivers = Table("waivers", md, Column("candidate", Integer, primary_key=True), Column("finding", String, primary_key=True),
                    Column("reason", String, nullable=False), Column("created", String, nullable=False))
    state.mkdir(parents=True)
    eng = create_engine(f"sqlite:///{state / 'bindistro.db'}")
    md.create_all(eng)
    with eng.begin() as c:
        c.execute(insert(cands).values(id=1, source="/b", created="2025-01-01T00:00:00+00:00", warnings=[]))
        c.execute(insert(arts).values(candidate=1, path="ipk/all/a.ipk", kind="package", sha256="a" * 64, size=1,
                                      md5="b" * 32, format="ipk", name="a", version="1", arch="all", meta={}))
        c.execute(insert(rels).values(name="1.1", seq=1, candidate=1, created="2025-01-02"))
        c.execute(insert(reports).values(candidate=1, created="2025-01-01", gates=["closure"], findings=[
            {"id": "0123456789ab", "severity": "error", "gate": "closure", "subject": "a", "message": "old words",
             "details": {}}]))
        c.execute(insert(waivers).values(candidate=1, finding="0123456789ab", reason="known", created="2025-01-01"))
    eng.dispose()


def test_old_state_dir_is_migrated(tmp_path):
    old_state_dir(tmp_path / "state")
    store = Store(tmp_path / "state")
    with store.db.engine.connect() as c:
        assert c.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == SCHEMA_VERSION
        tables = {r[0] for r in c.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"cve_records", "cve_scans", "cve_triage", "payload_checks"} <= tables    # created by the migrations
    assert [r.name for r in store.db.releases()] == ["1.1"]
    assert [a.name for a in store.db.released_packages()] == ["a"]      # released_files filled from the releases
    rep = verify.report(store, 1)
    f = rep["findings"][0]
    assert f["rule"] == "closure.unclassified" and f["waived"]["reason"] == "known"      # waiver kept
    assert rep["summary"]["error"] == 0
    Store(tmp_path / "state")      # a second open is a no-op


def test_newer_schema_is_refused(tmp_path, cli):
    cli("-C", tmp_path / "p", "init", "--no-boot")
    db = tmp_path / "p" / "state" / "bindistro.db"
    c = sqlite3.connect(db)
    c.execute("UPDATE alembic_version SET version_num = '0999'")
    c.commit()
    c.close()
    with pytest.raises(SchemaError, match="newer than this bindistro knows"):
        Store(tmp_path / "p" / "state")
    r = cli("-C", tmp_path / "p", "releases", ok=False)
    assert r.exit_code == 1 and "0999" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_foreign_database_is_refused(tmp_path):
    (tmp_path / "s").mkdir()
    c = sqlite3.connect(tmp_path / "s" / "bindistro.db")
    c.execute("CREATE TABLE candidates (x)")
    c.commit()
    c.close()
    with pytest.raises(SchemaError, match="not a bindistro state database"):
        Store(tmp_path / "s")


def test_migrations_make_every_table_column_and_index_of_schema_py(tmp_path):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from bindistro.store.schema import md
    store = Store(tmp_path / "state")
    with store.db.engine.connect() as c:
        diff = compare_metadata(MigrationContext.configure(c), md)
    # (SQLite's INTEGER is 64 bits: BigInteger columns differ in name only)
    assert [d for d in diff if not (isinstance(d, list) and d[0][0] == "modify_type")] == []
