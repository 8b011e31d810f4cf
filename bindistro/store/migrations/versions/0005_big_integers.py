"""Sizes, mtimes and inodes as 64-bit integers. SQLite's INTEGER always was; PostgreSQL's is 32-bit
(a file's mtime in nanoseconds, an image over 2 GB, a large inode number do not fit).

Revision ID: 0005
"""
import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"

COLUMNS = {"filestat": ("size", "mtime_ns", "inode"), "artifacts": ("size",), "published": ("size",),
           "signed": ("size",)}


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return          # nothing to change, and batch mode would copy every table for nothing
    for table, cols in COLUMNS.items():
        for col in cols:
            op.alter_column(table, col, type_=sa.BigInteger, existing_nullable=False)


def downgrade() -> None:
    raise NotImplementedError("bindistro does not go back: restore the state dir from its backup")
