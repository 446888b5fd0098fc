"""Inbound CRM/ERP deliveries as an operator sees them: list by status, queue failed ones again."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from hrdd.adapters.tables import adapter_deliveries, iso, now

# What ``hrdd deliveries`` shows without --status: the deliveries that hold a deal and need someone.
NEEDS_ATTENTION = ("failed", "pending_enrichment", "queued", "invalid")
STATUSES = ("received", "queued", "pending_enrichment", "failed", "invalid", "stale", "screened")


def still_open():
    """True for a delivery no later delivery of the same record has been screened after.

    An invalid or failed delivery followed by a screened one holds nothing any more (the deal is judged on
    the newer state): it is history, not something for an operator to fix or an alert to fire on.
    """
    c, later = adapter_deliveries.c, adapter_deliveries.alias("later")
    return ~sa.exists().where(later.c.vendor == c.vendor, later.c.system == c.system,
                              later.c.object_type == c.object_type, later.c.object_id == c.object_id,
                              later.c.status == "screened", later.c.created_at > c.created_at)


def rows(store, statuses: tuple[str, ...] | None = NEEDS_ATTENTION, vendor: str | None = None,
         limit: int = 200, *, open_only: bool = False) -> list[dict[str, Any]]:
    """Recorded deliveries, oldest first, of the given statuses (None: all) and vendor.

    ``open_only``: leave out those a later screened delivery of the same record has superseded.
    """
    c = adapter_deliveries.c
    query = sa.select(c.vendor, c.delivery_id, c.status, c.system, c.object_type, c.object_id, c.attempts,
                      c.reason, c.screening_id, c.transaction_id, c.next_attempt_at, c.created_at,
                      c.updated_at).order_by(c.created_at, c.delivery_id).limit(limit)
    if statuses:
        query = query.where(c.status.in_(statuses))
    if vendor:
        query = query.where(c.vendor == vendor)
    if open_only:
        query = query.where(still_open())
    with store.engine.connect() as conn:
        found = [dict(r._mapping) for r in conn.execute(query)]
    for row in found:
        for key in ("next_attempt_at", "created_at", "updated_at"):
            row[key] = iso(row[key]) if row[key] is not None else None
    return found


def retry(store, vendor: str | None = None, delivery_id: str | None = None) -> int:
    """Queue failed deliveries (one, one vendor's, or all) for the worker to fetch and screen again.

    Only ``failed`` ones: they gave up fetching the record from the vendor, and a retry fetches its current
    state. An ``invalid`` delivery carries a record state that may be older than the deal's latest; after
    fixing the field map, save the record in the CRM again so it sends its current state.
    """
    c = adapter_deliveries.c
    where = [c.status == "failed"]
    if vendor:
        where.append(c.vendor == vendor)
    if delivery_id:
        where.append(c.delivery_id == delivery_id)
    with store.begin() as conn:
        # attempts 1, not 0: the first failure already told the CRM "hold" (not sent again), and a record
        # that turns out stale sends the deal's gate back in its place (pipeline._stale).
        done = conn.execute(adapter_deliveries.update().where(*where).values(
            status="pending_enrichment", attempts=1, next_attempt_at=now(), updated_at=now()))
    return int(done.rowcount or 0)
