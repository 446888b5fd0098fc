"""What a reporter adds to a report after sending it, with the tracking token only they hold."""

from __future__ import annotations

from sqlalchemy import insert, select, update

from hrdd import audit
from hrdd.workspace.grievances import (
    MAX_UPDATE,
    REPORTER_UPDATE,
    GrievanceError,
    status_by_token,
    token_hash,
)
from hrdd.workspace.tables import grievance_actions, grievances
from hrdd.workspace.util import now_iso


def add_reporter_update(conn, token: str, information) -> dict | None:
    """Add the holder's information to the report of ``token``; its status afterwards, None if no report has it.

    The text is kept with the grievance (the officer reads it among its actions), not in the audit trail,
    which records only that information was added and its length, as it does for the report itself.
    """
    row = None
    if isinstance(token, str) and 0 < len(token) <= 100:
        row = conn.execute(select(grievances.c.id).where(grievances.c.token_hash == token_hash(token.strip()))).first()
    if row is None:
        return None
    text = (information if isinstance(information, str) else "").replace("\r\n", "\n").strip()
    if not text:
        raise GrievanceError("Nothing was added: write the information to add",
                             {"information": "is required: write what you want to add"})
    if len(text) > MAX_UPDATE:
        raise GrievanceError(f"Nothing was added: the information is longer than {MAX_UPDATE:,} characters",
                             {"information": f"is longer than {MAX_UPDATE:,} characters (it has {len(text):,})"})
    at = now_iso()
    conn.execute(insert(grievance_actions).values(grievance_id=row.id, at=at, actor="reporter",
                                                  action=REPORTER_UPDATE, outcome=text))
    conn.execute(update(grievances).where(grievances.c.id == row.id).values(updated_at=at))
    audit.record(conn, "public", "grievance.reporter_update", row.id, {"characters": len(text)})
    return status_by_token(conn, token)
