"""Grievances record when they were closed (closed_at), so yearly figures count closings by their date.

The transparency report counted the grievances received in a year by their status now, so a report
received in December and closed in January changed the earlier year's figures when it was regenerated.
Backfill for grievances already resolved or closed: the time of the audit trail's ``grievance.triage``
entry that last moved the grievance from an open status to resolved or closed; where the audit trail has
no such entry, ``updated_at`` (which may be later than the closing if a link or an action followed).
Open grievances keep closed_at empty.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0708_grievance_closed_at"
down_revision = "0707_homoglyph_end_user_keys"
branch_labels = None
depends_on = None

CLOSED = ("resolved", "closed")
_grievances = sa.table("grievances", sa.column("id"), sa.column("status"), sa.column("updated_at"),
                       sa.column("closed_at"))
_audit = sa.table("audit_log", sa.column("seq"), sa.column("at"), sa.column("action"), sa.column("subject"),
                  sa.column("details"))


def _closings(conn) -> dict[str, str]:
    """Grievance id -> when the audit trail last shows it moving from open to resolved or closed."""
    closed_at: dict[str, str | None] = {}
    rows = conn.execute(sa.select(_audit.c.at, _audit.c.subject, _audit.c.details)
                        .where(_audit.c.action == "grievance.triage").order_by(_audit.c.seq))
    for at, subject, details in rows:
        try:
            status = (json.loads(details or "{}") or {}).get("status")
        except (ValueError, AttributeError):
            continue
        if status in CLOSED:
            closed_at[subject] = closed_at.get(subject) or at
        else:
            closed_at[subject] = None
    return {k: v for k, v in closed_at.items() if v}


def upgrade():
    op.add_column("grievances", sa.Column("closed_at", sa.String(32), nullable=True))
    conn = op.get_bind()
    closings = _closings(conn)
    for grievance_id, updated_at in conn.execute(sa.select(_grievances.c.id, _grievances.c.updated_at)
                                                 .where(_grievances.c.status.in_(CLOSED))).all():
        conn.execute(sa.update(_grievances).where(_grievances.c.id == grievance_id)
                     .values(closed_at=closings.get(grievance_id) or updated_at))


def downgrade():
    # Not a batch: SQLite would copy the table, and dropping the old one breaks the links' and actions'
    # foreign keys. SQLite 3.35+ and PostgreSQL both drop a plain column in place.
    op.drop_column("grievances", "closed_at")
