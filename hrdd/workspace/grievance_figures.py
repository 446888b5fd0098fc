"""A year's grievance figures for the transparency report, from dated facts only so they stay fixed."""

from __future__ import annotations

import json
from datetime import date
from statistics import median

from sqlalchemy import and_, func, or_, select

from hrdd.audit import audit_log
from hrdd.workspace.grievances import ACTIONS, CLOSED
from hrdd.workspace.tables import grievance_actions, grievances

# Actions the report counts; a "note" is bookkeeping, not something done about the misuse.
REPORTED_ACTIONS = tuple(a for a in ACTIONS if a != "note")


def _bounds(year: int) -> tuple[str, str]:
    # Stored times are ISO 8601 UTC strings, so comparing strings compares instants.
    return f"{year}-01-01", f"{year + 1}-01-01"


def _credible_at_year_end(conn, ids: list[str], end: str) -> int:
    """How many of ``ids`` the last triage before ``end`` assessed as credible (the audit trail keeps it)."""
    if not ids:
        return 0
    latest: dict[str, bool] = {}
    rows = conn.execute(select(audit_log.c.subject, audit_log.c.details)
                        .where(audit_log.c.action == "grievance.triage", audit_log.c.at < end,
                               audit_log.c.subject.in_(ids)).order_by(audit_log.c.seq))
    for subject, details in rows:
        try:
            latest[subject] = (json.loads(details or "{}") or {}).get("credible") is True
        except (ValueError, AttributeError):
            continue
    return sum(latest.values())


def _days(received_at: str, closed_at: str) -> int:
    return (date.fromisoformat(closed_at[:10]) - date.fromisoformat(received_at[:10])).days


def for_year(conn, year: int) -> dict:
    """Counts for ``year``: received, assessed credible by year end, closed in the year (by closing
    date), still open at year end, the days each closing took, and grievances per action taken."""
    start, end = _bounds(year)
    received_ids = [r.id for r in conn.execute(select(grievances.c.id).where(
        grievances.c.received_at >= start, grievances.c.received_at < end))]
    closed = conn.execute(select(grievances.c.received_at, grievances.c.closed_at).where(
        grievances.c.closed_at >= start, grievances.c.closed_at < end)).all()
    still_open = conn.execute(select(func.count()).select_from(grievances).where(
        grievances.c.received_at < end,
        or_(grievances.c.closed_at.is_(None), grievances.c.closed_at >= end),
        # A grievance closed before closed_at was recorded, and not backfilled, counts as closed.
        or_(grievances.c.status.not_in(CLOSED), grievances.c.closed_at.is_not(None)))).scalar_one()
    actions = dict(conn.execute(
        select(grievance_actions.c.action, func.count(func.distinct(grievance_actions.c.grievance_id)))
        .where(and_(grievance_actions.c.at >= start, grievance_actions.c.at < end),
               grievance_actions.c.action.in_(REPORTED_ACTIONS))
        .group_by(grievance_actions.c.action)).all())
    return {"received": len(received_ids), "credible": _credible_at_year_end(conn, received_ids, end),
            "closed": len(closed), "open_at_year_end": still_open,
            "days_to_close": sorted(_days(r, c) for r, c in closed),
            "actions": {a: actions.get(a, 0) for a in REPORTED_ACTIONS}}


def median_days(days: list[int]) -> float | int | None:
    """The median of ``days`` (a whole number where it is one), None for none."""
    if not days:
        return None
    value = median(days)
    return int(value) if float(value).is_integer() else value
