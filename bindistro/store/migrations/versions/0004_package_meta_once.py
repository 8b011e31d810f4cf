"""A package's control data once per (sha256, format), not once per candidate listing it.

Revision ID: 0004
"""
import hashlib
import json

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.create_table("package_meta", sa.Column("sha256", sa.String, primary_key=True),
                    sa.Column("format", sa.String, primary_key=True), sa.Column("digest", sa.String, nullable=False),
                    sa.Column("name", sa.String, nullable=False), sa.Column("version", sa.String, nullable=False),
                    sa.Column("meta", sa.JSON, nullable=False))
    conn = op.get_bind()
    arts = sa.table("artifacts", sa.column("id", sa.Integer), sa.column("kind", sa.String),
                    sa.column("sha256", sa.String), sa.column("format", sa.String), sa.column("name", sa.String),
                    sa.column("version", sa.String), sa.column("meta", sa.JSON))
    meta = sa.table("package_meta", sa.column("sha256", sa.String), sa.column("format", sa.String),
                    sa.column("digest", sa.String), sa.column("name", sa.String), sa.column("version", sa.String),
                    sa.column("meta", sa.JSON))
    seen: dict[tuple[str, str], str] = {}
    new, moved = [], []
    rows = conn.execute(sa.select(arts.c.id, arts.c.sha256, arts.c.format, arts.c.name, arts.c.version, arts.c.meta)
                        .where(arts.c.kind == "package").order_by(arts.c.id)).all()
    for aid, sha, fmt, name, version, m in rows:
        m = json.loads(m) if isinstance(m, str) else m
        digest = hashlib.sha1(json.dumps(m, sort_keys=True).encode()).hexdigest()
        if (sha, fmt) not in seen:
            seen[(sha, fmt)] = digest
            new.append(dict(sha256=sha, format=fmt, digest=digest, name=name, version=version, meta=m))
        if seen[(sha, fmt)] == digest:
            moved.append(aid)
    for i in range(0, len(new), 500):
        conn.execute(sa.insert(meta), new[i:i + 500])
    for i in range(0, len(moved), 500):
        conn.execute(sa.update(arts).where(arts.c.id.in_(moved[i:i + 500])).values(meta={}))


def downgrade() -> None:
    raise NotImplementedError("bindistro does not go back: restore the state dir from its backup")
