"""Verify jobs: each job's findings, stored by whichever host ran it, until --collect merges them.

Revision ID: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"


def upgrade() -> None:
    op.create_table("verify_jobs", sa.Column("candidate", sa.Integer, primary_key=True),
                    sa.Column("job", sa.String, primary_key=True), sa.Column("gate", sa.String, nullable=False),
                    sa.Column("findings", sa.JSON, nullable=False), sa.Column("host", sa.String, nullable=False),
                    sa.Column("seconds", sa.Float, nullable=False), sa.Column("created", sa.String, nullable=False))


def downgrade() -> None:
    raise NotImplementedError("bindistro does not go back: restore the state dir from its backup")
