"""HTTP: screen a name (crm), the loaded lists, and reviewers' false-positive decisions (reviewer)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from marshmallow import ValidationError, fields, validate, validates

from hrdd.api.body import json_body
from hrdd.api.query import refuse_unknown_args
from hrdd.auth import require_role
from hrdd.errors import ApiError, not_found, validation_error
from hrdd.parties import allowlist, service, storage
from hrdd.parties.normalize import default_normaliser
from hrdd.schemas import Country, StrictSchema
from hrdd.services import current_services

bp = Blueprint("parties", __name__)


class ScreenNameSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=500))
    country = Country(load_default=None, allow_none=True)


class FalsePositiveSchema(StrictSchema):
    party_name = fields.String(required=True, validate=validate.Length(min=1, max=500))
    entry_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    list = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=100))
    reason = fields.String(required=True, validate=validate.Length(min=3, max=4000))
    expires_at = fields.AwareDateTime(load_default=None, allow_none=True)

    @validates("reason")
    def _reason_not_blank(self, value, **_):
        if not value.strip():
            raise ValidationError("The reason must say why this is not the listed party.")

    @validates("expires_at")
    def _expiry_in_future(self, value, **_):
        if value is not None and value <= storage.utcnow():
            raise ValidationError("The expiry must be in the future.")


class RevokeSchema(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(min=3, max=4000))


def _load(schema: StrictSchema, body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(422, "validation_error", "The body must be a JSON object")
    try:
        return schema.load(body)
    except ValidationError as exc:
        raise validation_error(exc.messages) from exc


def _context():
    services = current_services()
    return services.store, current_app.config["HRDD_DATA_DIR"], services.policy


@bp.post("/v1/parties/screen")
@require_role("crm")
def screen_party():
    """Screen one name (and optional country) against the restricted-party lists."""
    data = _load(ScreenNameSchema(), json_body())
    store, data_dir, policy = _context()
    result = service.screen_name(store, data_dir, policy, data["name"], data["country"])
    return jsonify({"name": data["name"], "country": data["country"], "list_version": result.list_version,
                    "matches": result.matches, "suppressed": result.suppressed})


screen_party.openapi = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "required": ["name"], "additionalProperties": False,
        "properties": {"name": {"type": "string", "maxLength": 500},
                       "country": {"type": "string", "description": "ISO 3166-1 alpha-2 code or name"}}}}}},
    "responses": {"200": {"description": "Matches at or above the possible-match threshold, best first; "
                                         "`suppressed` lists matches a reviewer marked as false positives"}},
}


@bp.get("/v1/parties/lists")
@require_role("crm", "reviewer", "export")
def list_versions():
    """Every loaded list version with its counts and date; `active` marks the ones screenings use."""
    store, data_dir, policy = _context()
    service.matcher_for(store, data_dir, policy)  # loads the shipped default into an empty store
    return jsonify({"versions": [_version_json(v) for v in storage.list_versions(store)]})


@bp.post("/v1/parties/false-positives")
@require_role("reviewer")
def create_false_positive():
    """Record that a party is not a listed entry (reason, optional expiry); the author is the caller."""
    data = _load(FalsePositiveSchema(), json_body())
    store, data_dir, policy = _context()
    try:
        with store.begin() as conn:
            fp_id = allowlist.record(conn, store, data_dir, policy, party_name=data["party_name"],
                                     entry_id=data["entry_id"], list_name=data["list"], reason=data["reason"].strip(),
                                     author=g.principal["name"], expires_at=data["expires_at"], actor=_actor())
    except allowlist.DecisionError as exc:
        if exc.status == 404:
            raise not_found("list entry", data["entry_id"]) from exc
        raise validation_error({exc.field: [str(exc)]}) from exc
    decision = storage.get_false_positive(store, fp_id)
    response = jsonify(_decision_json(decision, service.matcher_for(store, data_dir, policy).index))
    response.status_code = 201
    response.headers["Location"] = f"/v1/parties/false-positives/{fp_id}"
    return response


@bp.get("/v1/parties/false-positives")
@require_role("reviewer")
def list_false_positives():
    """Every false-positive decision (newest first) with its status; `?party=NAME` for one party."""
    refuse_unknown_args(("party",))
    store, data_dir, policy = _context()
    party = request.args.get("party")
    key = default_normaliser().normalise(party).key if party else None
    index = service.matcher_for(store, data_dir, policy).index
    return jsonify({"false_positives": [_decision_json(d, index) for d in storage.false_positives(store, key)]})


@bp.get("/v1/parties/false-positives/<int:fp_id>")
@require_role("reviewer")
def get_false_positive(fp_id: int):
    """One false-positive decision with its status."""
    store, data_dir, policy = _context()
    decision = storage.get_false_positive(store, fp_id)
    if decision is None:
        raise not_found("false-positive decision", str(fp_id))
    return jsonify(_decision_json(decision, service.matcher_for(store, data_dir, policy).index))


@bp.post("/v1/parties/false-positives/<int:fp_id>/revoke")
@require_role("reviewer")
def revoke_false_positive(fp_id: int):
    """Withdraw a decision (it stays on record as revoked); the party is flagged again."""
    data = _load(RevokeSchema(), json_body())
    store, data_dir, policy = _context()
    with store.begin() as conn:
        done = allowlist.revoke(conn, store, fp_id, by=g.principal["name"], reason=data["reason"].strip(),
                                actor=_actor())
    if not done:
        if storage.get_false_positive(store, fp_id) is None:
            raise not_found("false-positive decision", str(fp_id))
        raise ApiError(409, "already_revoked", f"False-positive decision {fp_id} is already revoked")
    decision = storage.get_false_positive(store, fp_id)
    return jsonify(_decision_json(decision, service.matcher_for(store, data_dir, policy).index))


def _actor() -> str:
    # The audit log's convention: user:NAME for people signed in, key:NAME for API keys.
    principal = g.principal
    return f"{'user' if principal.get('kind') == 'person' else 'key'}:{principal['name']}"


def _decision_json(decision: dict[str, Any], index) -> dict[str, Any]:
    now = storage.utcnow()
    current = [e for e in index.find(decision["entry_id"])
               if (index.source(e) or "").rsplit("@", 1)[0] == decision["list_name"]]
    if decision["revoked_at"] is not None:
        status = "revoked"
    elif decision["expires_at"] is not None and decision["expires_at"] <= now:
        status = "expired"
    elif not current:
        status = "entry_removed"
    elif index.entry_hash(current[0]) != decision["entry_hash"]:
        status = "entry_changed"  # the listing changed: the party is screened (and flagged) again
    else:
        status = "active"
    out = {k: _iso(v) if isinstance(v, datetime) else v for k, v in decision.items()}
    out["status"] = status
    return out


def _version_json(version: dict[str, Any]) -> dict[str, Any]:
    return {"id": version["id"], "name": version["name"], "label": f"{version['name']}@{version['id']}",
            "format": version["format"], "source_file": version["source_file"], "sha256": version["sha256"],
            "entries": version["entry_count"], "names": version["name_count"],
            "loaded_at": _iso(version["loaded_at"]), "loaded_by": version["loaded_by"], "active": version["active"]}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


_DECISION = {"type": "object", "additionalProperties": False, "required": ["party_name", "entry_id", "reason"],
             "properties": {"party_name": {"type": "string", "minLength": 1, "maxLength": 500},
                            "entry_id": {"type": "string", "minLength": 1, "maxLength": 200},
                            "list": {"type": "string", "maxLength": 100, "nullable": True},
                            "reason": {"type": "string", "minLength": 3, "maxLength": 4000},
                            "expires_at": {"type": "string", "format": "date-time", "nullable": True}}}
list_versions.openapi = {"responses": {"200": {"description": "Loaded list versions"}}}
create_false_positive.openapi = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": _DECISION}}},
    "responses": {"201": {"description": "The decision recorded"}}}
list_false_positives.openapi = {
    "parameters": [{"in": "query", "name": "party", "schema": {"type": "string", "maxLength": 500}}],
    "responses": {"200": {"description": "Decisions, newest first"}}}
get_false_positive.openapi = {"responses": {"200": {"description": "One decision"}}}
revoke_false_positive.openapi = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {
        "type": "object", "additionalProperties": False, "required": ["reason"],
        "properties": {"reason": {"type": "string", "minLength": 3, "maxLength": 4000}}}}}},
    "responses": {"200": {"description": "The decision, now revoked"}}}
