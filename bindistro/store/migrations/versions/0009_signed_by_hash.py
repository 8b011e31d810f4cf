"""Signed rpms are looked up by the signed file's hash (the site's and the feed indexes' control
data of published files): without an index each 500-hash lookup read the whole table, its XML
included (0.07 s at 42,000 signed rpms; a world release made ~100 of them).

Revision ID: 0009
"""
from alembic import op

revision = "0009"
down_revision = "0008"


def upgrade() -> None:
    op.create_index("ix_signed_sha256", "signed", ["sha256"])


def downgrade() -> None:
    raise NotImplementedError("bindistro does not go back: restore the state dir from its backup")
