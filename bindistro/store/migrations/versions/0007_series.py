"""A candidate's series (the spec's `series`): each series has its own releases and cumulative feeds.
NULL is the spec's first series: candidates and releases from before series belong to it.

Revision ID: 0007
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"


def upgrade() -> None:
    op.add_column("candidates", sa.Column("series", sa.String, nullable=True))


def downgrade() -> None:
    raise NotImplementedError("bindistro does not go back: restore the state dir from its backup")
