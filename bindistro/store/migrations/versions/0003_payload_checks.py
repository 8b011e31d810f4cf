"""The payload gate's cache: one row per inspected package object.

Revision ID: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table("payload_checks", sa.Column("sha256", sa.String, primary_key=True),
                    sa.Column("format", sa.String, nullable=False), sa.Column("problems", sa.JSON, nullable=False),
                    sa.Column("setuid", sa.JSON, nullable=False), sa.Column("files", sa.LargeBinary, nullable=False),
                    sa.Column("unpacked", sa.Integer, nullable=False), sa.Column("checked", sa.String, nullable=False))


def downgrade() -> None:
    raise NotImplementedError("bindistro does not go back: restore the state dir from its backup")
