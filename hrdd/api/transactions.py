"""GET /v1/transactions/<id>: a business reference's screenings across stages and its current gate."""

from __future__ import annotations

from flask import Blueprint, jsonify

from hrdd.api.paging import page_args
from hrdd.api.query import refuse_unknown_args
from hrdd.auth import require_role
from hrdd.errors import not_found
from hrdd.services import current_services

bp = Blueprint("transactions", __name__)

_SUMMARY_KEYS = ("id", "created_at", "stage", "decision", "gate", "risk", "conditions")
HISTORY_PAGE = 100  # screenings listed by default; ?limit= up to HISTORY_MAX
HISTORY_MAX = 1000


@bp.get("/v1/transactions/<transaction_id>")
@require_role()
def get_transaction(transaction_id: str):
    """The transaction, a page of its screenings newest first, and the gate the CRM should act on now."""
    refuse_unknown_args(("limit", "offset"))
    limit, offset = page_args(HISTORY_PAGE, HISTORY_MAX)
    services = current_services()
    record = services.store.get_transaction(transaction_id)
    if record is None:
        raise not_found("transaction", transaction_id)
    latest = services.store.latest_screening(transaction_id)
    page = services.store.screenings_of(transaction_id, limit=limit, offset=offset)
    total = services.store.count_screenings_of(transaction_id)
    record.update(
        **services.standing(transaction_id, latest), decision=latest["decision"], latest_screening_id=latest["id"],
        screenings=[{k: s.get(k) for k in _SUMMARY_KEYS} | {"flags": list(dict.fromkeys(f["id"] for f in s["red_flags"]))}
                    for s in page],
        screenings_total=total, limit=limit, offset=offset,
    )
    if offset + len(page) < total:
        record["next"] = f"/v1/transactions/{transaction_id}?limit={limit}&offset={offset + limit}"
    return jsonify(record)
