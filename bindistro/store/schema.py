"""Every table of the metadata DB, in one place: the store owns the schema. Changing a table means
a new migration in migrations/versions/ (and SCHEMA_VERSION below), never an edit of an old one."""
from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Column, Float, Index, Integer, LargeBinary, MetaData, String, Table

SCHEMA_VERSION = "0010"     # the newest migration; migrate.ensure() brings a database there

md = MetaData()

filestat = Table(
    "filestat", md,
    Column("path", String, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("mtime_ns", BigInteger, nullable=False),
    Column("inode", BigInteger, nullable=False),
    Column("sha256", String, nullable=False),
    Column("md5", String, nullable=False),
)
candidates = Table(
    "candidates", md,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String, nullable=False),
    Column("created", String, nullable=False),
    Column("warnings", JSON, nullable=False, default=list),
    Column("series", String),       # the spec's series; NULL: the first (a candidate from before series)
)
artifacts = Table(
    "artifacts", md,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("candidate", Integer, nullable=False, index=True),
    Column("path", String, nullable=False),
    Column("kind", String, nullable=False),
    Column("sha256", String, nullable=False, index=True),
    Column("size", BigInteger, nullable=False),
    Column("md5", String, nullable=False),
    Column("format", String),
    Column("name", String),
    Column("version", String),
    Column("arch", String),
    Column("meta", JSON, nullable=False),
)
# a candidate's images, a release's image packages by name (migration 0010)
Index("ix_artifacts_candidate_kind_name", artifacts.c.candidate, artifacts.c.kind, artifacts.c.name)
releases = Table(
    "releases", md,
    Column("name", String, primary_key=True),
    Column("seq", Integer, nullable=False, unique=True),
    Column("candidate", Integer, nullable=False),
    Column("created", String, nullable=False),
)
# Each package file's first release in each line of releases (a series; '' for the spec's first,
# candidates from before series): the cumulative feeds without reading every release's whole build.
released_files = Table(
    "released_files", md,
    Column("line", String, primary_key=True),
    Column("format", String, primary_key=True),
    Column("arch", String, primary_key=True),
    Column("sha256", String, primary_key=True),
    Column("artifact", Integer, nullable=False),        # artifacts.id of its row in that first release
)
# Every file ever published, so no later command can replace one with other content.
published = Table(
    "published", md,
    Column("path", String, primary_key=True),
    Column("sha256", String, nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("release", String, nullable=False),
)
# rpm packages get their signature at release time; the signed file is what is published
signed = Table(
    "signed", md,
    Column("unsigned", String, primary_key=True),
    Column("sha256", String, nullable=False, index=True),       # published files are looked up by it
    Column("size", BigInteger, nullable=False),
    Column("md5", String, nullable=False),
    Column("meta", JSON, nullable=False),
    Column("key", String, nullable=False),
)
settings = Table(
    "settings", md,
    Column("key", String, primary_key=True),
    Column("value", String, nullable=False),
)

# --- verify: the last report per candidate and the waivers of its findings
reports = Table("reports", md, Column("candidate", Integer, primary_key=True), Column("created", String, nullable=False),
                Column("gates", JSON, nullable=False), Column("findings", JSON, nullable=False))
waivers = Table("waivers", md, Column("candidate", Integer, primary_key=True), Column("finding", String, primary_key=True),
                Column("reason", String, nullable=False), Column("created", String, nullable=False))

# --- a package file's control data (rpm: its createrepo XML chunks), once per (sha256, format): every
# candidate lists every package of its build, so a row per artifact grew the DB by tens of MB per
# candidate at distro scale. An artifact row's meta is {} when it is here (`digest`: of the JSON).
package_meta = Table("package_meta", md, Column("sha256", String, primary_key=True),
                     Column("format", String, primary_key=True), Column("digest", String, nullable=False),
                     Column("name", String, nullable=False), Column("version", String, nullable=False),
                     Column("meta", JSON, nullable=False))

# --- the payload gate's result per package object: objects never change, so each package version
# is unpacked and inspected once in its life (problems, file list zlib-compressed JSON, setuid files)
payload_checks = Table("payload_checks", md, Column("sha256", String, primary_key=True),
                       Column("format", String, nullable=False), Column("problems", JSON, nullable=False),
                       Column("setuid", JSON, nullable=False), Column("files", LargeBinary, nullable=False),
                       Column("unpacked", Integer, nullable=False), Column("checked", String, nullable=False))

# --- PSIRT: vulnerability records, scan results per release, triage history
cve_records = Table("cve_records", md, Column("id", String, primary_key=True), Column("source", String, nullable=False),
                    Column("digest", String, nullable=False), Column("data", JSON, nullable=False),
                    Column("imported", String, nullable=False))
cve_scans = Table("cve_scans", md, Column("release", String, primary_key=True), Column("key", String, primary_key=True),
                  Column("status", String, nullable=False), Column("data", JSON, nullable=False),
                  Column("first_seen", String, nullable=False), Column("changed", String, nullable=False))
cve_triage = Table("cve_triage", md, Column("seq", Integer, primary_key=True, autoincrement=True),
                   Column("release", String, nullable=False), Column("cve", String, nullable=False),
                   Column("package", String, nullable=False, default=""), Column("status", String, nullable=False),
                   Column("justification", String, nullable=False, default=""), Column("note", String, nullable=False, default=""),
                   Column("created", String, nullable=False))

# --- verify as jobs (verify/jobs.py): each job's findings until `verify --collect` merges them
verify_jobs = Table("verify_jobs", md, Column("candidate", Integer, primary_key=True), Column("job", String, primary_key=True),
                    Column("gate", String, nullable=False), Column("findings", JSON, nullable=False),
                    Column("host", String, nullable=False), Column("seconds", Float, nullable=False),
                    Column("created", String, nullable=False))
