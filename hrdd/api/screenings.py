"""POST /v1/screenings and GET /v1/screenings/<id>: screen a canonical transaction, read it back."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from hrdd.api.body import json_body
from hrdd.api.query import refuse_unknown_args
from hrdd.auth import authenticate, require_role
from hrdd.errors import ApiError, not_found
from hrdd.services import current_services

bp = Blueprint("screenings", __name__)


@bp.post("/v1/screenings")
@require_role("crm")
def create_screening():
    """Screen a transaction; 201 with the stored screening, 200 on an idempotent replay."""
    # A misspelt dry_run would otherwise store the screening the caller meant only to try.
    refuse_unknown_args(("dry_run",))
    dry_run = _flag("dry_run")
    key = request.headers.get("Idempotency-Key")
    if key is not None and not 1 <= len(key) <= 255:
        raise ApiError(400, "bad_idempotency_key", "Idempotency-Key must be 1 to 255 characters",
                       {"Idempotency-Key": ["length must be 1..255"]})
    services = current_services()
    principal = authenticate()
    result, created = services.screen_and_store(json_body("the transaction"), idempotency_key=key, dry_run=dry_run,
                                                idempotency_scope=f"{principal['kind']}:{principal.get('id') or principal['name']}")
    if created:
        services.metrics.decisions.labels(result["decision"]).inc()
    status = 201 if created else 200
    response = jsonify(result)
    response.status_code = status
    if created:
        response.headers["Location"] = f"/v1/screenings/{result['id']}"
    return response


@bp.get("/v1/screenings/<screening_id>")
@require_role()
def get_screening(screening_id: str):
    """A stored screening as it was recorded, with its transaction's gate now (as POST answers it)."""
    services = current_services()
    result = services.store.get_screening(screening_id)
    if result is None:
        raise not_found("screening", screening_id)
    return jsonify(services.as_current(result))


_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _flag(name: str) -> bool:
    """A boolean query argument; 400 naming it and the accepted values for anything else."""
    value = request.args.get(name)
    if value is None or value.lower() in _FALSE:
        return False
    if value.lower() in _TRUE:
        return True
    raise ApiError(400, "bad_request", f"{name} must be true or false (or 1/0, yes/no, on/off), not {value[:40]!r}",
                   {name: [f"expected true or false, got {value[:40]!r}"]})
