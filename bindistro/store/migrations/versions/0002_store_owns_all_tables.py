"""The store owns every table; findings carry a rule.

Before, verify and cve created their tables themselves when first used, so an older DB may lack
some. They are created here when missing. Findings stored in reports gain `rule` (old ones:
`<gate>.unclassified`; their ids stay, so their waivers keep applying).

Revision ID: 0002
"""
import json

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def _create(name, *cols):
    if not sa.inspect(op.get_bind()).has_table(name):
        op.create_table(name, *cols)


def upgrade() -> None:
    _create("reports", sa.Column("candidate", sa.Integer, primary_key=True),
            sa.Column("created", sa.String, nullable=False), sa.Column("gates", sa.JSON, nullable=False),
            sa.Column("findings", sa.JSON, nullable=False))
    _create("waivers", sa.Column("candidate", sa.Integer, primary_key=True),
            sa.Column("finding", sa.String, primary_key=True), sa.Column("reason", sa.String, nullable=False),
            sa.Column("created", sa.String, nullable=False))
    _create("cve_records", sa.Column("id", sa.String, primary_key=True), sa.Column("source", sa.String, nullable=False),
            sa.Column("digest", sa.String, nullable=False), sa.Column("data", sa.JSON, nullable=False),
            sa.Column("imported", sa.String, nullable=False))
    _create("cve_scans", sa.Column("release", sa.String, primary_key=True), sa.Column("key", sa.String, primary_key=True),
            sa.Column("status", sa.String, nullable=False), sa.Column("data", sa.JSON, nullable=False),
            sa.Column("first_seen", sa.String, nullable=False), sa.Column("changed", sa.String, nullable=False))
    _create("cve_triage", sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("release", sa.String, nullable=False), sa.Column("cve", sa.String, nullable=False),
            sa.Column("package", sa.String, nullable=False), sa.Column("status", sa.String, nullable=False),
            sa.Column("justification", sa.String, nullable=False), sa.Column("note", sa.String, nullable=False),
            sa.Column("created", sa.String, nullable=False))
    conn = op.get_bind()
    reports = sa.table("reports", sa.column("candidate", sa.Integer), sa.column("findings", sa.JSON))
    for cand, findings in conn.execute(sa.select(reports.c.candidate, reports.c.findings)).all():
        findings = json.loads(findings) if isinstance(findings, str) else findings
        if any("rule" not in f for f in findings):
            for f in findings:
                f.setdefault("rule", f"{f['gate']}.unclassified")
            conn.execute(sa.update(reports).where(reports.c.candidate == cand).values(findings=findings))


def downgrade() -> None:
    raise NotImplementedError("bindistro does not go back: restore the state dir from its backup")
