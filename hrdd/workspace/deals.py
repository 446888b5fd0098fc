"""What the case queue shows of each case's deal now: its CRM reference, governing screening and value."""

from __future__ import annotations

import math

from sqlalchemy import func, select

from hrdd.store import governing_order
from hrdd.tables import screenings, transactions


def describe(conn, rows: list[dict]) -> None:
    """Add to each queue row its deal's ``reference``, governing screening (``latest_*``) and ``latest_value``.

    Eight cases of one end-user for one capability read alike; the CRM reference and the value tell them apart.
    """
    txn_ids = {row["transaction_id"] for row in rows}
    references = _references(conn, txn_ids)
    latest = _latest_screenings(conn, txn_ids)
    values = _values(conn, [s["id"] for s in latest.values()])
    for row in rows:
        now = latest.get(row["transaction_id"]) or {}
        row.update(reference=references.get(row["transaction_id"]),
                   latest_screening_id=now.get("id"), latest_stage=now.get("stage"),
                   latest_decision=now.get("decision"), latest_risk_score=now.get("risk_score"),
                   latest_value=values.get(now.get("id"), []))


def _references(conn, transaction_ids: set[str]) -> dict[str, dict]:
    if not transaction_ids:
        return {}
    rows = conn.execute(select(transactions.c.id, transactions.c.system, transactions.c.object_type,
                               transactions.c.object_id).where(transactions.c.id.in_(sorted(transaction_ids))))
    return {r.id: {"system": r.system, "object_type": r.object_type, "object_id": r.object_id} for r in rows}


def _latest_screenings(conn, transaction_ids: set[str]) -> dict[str, dict]:
    """Each transaction's governing screening (id, stage, decision, risk score): what a reviewer triages now.

    A case keeps what it was opened with; the deal may have moved on since (an order, a worse decision).
    """
    if not transaction_ids:
        return {}
    newest = func.row_number().over(partition_by=screenings.c.transaction_id, order_by=governing_order())
    ranked = (select(screenings.c.transaction_id, screenings.c.id, screenings.c.stage, screenings.c.decision,
                     screenings.c.risk_score, newest.label("newest"))
              .where(screenings.c.transaction_id.in_(sorted(transaction_ids))).subquery())
    rows = conn.execute(select(ranked).where(ranked.c.newest == 1)).mappings()
    return {row["transaction_id"]: dict(row) for row in rows}


def _values(conn, screening_ids: list[str]) -> dict[str, list[dict]]:
    """Each screening's deal value: quantity times unit price summed per currency (items without a price left out)."""
    if not screening_ids:
        return {}
    rows = conn.execute(select(screenings.c.id, screenings.c.request).where(screenings.c.id.in_(screening_ids)))
    return {r.id: deal_value(r.request) for r in rows}


def deal_value(request: dict | None) -> list[dict]:
    """``[{"currency": "USD", "amount": 250000.0}]``: a request's priced items summed per currency."""
    totals: dict[str, float] = {}
    for item in (request or {}).get("items") or ():
        price, quantity = item.get("unit_price"), item.get("quantity", 1)
        if not isinstance(price, int | float) or not isinstance(quantity, int | float):
            continue
        currency = str(item.get("currency") or "").upper() or "?"
        totals[currency] = totals.get(currency, 0.0) + float(price) * float(quantity)
    return [{"currency": c, "amount": a} for c, a in sorted(totals.items()) if math.isfinite(a)]
