"""GET /v1/transactions/<id>: a business reference's screenings across stages and its current gate."""

from __future__ import annotations

from flask import Blueprint, jsonify

from hrdd.auth import require_role
from hrdd.errors import not_found
from hrdd.services import current_services

bp = Blueprint("transactions", __name__)

_SUMMARY_KEYS = ("id", "created_at", "stage", "decision", "gate", "risk", "conditions")


@bp.get("/v1/transactions/<transaction_id>")
@require_role()
def get_transaction(transaction_id: str):
    """The transaction, its screenings newest first, and the gate the CRM should act on now."""
    services = current_services()
    record = services.store.get_transaction(transaction_id)
    if record is None:
        raise not_found("transaction", transaction_id)
    screenings = services.store.screenings_of(transaction_id)
    latest = screenings[0]
    gate, reasons = services.gate_of(transaction_id, latest)
    record.update(
        gate=gate, hold_reasons=reasons, decision=latest["decision"], latest_screening_id=latest["id"],
        screenings=[{k: s.get(k) for k in _SUMMARY_KEYS} | {"flags": [f["id"] for f in s["red_flags"]]}
                    for s in screenings],
    )
    return jsonify(record)
