"""A year's grievance figures for the transparency report, from dated facts only so they stay fixed."""

from __future__ import annotations

import json
from datetime import date
from statistics import median

from sqlalchemy import and_, func, select

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


def _status_histories(conn) -> dict[str, list[tuple[str, str]]]:
    """Grievance id -> ``(time, status)`` after each triage, oldest first, as the audit trail records them."""
    histories: dict[str, list[tuple[str, str]]] = {}
    rows = conn.execute(select(audit_log.c.subject, audit_log.c.at, audit_log.c.details)
                        .where(audit_log.c.action == "grievance.triage").order_by(audit_log.c.seq))
    for subject, at, details in rows:
        try:
            status = (json.loads(details or "{}") or {}).get("status")
        except (ValueError, AttributeError):
            continue
        if isinstance(status, str):
            histories.setdefault(subject, []).append((at, status))
    return histories


def _closings(history: list[tuple[str, str]]) -> list[str]:
    """When a grievance moved from an open status to resolved or closed (resolved -> closed is no new one)."""
    found, before = [], "received"
    for at, status in history:
        if status in CLOSED and before not in CLOSED:
            found.append(at)
        before = status
    return found


def _status_at(history: list[tuple[str, str]], end: str) -> str:
    status = "received"
    for at, after in history:
        if at >= end:
            break
        status = after
    return status


def _closed_and_open(conn, start: str, end: str) -> tuple[list[int], int]:
    """The days from receipt each grievance closed in the year took (to its last closing in the year), and
    how many grievances were open at the year's end.

    Both come from the audit trail's triage entries, so reopening a grievance later (which clears its
    ``closed_at``) leaves an earlier year as published; a grievance whose stored status the trail does not
    end with (closed before the trail recorded it) counts by ``closed_at``.
    """
    histories = _status_histories(conn)
    days, still_open = [], 0
    for row in conn.execute(select(grievances.c.id, grievances.c.received_at, grievances.c.status,
                                   grievances.c.closed_at).where(grievances.c.received_at < end)):
        history = histories.get(row.id) or []
        if history and history[-1][1] == row.status:
            in_year = [at for at in _closings(history) if start <= at < end]
            if in_year:
                days.append(_days(row.received_at, in_year[-1]))
            still_open += _status_at(history, end) not in CLOSED
            continue
        if row.closed_at and start <= row.closed_at < end:
            days.append(_days(row.received_at, row.closed_at))
        # Closed before closed_at was recorded, and not backfilled: counts as closed.
        if (row.closed_at is None or row.closed_at >= end) and (row.status not in CLOSED or row.closed_at):
            still_open += 1
    return sorted(days), still_open


def for_year(conn, year: int) -> dict:
    """Counts for ``year``: received, assessed credible by year end, closed in the year (by closing
    date), still open at year end, the days each closing took, and grievances per action taken."""
    start, end = _bounds(year)
    received_ids = [r.id for r in conn.execute(select(grievances.c.id).where(
        grievances.c.received_at >= start, grievances.c.received_at < end))]
    days_to_close, still_open = _closed_and_open(conn, start, end)
    actions = dict(conn.execute(
        select(grievance_actions.c.action, func.count(func.distinct(grievance_actions.c.grievance_id)))
        .where(and_(grievance_actions.c.at >= start, grievance_actions.c.at < end),
               grievance_actions.c.action.in_(REPORTED_ACTIONS))
        .group_by(grievance_actions.c.action)).all())
    return {"received": len(received_ids), "credible": _credible_at_year_end(conn, received_ids, end),
            "closed": len(days_to_close), "open_at_year_end": still_open,
            "days_to_close": days_to_close,
            "actions": {a: actions.get(a, 0) for a in REPORTED_ACTIONS}}


def median_days(days: list[int]) -> float | int | None:
    """The median of ``days`` (a whole number where it is one), None for none."""
    if not days:
        return None
    value = median(days)
    return int(value) if float(value).is_integer() else value
