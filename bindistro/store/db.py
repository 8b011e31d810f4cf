"""Metadata DB behind one small interface (SQLAlchemy Core: SQLite by default, any URL later).
The tables are in schema.py; migrate.py brings an older database up to them."""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import operator
import sys
import zlib
from collections.abc import Iterable

from sqlalchemy import JSON, Text, bindparam, cast, create_engine, event, func, insert, select, text
from sqlalchemy.exc import OperationalError

from ..errors import BindistroError
from ..model import Artifact, Release, shared
from . import migrate
from .migrate import advisory_key
from .schema import (artifacts, candidates, filestat, package_meta, payload_checks, published, released_files, releases,
                     settings, signed)

def engine_url(url: str) -> str:
    # postgresql:// means psycopg 3: SQLAlchemy's default driver for it is psycopg2
    return "postgresql+psycopg://" + url[len("postgresql://"):] if url.startswith("postgresql://") else url


class MetaDB:
    def __init__(self, url: str):
        self.engine = create_engine(engine_url(url), future=True)
        self.where = self.engine.url.render_as_string(hide_password=True)
        # (sha256, format) -> control data, decoded once per process: a release reads each package's
        # from the candidate, the cumulative feeds and the site (package_meta rows never change)
        self.decoded: dict[tuple[str, str], dict] = {}
        if url.startswith("sqlite"):
            @event.listens_for(self.engine, "connect")
            def _pragmas(conn, _rec):  # WAL: readers never block the one writer
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
        try:
            migrate.ensure(self.engine)
        except OperationalError as e:     # unreachable server, wrong user, no such database
            raise BindistroError(f"{self.where}: {str(e.orig).strip().splitlines()[0]}") from None

    def begin(self):
        return self.engine.begin()

    @contextlib.contextmanager
    def lock(self, name: str, what: str):
        """One holder of `name` at a time among every host sharing this DB: a PostgreSQL advisory
        lock on a connection of its own, released when it closes (also when the process is killed).
        SQLite lives on one host, where the caller's file lock already serialises."""
        if self.engine.dialect.name != "postgresql":
            yield
            return
        key = advisory_key(name)
        with self.engine.connect() as c:
            c.execution_options(isolation_level="AUTOCOMMIT")
            if not c.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar():
                print(f"bindistro: waiting for the {name} lock in {self.where} ({what}: another host or "
                      "command holds it)", file=sys.stderr)
                c.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                c.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})

    # filestat cache: skip re-hashing unchanged files
    def all_filestats(self) -> dict[str, tuple]:
        # (plain SQL: SQLAlchemy's row processing was half the time of a world build's 20,000 rows)
        with self.engine.connect() as c:
            return {r[0]: tuple(r[1:]) for r in c.exec_driver_sql(
                "SELECT path, size, mtime_ns, inode, sha256, md5 FROM filestat")}

    @staticmethod
    def save_filestats(conn, rows: Iterable[dict], gone: Iterable[str] = ()) -> None:
        """Remember `rows`; forget the paths `gone` (files a stage no longer found)."""
        rows, gone = list(rows), sorted(gone)
        for i in range(0, len(rows), 500):
            upsert(conn, filestat, rows[i:i + 500], ["path"])
        for i in range(0, len(gone), 500):
            conn.execute(filestat.delete().where(filestat.c.path.in_(gone[i:i + 500])))

    def package_fields(self, fmt: str, shas: list[str], keys: tuple) -> dict[str, tuple[str, str, dict]]:
        """sha256 -> (name, version, {field: value}) of package files staged before, with only the
        control fields `keys` (Format.KNOWN_FIELDS), taken out of the JSON by the DB: an unchanged
        file is not read again, and its control data not decoded (one row per file, however many
        candidates listed it; decoding them all was a third of staging a world's next build)."""
        cols = [package_meta.c.meta[k].as_string() for k in keys]
        out = {}
        with self.engine.connect() as c:
            for i in range(0, len(shas), 500):
                q = select(package_meta.c.sha256, package_meta.c.name, package_meta.c.version, *cols
                           ).where((package_meta.c.format == fmt) & package_meta.c.sha256.in_(shas[i:i + 500]))
                for r in c.execute(q):
                    fields = {}
                    for k, v in zip(keys, r[3:]):
                        if v is not None:
                            fields[k if isinstance(k, str) else k[0]] = v if isinstance(k, str) else [v]
                    out[r[0]] = (r[1], r[2], fields)
        return out

    @staticmethod
    def add_candidate(conn, source: str, created: str, arts: list[Artifact], warnings: list[str],
                      series: str | None = None, stored: set[int] = frozenset()) -> int:
        """`stored`: id()s of packages whose control data was read from package_meta (not compared again)."""
        cid = conn.execute(insert(candidates).values(source=source, created=created, warnings=warnings,
                                                     series=series)).inserted_primary_key[0]
        if arts:
            own = _store_metas(conn, [a for a in arts if a.kind == "package" and id(a) not in stored])
            for i in range(0, len(arts), CHUNK):
                insert_rows(conn, artifacts, [
                    dict(candidate=cid, path=a.path, kind=a.kind, sha256=a.sha256, size=a.size, md5=a.md5,
                         format=a.format, name=a.name, version=a.version, arch=a.arch,
                         meta=a.meta if a.kind != "package" or id(a) in own else {})
                    for a in arts[i:i + CHUNK]])
        return cid

    def candidate(self, cid: int, kinds: tuple[str, ...] | None = None, control: bool = True):
        """(candidate row, its artifacts), or only those of `kinds`. `control=False`: packages
        without their control data (name, version and arch are columns; decoding every package's
        control data is most of reading a world-sized candidate)."""
        with self.engine.connect() as c:
            row = c.execute(select(candidates).where(candidates.c.id == cid)).first()
            if not row:
                return None
            q = select(artifacts).where(artifacts.c.candidate == cid)
            if kinds:
                q = q.where(artifacts.c.kind.in_(kinds))
            arts = _artifacts(c, q.order_by(artifacts.c.id), self.decoded if control else None)
        return row, arts

    def packages_named(self, cid: int, nv: set[tuple[str, str]]) -> list[Artifact]:
        """The candidate's packages whose (name, version) is in `nv`, with control data, in row order:
        the rows are picked in SQL (a world's build is 100,000 rows; an image lists a few hundred)."""
        names = sorted({n for n, _ in nv})
        ids = []
        with self.engine.connect() as c:
            for i in range(0, len(names), 500):
                q = select(artifacts.c.id, artifacts.c.name, artifacts.c.version).where(
                    (artifacts.c.candidate == cid) & (artifacts.c.kind == "package") & artifacts.c.name.in_(names[i:i + 500]))
                ids += [r.id for r in c.execute(q) if (r.name, r.version) in nv]
            ids.sort()      # (chunks of ascending ids, each in id order: the whole in row order)
            return [a for i in range(0, len(ids), 500)
                    for a in _artifacts(c, select(artifacts).where(artifacts.c.id.in_(ids[i:i + 500])).order_by(artifacts.c.id),
                                        self.decoded)]

    def package_versions(self, cid: int, fmt: str) -> dict[tuple[str, str], str]:
        """(name, arch) -> version of a candidate's packages of one format (of two, the later row)."""
        q = select(artifacts.c.name, artifacts.c.arch, artifacts.c.version).where(
            (artifacts.c.candidate == cid) & (artifacts.c.kind == "package") & (artifacts.c.format == fmt))
        with self.engine.connect() as c:
            return {(r[0], r[1]): r[2] for r in _fetch(c, q.order_by(artifacts.c.id))[1]}

    def candidate_row(self, cid: int):
        with self.engine.connect() as c:
            return c.execute(select(candidates).where(candidates.c.id == cid)).first()

    def candidates(self):
        with self.engine.connect() as c:
            return list(c.execute(select(candidates).order_by(candidates.c.id)))

    def releases(self) -> list[Release]:
        """Every release, oldest first, with its candidate's series (series.py says whose None is)."""
        q = select(releases, candidates.c.series).join(candidates, candidates.c.id == releases.c.candidate)
        with self.engine.connect() as c:
            return [Release(r.name, r.seq, r.candidate, r.created, series=r.series)
                    for r in c.execute(q.order_by(releases.c.seq))]

    @staticmethod
    def add_release(conn, rel: Release, files: list[tuple[str, str, int]]) -> None:
        conn.execute(insert(releases).values(name=rel.name, seq=rel.seq, candidate=rel.candidate,
                                             created=rel.created))
        if files:
            conn.execute(insert(published), [dict(path=p, sha256=s, size=n, release=rel.name)
                                             for p, s, n in files])
        # the package files this line of releases ships for the first time (its cumulative feeds grow by these)
        line = conn.execute(select(candidates.c.series).where(candidates.c.id == rel.candidate)).scalar() or ""
        q = (select(artifacts.c.format, artifacts.c.arch, artifacts.c.sha256, func.min(artifacts.c.id))
             .where((artifacts.c.candidate == rel.candidate) & (artifacts.c.kind == "package"))
             .group_by(artifacts.c.format, artifacts.c.arch, artifacts.c.sha256))
        upsert(conn, released_files, [dict(line=line, format=f, arch=a, sha256=h, artifact=i) for f, a, h, i in conn.execute(q)],
               ["line", "format", "arch", "sha256"], replace=False)

    def published(self, paths: list[str] | None = None) -> dict[str, tuple[str, int]]:
        """path -> (sha256, size) of every published file, or of those of `paths` that are."""
        with self.engine.connect() as c:
            if paths is None:
                return {r.path: (r.sha256, r.size) for r in c.execute(select(published))}
            return {r[0]: (r[1], r[2]) for r in _rows_in(c, [published.c.path, published.c.sha256, published.c.size],
                                                        published.c.path, paths)}

    def released_packages(self, of_candidates: list[int] | None = None, control: bool = True) -> list[Artifact]:
        """Every package file ever released, once, in the order it was first released (`of_candidates`:
        only by the releases of those candidates, one series' cumulative feeds). A release lists all of its
        build's packages: most are the same files as the release before. `control`: as candidate()."""
        with self.engine.connect() as c:
            # released_files holds each file's first release per line of releases (add_release):
            # its size is the cumulative feeds', not every release's whole build
            first = (select(func.min(released_files.c.artifact))
                     .group_by(released_files.c.format, released_files.c.arch, released_files.c.sha256))
            if of_candidates is not None:       # the candidate of a first release is its artifact row's
                first = first.join(artifacts, artifacts.c.id == released_files.c.artifact).where(
                    artifacts.c.candidate.in_(of_candidates))
            q = select(artifacts).where(artifacts.c.id.in_(first)).order_by(artifacts.c.id)
            return _artifacts(c, q, self.decoded if control else None)

    def released_feeds(self, cids: list[int]) -> set[tuple[str, str]]:
        """(format, feed) of every feed the releases of candidates `cids` published packages in."""
        with self.engine.connect() as c:
            lines = _lines(c, cids)
            q = select(released_files.c.format, released_files.c.arch).where(released_files.c.line.in_(lines)).distinct()
            return {(f, a) for f, a in c.execute(q)}

    def first_released(self, cids: list[int], fmt: str, arch: str, control: bool = True) -> list[Artifact]:
        """The `fmt` packages of feed `arch` that the releases of candidates `cids` published first
        in their line of releases, in row order: what those releases added to one cumulative feed
        (`control`: with control data, not kept in `decoded`: a feed's history is read once)."""
        with self.engine.connect() as c:
            lines = _lines(c, cids)
            rf = released_files
            q = (select(artifacts).join(rf, rf.c.artifact == artifacts.c.id)
                 .where(rf.c.line.in_(lines) & (rf.c.format == fmt) & (rf.c.arch == arch) & artifacts.c.candidate.in_(cids))
                 .order_by(artifacts.c.id))
            return _artifacts(c, q, self.decoded if control else None, keep=False)

    def get_setting(self, key: str) -> str | None:
        with self.engine.connect() as c:
            r = c.execute(select(settings.c.value).where(settings.c.key == key)).first()
        return r[0] if r else None

    def set_setting(self, key: str, value) -> None:
        with self.begin() as c:
            self.put_setting(c, key, value)

    @staticmethod
    def put_setting(conn, key: str, value) -> None:
        upsert(conn, settings, [{"key": key, "value": json.dumps(value)}], ["key"])

    # the publish tree's generation this state committed (publish.py switches the tree to it)
    def generation(self) -> int:
        v = self.get_setting("publish.generation")
        return json.loads(v) if v else 0

    @classmethod
    def set_generation(cls, conn, n: int) -> None:
        cls.put_setting(conn, "publish.generation", n)

    def payload_checks(self, shas: list[str]) -> dict[str, dict]:
        """sha256 -> the payload gate's result for package objects inspected before."""
        out = {}
        t = payload_checks.c
        # not the file lists, and the JSON as text: nearly every one is [] (a world's build is 100,000 rows)
        with self.engine.connect() as c:
            for sha, problems, setuid, unpacked in _rows_in(
                    c, [t.sha256, cast(t.problems, Text), cast(t.setuid, Text), t.unpacked], t.sha256, shas):
                out[sha] = {"problems": _json_list(problems), "setuid": _json_list(setuid), "unpacked": unpacked}
        return out

    def payload_files(self, sha256: str) -> list[str] | None:
        """The member names of an inspected package object."""
        with self.engine.connect() as c:
            blob = c.execute(select(payload_checks.c.files).where(payload_checks.c.sha256 == sha256)).scalar()
        return json.loads(zlib.decompress(blob)) if blob is not None else None

    def payload_checked(self) -> set[str]:
        """Every object the payload gate has inspected (their file lists are kept). (Plain SQL, the
        whole column: SQLAlchemy's rows for a world's history in chunks took ten times as long.)"""
        with self.engine.connect() as c:
            return {r[0] for r in _fetch(c, select(payload_checks.c.sha256))[1]}

    def payload_files_of(self, shas: list[str], convert=None) -> dict[str, list[str]]:
        """sha256 -> member names (or `convert` of them, made one by one: a world's lists are large),
        for every inspected object of `shas`. Objects with the same list share one list object: do
        not change them."""
        out = {}
        # a version's files are mostly the last version's, in every arch and format: a world's
        # history has a third as many distinct lists as objects, each decoded once
        seen: dict[bytes, list] = {}
        with self.engine.connect() as c:
            for i in range(0, len(shas), 500):
                q = select(payload_checks.c.sha256, payload_checks.c.files).where(payload_checks.c.sha256.in_(shas[i:i + 500]))
                for sha, blob in c.execute(q):
                    names = seen.get(blob)
                    if names is None:
                        names = json.loads(zlib.decompress(blob))
                        names = seen[blob] = convert(names) if convert else names
                    out[sha] = names
        return out

    def published_meta(self, keys: list[tuple[str, str]], keep: bool = False) -> dict[tuple[str, str], tuple[dict, str]]:
        """(sha256, format) of published package files -> (control data, sha256 of the file as
        staged): a signed rpm's data is kept beside its signature, under the signed file's hash.
        `keep`: what is read from package_meta stays in `decoded` (as candidate() keeps it)."""
        out: dict[tuple[str, str], tuple[dict, str]] = {}
        rpms = sorted({s for s, f in keys if f == "rpm"})
        with self.engine.connect() as c:
            for i in range(0, len(rpms), 500):
                q = select(signed.c.sha256, signed.c.unsigned, signed.c.meta).where(signed.c.sha256.in_(rpms[i:i + 500]))
                out.update({(r.sha256, "rpm"): (r.meta, r.unsigned) for r in c.execute(q)})
            rest = [k for k in keys if k not in out]
            out.update({k: (m, k[0]) for k, m in _metas(c, rest, self.decoded, keep=keep).items()})
        return out

    def add_signed(self, rows: list[dict]) -> None:
        """rows: unsigned, sha256, size, md5, key, meta (the control data with the signed file's XML)."""
        with self.begin() as c:
            insert_rows(c, signed, rows)

    def signed_forms(self) -> dict[str, tuple[str, int, str]]:
        """sha256 of each rpm signed, as staged -> (sha256, size, md5) of its signed file."""
        with self.engine.connect() as c:
            rows = _fetch(c, select(signed.c.unsigned, signed.c.sha256, signed.c.size, signed.c.md5))[1]
        return {r[0]: tuple(r[1:]) for r in rows}

    def with_control(self, arts: list[Artifact], keep: bool = False, copy: bool = True) -> list[Artifact]:
        """`arts` with the control data of those read without it (packages whose meta is {}), as
        published (a signed rpm's is its signed file's). `keep`: as published_meta (verify keeps
        it: its history holds mostly the same files; a release does not: it reads a feed at a time).
        `copy=False`: filled in place (rows only the caller holds; no second object per row)."""
        keys = [(a.sha256, a.format) for a in arts if a.kind == "package" and not a.meta]
        metas = self.published_meta(keys, keep) if keys else {}
        if not copy:
            for a in arts:
                if not a.meta and (a.sha256, a.format) in metas:
                    a.meta = metas[(a.sha256, a.format)][0]
            return arts
        return [a.but(meta=metas[k][0]) if (k := (a.sha256, a.format)) in metas and not a.meta else a for a in arts]

    def save_payload_checks(self, rows: list[dict]) -> None:
        """rows: sha256, format, problems, setuid, files (list), unpacked, checked."""
        with self.begin() as c:
            for i in range(0, len(rows), 500):
                upsert(c, payload_checks, [dict(r, files=zlib.compress(json.dumps(r["files"]).encode(), 6))
                                           for r in rows[i:i + 500]], ["sha256"])


# rows per INSERT: a statement's parameters (control data as JSON) are all encoded before it runs,
# so a world's candidate in one statement held every package's control data twice
CHUNK = 2000


def insert_rows(conn, table, rows: list[dict]) -> None:
    """INSERT rows (dicts of the same columns) through the DB driver's executemany, JSON columns
    encoded as SQLAlchemy's JSON type encodes them: its processing of each row's parameters was
    more than half of storing a world's candidate (28,000 rows), the database's own work the rest."""
    if rows:
        _execute_rows(conn, insert(table), table, rows)


def upsert(conn, table, rows: list[dict], keys: list[str], replace: bool = True) -> None:
    """INSERT … ON CONFLICT (keys) DO UPDATE (or DO NOTHING): one statement, so concurrent writers on
    PostgreSQL cannot both see a key missing and both insert it. Through the driver as insert_rows
    (half of storing a 5,000-package stage's control data was SQLAlchemy's per-row processing)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as dialect_insert
    else:
        from sqlalchemy.dialects.sqlite import insert as dialect_insert
    q = dialect_insert(table)
    if replace:
        q = q.on_conflict_do_update(index_elements=keys, set_={c: q.excluded[c] for c in rows[0] if c not in keys})
    else:
        q = q.on_conflict_do_nothing(index_elements=keys)
    for i in range(0, len(rows), CHUNK):
        _execute_rows(conn, q, table, rows[i:i + CHUNK])


def _execute_rows(conn, stmt, table, rows: list[dict]) -> None:
    encode = {c.name for c in table.columns if isinstance(c.type, JSON)}
    compiled = stmt.compile(dialect=conn.dialect, column_keys=list(rows[0]))
    if compiled.positional:
        # (one C call per row, then the JSON columns: a generator over every column of every row was
        # a tenth of staging a world's build)
        keys = compiled.positiontup
        get = operator.itemgetter(*keys) if len(keys) > 1 else (lambda r: (r[keys[0]],))
        enc = [i for i, k in enumerate(keys) if k in encode]
        params = [get(r) for r in rows]
        if enc:
            dumps = json.dumps
            params = [tuple(dumps(v) if i in enc else v for i, v in enumerate(t)) if len(enc) > 1 else
                      t[:enc[0]] + (dumps(t[enc[0]]),) + t[enc[0] + 1:] for t in params]
    else:
        params = [{k: json.dumps(v) if k in encode else v for k, v in r.items()} for r in rows]
    conn.exec_driver_sql(str(compiled), params)


def _fetch(conn, stmt) -> tuple[list[str], list[tuple]]:
    """(column names, rows as the driver gives them) of `stmt`, run on the driver's own cursor:
    SQLAlchemy's processing of each row was most of reading 100,000s of them. Only for columns
    without result processing (JSON comes back as text on SQLite, decoded on PostgreSQL)."""
    comp = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = comp.construct_params()
    cur = conn.connection.driver_connection.cursor()
    try:
        cur.execute(str(comp), tuple(params[k] for k in comp.positiontup) if comp.positional else params)
        return [d[0] for d in cur.description], cur.fetchall()
    finally:
        cur.close()


def _rows_in(conn, cols: list, key, values: list, chunk: int = 500):
    """Rows (plain tuples) of `cols` whose `key` is one of `values`, `chunk` values a query, each
    query compiled once and run through the driver: SQLAlchemy compiling every chunk and processing
    every row was half of looking up a candidate's 110,000 paths among the published."""
    compiled: dict[int, object] = {}
    for i in range(0, len(values), chunk):
        part = values[i:i + chunk]
        q = compiled.get(len(part))
        if q is None:
            q = select(*cols).where(key.in_([bindparam(f"v{j}") for j in range(len(part))])).compile(dialect=conn.dialect)
            if any(not n.startswith("v") for n in (q.positiontup if q.positional else q.params)):
                raise TypeError("_rows_in: the columns take parameters of their own")    # (their processors would not run)
            compiled[len(part)] = q
        args = {f"v{j}": v for j, v in enumerate(part)}
        yield from conn.exec_driver_sql(str(q), tuple(args[n] for n in q.positiontup) if q.positional else args)


def _lines(conn, cids: list[int]) -> list[str]:
    """The lines of releases (released_files.line) of candidates `cids`."""
    return sorted({r or "" for r in conn.execute(select(candidates.c.series).where(candidates.c.id.in_(cids))).scalars()})


def _json_list(text: str) -> list:
    return [] if text == "[]" else json.loads(text)


def _digest(meta) -> str:
    return hashlib.sha1(json.dumps(meta, sort_keys=True).encode()).hexdigest()


def _metas(conn, keys: list[tuple[str, str]], decoded: dict, keep: bool = True) -> dict[tuple[str, str], dict]:
    """(sha256, format) -> control data, from package_meta (or `decoded`, what this process read;
    `keep`: add to it)."""
    out = {k: decoded[k] for k in keys if k in decoded}
    for fmt in {f for s, f in keys if (s, f) not in out}:
        shas = sorted({s for s, f in keys if f == fmt and (s, f) not in out})
        for i in range(0, len(shas), 500):
            q = select(package_meta.c.sha256, package_meta.c.meta).where(
                (package_meta.c.format == fmt) & package_meta.c.sha256.in_(shas[i:i + 500]))
            out.update({(r.sha256, fmt): shared(r.meta) for r in conn.execute(q)})
    if keep:
        decoded.update(out)
    return out


_ARTIFACT_FIELDS = tuple(f.name for f in dataclasses.fields(Artifact))
assert _ARTIFACT_FIELDS[-1] == "meta"


def _artifacts(conn, stmt, decoded: dict | None, keep: bool = True) -> list[Artifact]:
    """The artifact rows `stmt` (a select of artifacts' columns) gives, in its order; packages whose
    row holds no control data get package_meta's, unless `decoded` is None (else as _metas). The rows
    come through the driver: SQLAlchemy's processing of each (its JSON decoding above all) was two
    thirds of reading a world's candidate."""
    names, rows = _fetch(conn, stmt)
    at = {n: i for i, n in enumerate(names)}
    get = operator.itemgetter(*(at[k] for k in _ARTIFACT_FIELDS))     # (the columns of Artifact's fields)
    rows = [get(r) for r in rows]

    def meta(m):        # (JSON text on SQLite, decoded already by PostgreSQL's driver)
        return {} if m == "{}" else json.loads(m) if isinstance(m, str) else m
    arts = [Artifact(*r[:-1], meta(r[-1])) for r in rows]
    need = [(a.sha256, a.format) for a in arts if a.kind == "package" and a.meta == {}] if decoded is not None else []
    if need:
        metas = _metas(conn, need, decoded, keep)
        for a in arts:
            if a.kind == "package" and a.meta == {}:
                a.meta = metas.get((a.sha256, a.format), a.meta)
    return arts


def _store_metas(conn, pkgs: list[Artifact]) -> set[int]:
    """Put new packages' control data into package_meta; the id()s of those whose data differs from
    what is kept for the same file (they keep their own in the artifact row)."""
    known: dict[tuple[str, str], str] = {}
    for fmt in {a.format for a in pkgs}:
        shas = sorted({a.sha256 for a in pkgs if a.format == fmt})
        for i in range(0, len(shas), 500):
            q = select(package_meta.c.sha256, package_meta.c.digest).where(
                (package_meta.c.format == fmt) & package_meta.c.sha256.in_(shas[i:i + 500]))
            known.update({(r.sha256, fmt): r.digest for r in conn.execute(q)})
    new, own = [], set()
    for a in pkgs:
        d = _digest(a.meta)
        k = (a.sha256, a.format)
        if k not in known:
            known[k] = d
            new.append(dict(sha256=a.sha256, format=a.format, digest=d, name=a.name, version=a.version, meta=a.meta))
        elif known[k] != d:
            own.add(id(a))
    if new:     # another stager (another host) may add the same file meanwhile: its row stands
        upsert(conn, package_meta, new, ["sha256", "format"], replace=False)
    return own
