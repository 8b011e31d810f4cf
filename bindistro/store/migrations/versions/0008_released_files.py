"""Each package file's first release per line of releases, kept as releases are made: the cumulative
feeds were a GROUP BY over every artifact row of every release (a whole build each), which grew
with history (10,000-package builds: 0.18 s at release 2, 0.73 s at release 20). Filled here from
the releases there are.

Revision ID: 0008
"""
import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"


def upgrade() -> None:
    op.create_table("released_files", sa.Column("line", sa.String, primary_key=True),
                    sa.Column("format", sa.String, primary_key=True), sa.Column("arch", sa.String, primary_key=True),
                    sa.Column("sha256", sa.String, primary_key=True), sa.Column("artifact", sa.Integer, nullable=False))
    # min(id) is the first release's row: candidates (and their rows) are numbered in order, and a
    # release is always of a newer candidate than the one before it in its line
    op.execute("""
        INSERT INTO released_files (line, format, arch, sha256, artifact)
        SELECT COALESCE(c.series, ''), a.format, a.arch, a.sha256, MIN(a.id)
        FROM artifacts a JOIN releases r ON r.candidate = a.candidate JOIN candidates c ON c.id = a.candidate
        WHERE a.kind = 'package'
        GROUP BY COALESCE(c.series, ''), a.format, a.arch, a.sha256""")


def downgrade() -> None:
    raise NotImplementedError("bindistro does not go back: restore the state dir from its backup")
