"""Built-in plugin: the grievance channel (public reports, triage API) and its effect on screenings (RF-7.1)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from marshmallow import Schema, ValidationError, fields, validate
from werkzeug.exceptions import RequestEntityTooLarge

from hrdd import openapi as oa
from hrdd.api.body import json_object
from hrdd.api.query import refuse_unknown_args
from hrdd.auth import public, require_role
from hrdd.errors import ApiError, not_found, validation_error
from hrdd.hookspecs import hookimpl
from hrdd.model import RedFlag
from hrdd.services import current_services
from hrdd.store import memoized
from hrdd.workspace import grievances, views_grievances, web
from hrdd.workspace.web import actor, rate_limited

api = Blueprint("grievances_api", __name__, url_prefix="/v1/grievances")
_max_body = views_grievances.max_body


def _bounded_json() -> dict:
    """The JSON body, refusing anything over HRDD_GRIEVANCE_MAX_BODY bytes before it is read."""
    limit = _max_body()
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", f"A report may be at most {limit} bytes")
    request.max_content_length = limit
    try:
        return json_object("the report")
    except RequestEntityTooLarge as exc:
        raise ApiError(413, "payload_too_large", f"A report may be at most {limit} bytes") from exc


@hookimpl
def hrdd_register_routes(app):
    """The public form, the triage pages and `/v1/grievances`."""
    web.init_app(app)
    app.register_blueprint(views_grievances.public)
    app.register_blueprint(views_grievances.triage_bp)
    app.register_blueprint(api)


def _concerning(store, *, end_user: dict | None, transaction_id: str | None = None,
                find_transaction=None) -> list[dict]:
    key = (end_user.get("name") or "", end_user.get("country")) if end_user and end_user.get("name") else None
    with store.reading() as conn:
        # Nearly always there is no open credible grievance at all: one cheap query, then done (once per
        # request: the screening's check and its gate share the answer).
        if not memoized(store.scope_memo(), "grievances.any_open", lambda: grievances.any_open_credible(conn)):
            return []
        if transaction_id is None and find_transaction is not None:
            transaction_id = find_transaction()
        return grievances.open_credible(conn, end_user=key, transaction_id=transaction_id)


@hookimpl
def hrdd_check(transaction, context):
    """RF-7.1 when an open credible grievance concerns this end-user or this transaction."""
    store = context.store
    if store is None:
        return None
    ref = transaction.reference
    # Tailoring re-runs the checks on the same deal: look the grievances up once per screening.
    if "grievances.rf71" not in context.cache:
        context.cache["grievances.rf71"] = _concerning(
            store, end_user={"name": transaction.end_user.name, "country": transaction.end_user.country},
            find_transaction=lambda: store.find_transaction(ref.system, ref.object_type, ref.object_id))
    found = context.cache["grievances.rf71"]
    if not found:
        return None
    listed = "; ".join(f"{g['id']} received {g['received_at'][:10]}, status {g['status'].replace('_', ' ')}"
                       for g in found)
    return [RedFlag(
        id="RF-7.1", step=7, severity=context.policy.severity("RF-7.1", "high"),
        title="An open, credible grievance concerns this end-user or transaction",
        evidence=f"{len(found)} open grievance(s) assessed as credible by a reviewer: {listed}",
        source="State Dept 2020 guidance, step 7 (grievance mechanisms); UNGP 29-31",
        data={"grievances": [g["id"] for g in found]})]


@hookimpl
def hrdd_gate_factors(transaction_id, screening, store):
    """Hold the transaction for re-review while an open credible grievance concerns its end-user."""
    end_user = ((screening or {}).get("transaction") or {}).get("end_user")
    found = _concerning(store, end_user=end_user, transaction_id=transaction_id)
    return [{"kind": "hold", "reason": f"open credible grievance {g['id']} concerns this end-user; "
                                       "re-review required"} for g in found]


@api.post("")
@public("rightsholders and NGOs report misuse without an account; rate-limited and size-bounded")
@rate_limited(views_grievances.submit_limit)
def submit():
    """Public: report suspected misuse (no key); returns the reference and a tracking token (201)."""
    body = _bounded_json()
    try:
        with current_services().store.begin() as conn:
            receipt = grievances.submit(conn, body)
    except grievances.GrievanceError as exc:
        raise validation_error({k: [v] for k, v in exc.errors.items()}, str(exc)) from exc
    response = jsonify({**receipt, "status_url": "/v1/grievances/status"})
    response.headers["Cache-Control"] = "no-store"
    return response, 201


@api.post("/status")
@public("a reporter follows a report with the tracking token only they hold; rate-limited")
@rate_limited(views_grievances.lookup_limit)
def status():
    """Public: the status of one report, given its tracking token in the body (`{"token": ...}`)."""
    body = _bounded_json()
    with current_services().store.engine.connect() as conn:
        result = grievances.status_by_token(conn, body.get("token") if isinstance(body.get("token"), str) else "")
    if result is None:
        raise ApiError(404, "not_found", "No report has this tracking token")
    response = jsonify(result)
    response.headers["Cache-Control"] = "no-store"
    return response


@api.get("")
@require_role("reviewer")
def listing():
    """Reviewer: grievances, oldest first (`status=open|all|<status>`)."""
    refuse_unknown_args(("status",))
    with current_services().store.engine.connect() as conn:
        return jsonify({"grievances": grievances.listing(conn, status=request.args.get("status", "open"))})


@api.get("/<grievance_id>")
@require_role("reviewer")
def detail(grievance_id):
    """Reviewer: one grievance with links and actions."""
    with current_services().store.engine.connect() as conn:
        item = grievances.get(conn, grievance_id)
    if item is None:
        raise not_found("grievance", grievance_id)
    return jsonify(item)


def _run(fn, deals=(), cause: str = ""):
    """Run ``fn(connection)`` in one transaction; ``deals`` whose gate it may move are written back if it does."""
    try:
        with current_services().changing_gates(deals, cause=cause) as conn:
            fn(conn)
    except grievances.GrievanceError as exc:
        raise validation_error({k: [v] for k, v in exc.errors.items()}, str(exc)) from exc
    except LookupError as exc:
        raise not_found("grievance", str(exc)) from exc


@api.post("/<grievance_id>/triage")
@require_role("reviewer")
def triage(grievance_id):
    """Reviewer: `{"status", "credible": true|false|null, "end_user": {"name","country"}?, "public_note"?}`."""
    body = json_object()
    try:
        body = _TriageSchema().load(body)
    except ValidationError as exc:
        raise validation_error(exc.messages) from exc
    end_user = body.get("end_user") or {}
    proposed = grievances.proposed_key(end_user.get("name"), end_user.get("country"))
    _run(lambda conn: grievances.triage(conn, grievance_id, actor(), status=body.get("status") or "",
                                         credible=body.get("credible"), end_user_name=end_user.get("name"),
                                         end_user_country=end_user.get("country"),
                                         public_note=body.get("public_note")),
         deals=lambda conn: grievances.deals_concerned(conn, grievance_id, (proposed,)),
         cause=f"triage of grievance {grievance_id}")
    return detail(grievance_id)


class _EndUserRef(Schema):
    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=300))
    country = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=60))


class _TriageSchema(Schema):
    """A reviewer's triage of a grievance (types checked here, values by hrdd.workspace.grievances)."""

    status = fields.String(load_default="", validate=validate.Length(max=40))
    credible = fields.Boolean(load_default=None, allow_none=True, truthy={True}, falsy={False})
    end_user = fields.Nested(_EndUserRef, load_default=None, allow_none=True)
    public_note = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=4000))


@api.post("/<grievance_id>/links")
@require_role("reviewer")
def link(grievance_id):
    """Reviewer: link to a stored transaction `{"transaction_id"}`."""
    txn_id = json_object('{"transaction_id"}').get("transaction_id")
    if not isinstance(txn_id, str) or current_services().store.get_transaction(txn_id) is None:
        raise validation_error({"transaction_id": ["must name a stored transaction"]})

    def do(conn):
        if grievances.get(conn, grievance_id) is None:
            raise LookupError(grievance_id)
        grievances.link_transaction(conn, grievance_id, txn_id, actor())
    _run(do, deals=[txn_id], cause=f"grievance {grievance_id} linked to the deal")
    return detail(grievance_id)


@api.post("/<grievance_id>/actions")
@require_role("reviewer")
def add_action(grievance_id):
    """Reviewer: record an action `{"action": engage|request_corrective_action|suspend_support|terminate|note, "outcome"}`."""
    body = json_object('{"action", "outcome"}')
    _run(lambda conn: grievances.add_action(conn, grievance_id, actor(), str(body.get("action") or ""),
                                             str(body.get("outcome") or "")))
    return detail(grievance_id), 201


_REPORT = {"type": "object", "additionalProperties": False, "required": ["subject_name", "description"],
           "properties": {k: {"type": "string", "maxLength": limit} for k, (_, limit) in grievances.FIELDS.items()}}
_REPORT["properties"]["description"]["minLength"] = grievances.MIN_DESCRIPTION
submit.openapi = {"requestBody": oa.json_body(_REPORT),
                  "responses": {"201": oa.json_response("The reference and the tracking token (shown once)")}}
status.openapi = {"requestBody": oa.json_body({"type": "object", "required": ["token"],
                                               "properties": {"token": {"type": "string", "maxLength": 100}}}),
                  "responses": {"200": oa.json_response("Status, dates and the note the reporter may see")}}
listing.openapi = {"parameters": [oa.query("status", {"type": "string",
                                                     "enum": ["open", "all", *grievances.STATUSES]})],
                   "responses": {"200": oa.json_response("Grievances, oldest first")}}
detail.openapi = {"responses": {"200": oa.json_response("The grievance with its links and actions")}}
triage.openapi = {"requestBody": oa.json_body({
    "type": "object", "properties": {
        "status": {"type": "string", "enum": list(grievances.STATUSES)},
        "credible": {"type": "boolean", "nullable": True},
        "end_user": {"type": "object", "properties": {"name": {"type": "string"}, "country": {"type": "string"}}},
        "public_note": {"type": "string", "nullable": True}}}),
    "responses": {"200": oa.json_response("The grievance after triage")}}
link.openapi = {"requestBody": oa.json_body({"type": "object", "required": ["transaction_id"],
                                             "properties": {"transaction_id": {"type": "string"}}}),
                "responses": {"200": oa.json_response("The grievance with the new link")}}
add_action.openapi = {"requestBody": oa.json_body({
    "type": "object", "required": ["action"],
    "properties": {"action": {"type": "string", "enum": list(grievances.ACTIONS)}, "outcome": {"type": "string"}}}),
    "responses": {"201": oa.json_response("The grievance with the action recorded")}}
