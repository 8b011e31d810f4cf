"""Baseline: the tables bindistro created before it recorded schema versions.

Revision ID: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def upgrade() -> None:
    # spelled out, not imported from schema.py: a migration is a snapshot and must not change later
    op.create_table("filestat", sa.Column("path", sa.String, primary_key=True),
                    sa.Column("size", sa.Integer, nullable=False), sa.Column("mtime_ns", sa.Integer, nullable=False),
                    sa.Column("inode", sa.Integer, nullable=False), sa.Column("sha256", sa.String, nullable=False),
                    sa.Column("md5", sa.String, nullable=False))
    op.create_table("candidates", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("source", sa.String, nullable=False), sa.Column("created", sa.String, nullable=False),
                    sa.Column("warnings", sa.JSON, nullable=False))
    op.create_table("artifacts", sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("candidate", sa.Integer, nullable=False, index=True),
                    sa.Column("path", sa.String, nullable=False), sa.Column("kind", sa.String, nullable=False),
                    sa.Column("sha256", sa.String, nullable=False, index=True),
                    sa.Column("size", sa.Integer, nullable=False), sa.Column("md5", sa.String, nullable=False),
                    sa.Column("format", sa.String), sa.Column("name", sa.String), sa.Column("version", sa.String),
                    sa.Column("arch", sa.String), sa.Column("meta", sa.JSON, nullable=False))
    op.create_table("releases", sa.Column("name", sa.String, primary_key=True),
                    sa.Column("seq", sa.Integer, nullable=False, unique=True),
                    sa.Column("candidate", sa.Integer, nullable=False), sa.Column("created", sa.String, nullable=False))
    op.create_table("published", sa.Column("path", sa.String, primary_key=True),
                    sa.Column("sha256", sa.String, nullable=False), sa.Column("size", sa.Integer, nullable=False),
                    sa.Column("release", sa.String, nullable=False))
    op.create_table("signed", sa.Column("unsigned", sa.String, primary_key=True),
                    sa.Column("sha256", sa.String, nullable=False), sa.Column("size", sa.Integer, nullable=False),
                    sa.Column("md5", sa.String, nullable=False), sa.Column("meta", sa.JSON, nullable=False),
                    sa.Column("key", sa.String, nullable=False))
    op.create_table("settings", sa.Column("key", sa.String, primary_key=True),
                    sa.Column("value", sa.String, nullable=False))


def downgrade() -> None:
    raise NotImplementedError("bindistro does not go back: restore the state dir from its backup")
