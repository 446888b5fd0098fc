"""Built-in plugin: the grievance channel (public reports, triage API) and its effect on screenings (RF-7.1)."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from marshmallow import Schema, ValidationError, fields, validate
from werkzeug.exceptions import RequestEntityTooLarge

from hrdd import openapi as oa
from hrdd.api.body import json_object
from hrdd.api.paging import page_args, page_parameters
from hrdd.api.query import refuse_unknown_args
from hrdd.auth import public, require_role
from hrdd.errors import ApiError, StartupError, not_found, validation_error
from hrdd.hookspecs import hookimpl
from hrdd.model import RedFlag
from hrdd.reference import country_locales
from hrdd.services import current_services
from hrdd.store import memoized
from hrdd.workspace import grievance_followups, grievances, views_grievances, web
from hrdd.workspace.similar_end_users import similar_open_credible
from hrdd.workspace.web import actor, rate_limited

api = Blueprint("grievances_api", __name__, url_prefix="/v1/grievances")
_max_body = views_grievances.max_body
LIST_DEFAULT, LIST_MAXIMUM = 100, 500


def _bounded_json() -> dict:
    """The JSON body, refusing anything over HRDD_GRIEVANCE_MAX_BODY bytes before it is read."""
    limit = _max_body()
    message = f"A report may be at most {limit} bytes: {grievances.limits_text()}"
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "payload_too_large", message)
    request.max_content_length = limit
    try:
        return json_object("the report")
    except RequestEntityTooLarge as exc:
        raise ApiError(413, "payload_too_large", message) from exc


@hookimpl
def hrdd_warm_up(app):
    """Load the translated country names the public form resolves reports with."""
    country_locales.warm_up()


@hookimpl
def hrdd_startup(app):
    """Refuse to start on a policy whose grievance time frame is not a whole number of days."""
    try:
        views_grievances.review_within_days(app.extensions["hrdd"].policy)
    except ValueError as exc:
        raise StartupError(f"{app.config.get('HRDD_POLICY_FILE', 'policy file')}: {exc}") from None


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
        return _possible_flag(transaction, context)
    listed = "; ".join(f"{g['id']} received {g['received_at'][:10]}, status {g['status'].replace('_', ' ')}"
                       for g in found)
    return [RedFlag(
        id="RF-7.1", step=7, severity=context.policy.severity("RF-7.1", "high"),
        title="An open, credible grievance concerns this end-user or transaction",
        evidence=f"{len(found)} open grievance(s) assessed as credible by a reviewer: {listed}",
        source="State Dept 2020 guidance, step 7 (grievance mechanisms); UNGP 29-31",
        data={"grievances": [g["id"] for g in found]})]


def _possible_flag(transaction, context) -> list[RedFlag] | None:
    """RF-7.1 (possible) when an open credible grievance names a similar end-user in the same country.

    Not a hold: a reviewer confirms it is this end-user (and links or re-triages the grievance, which holds
    the deal) or rules it out with a decision on the case.
    """
    store, end_user = context.store, transaction.end_user
    if "grievances.rf71_possible" not in context.cache:
        threshold = float(context.policy.section("grievances").get("possible_match_threshold", 88))
        with store.reading() as conn:
            context.cache["grievances.rf71_possible"] = (
                similar_open_credible(conn, name=end_user.name, country=end_user.country, threshold=threshold)
                if memoized(store.scope_memo(), "grievances.any_open", lambda: grievances.any_open_credible(conn))
                else [])
    similar = context.cache["grievances.rf71_possible"]
    if not similar:
        return None
    listed = "; ".join(f"{g['id']} about {g['end_user_name']!r} (similarity {g['score']}), received "
                       f"{g['received_at'][:10]}, status {g['status'].replace('_', ' ')}" for g in similar)
    return [RedFlag(
        id="RF-7.1", step=7, severity=context.policy.severity("RF-7.1-possible", "high"),
        title="An open, credible grievance may concern this end-user (a similar name in the same country)",
        evidence=(f"{end_user.name!r} ({end_user.country}) resembles the end-user of {len(similar)} open "
                  f"grievance(s) assessed as credible: {listed}. A reviewer confirms it is this end-user or "
                  "rules it out"),
        source="State Dept 2020 guidance, step 7 (grievance mechanisms); UNGP 29-31",
        data={"grievances": [g["id"] for g in similar], "possible": True})]


@hookimpl
def hrdd_gate_factors(transaction_id, screening, store):
    """Hold the transaction for re-review while an open credible grievance concerns its end-user."""
    end_user = ((screening or {}).get("transaction") or {}).get("end_user")
    found = _concerning(store, end_user=end_user, transaction_id=transaction_id)
    # A reviewer's decision overrides the engine's gate, not a hold (hookspecs.hrdd_gate_factors): say what
    # does lift it, so nobody waits on a re-review that cannot.
    return [{"kind": "hold", "reason": f"open credible grievance {g['id']} concerns this end-user or deal; "
             "a decision on the case does not lift this hold: close the grievance or mark it not credible "
             f"on its page, {views_grievances.triage_bp.url_prefix}/{g['id']}"} for g in found]


@api.post("")
@public("rightsholders and NGOs report misuse without an account; rate-limited and size-bounded")
@rate_limited(views_grievances.submit_limit, scope=views_grievances.REPORTS_SCOPE)
def submit():
    """Public: report suspected misuse (no key); returns the reference and a tracking token (201)."""
    body = _bounded_json()
    try:
        with current_services().store.begin() as conn:
            receipt = grievances.submit(conn, body)
    except grievances.GrievanceError as exc:
        raise validation_error({k: [v] for k, v in exc.errors.items()}, str(exc)) from exc
    receipt.pop("duplicate")
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


@api.post("/information")
@public("a reporter adds information to a report with the tracking token only they hold; rate-limited")
@rate_limited(views_grievances.submit_limit, scope=views_grievances.ADDITIONS_SCOPE)
def add_information():
    """Public: add information to a report, given its tracking token (`{"token", "information"}`); 201 with
    the report's status, 404 for an unknown token."""
    try:
        body = _AdditionSchema().load(_bounded_json())
    except ValidationError as exc:
        raise validation_error(exc.messages) from exc
    try:
        with current_services().store.begin() as conn:
            result = grievance_followups.add_reporter_update(conn, body["token"], body["information"])
    except grievances.GrievanceError as exc:
        raise validation_error({k: [v] for k, v in exc.errors.items()}, str(exc)) from exc
    if result is None:
        raise ApiError(404, "not_found", "No report has this tracking token; nothing was added")
    response = jsonify(result)
    response.headers["Cache-Control"] = "no-store"
    return response, 201


@api.get("")
@require_role("reviewer")
def listing():
    """Reviewer: one page of grievances, oldest first, with the total (`status=open|all|<status>`, `limit`,
    `offset`)."""
    refuse_unknown_args(("status", "limit", "offset"))
    status = request.args.get("status", "open")
    if status not in grievances.FILTERS:
        raise ApiError(400, "bad_request", grievances.bad_filter_message(status),
                       {"status": [f"expected one of {', '.join(grievances.FILTERS)}"]})
    limit, offset = page_args(LIST_DEFAULT, LIST_MAXIMUM)
    with current_services().store.engine.connect() as conn:
        rows, total = grievances.listing(conn, status=status, limit=limit, offset=offset)
    return jsonify({"grievances": rows, "total": total, "limit": limit, "offset": offset})


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
    """Reviewer: change `status`, `credible`, `end_user` `{"name","country"}`, `public_note` or `country`;
    fields left out keep their stored values, an explicit null clears them."""
    body = json_object()
    try:
        body = _TriageSchema().load(body)
    except ValidationError as exc:
        raise validation_error(exc.messages) from exc
    changes = {key: body[key] for key in ("status", "credible", "public_note", "country") if key in body}
    proposed = None
    if "end_user" in body:
        end_user = body["end_user"] or {}
        changes.update(end_user_name=end_user.get("name"), end_user_country=end_user.get("country"))
        proposed = grievances.proposed_key(end_user.get("name"), end_user.get("country"))
    _run(lambda conn: grievances.triage(conn, grievance_id, actor(), **changes),
         deals=lambda conn: grievances.deals_concerned(conn, grievance_id, (proposed,)),
         cause=f"triage of grievance {grievance_id}")
    return detail(grievance_id)


class _AdditionSchema(Schema):
    """What a reporter adds (types and presence here; emptiness and length by grievance_followups)."""

    token = fields.String(required=True, validate=validate.Length(max=100))
    information = fields.String(required=True)


class _EndUserRef(Schema):
    name = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=300))
    country = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=60))


class _TriageSchema(Schema):
    """A reviewer's triage of a grievance (types checked here, values by hrdd.workspace.grievances).

    No load defaults: a field left out must stay absent, so that the stored value is kept.
    """

    status = fields.String(validate=validate.Length(max=40))
    credible = fields.Boolean(allow_none=True, truthy={True}, falsy={False})
    end_user = fields.Nested(_EndUserRef, allow_none=True)
    public_note = fields.String(allow_none=True, validate=validate.Length(max=4000))
    country = fields.String(allow_none=True, validate=validate.Length(max=100))


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
_REPORT["properties"]["country"]["description"] = ("Where it happened, in the reporter's words (any language, "
                                                   "a region or 'unknown'); kept as written, with its ISO code "
                                                   "when it resolves")
submit.openapi = {"requestBody": oa.json_body(_REPORT),
                  "responses": {"201": oa.json_response("The reference and the tracking token (shown once)")}}
status.openapi = {"requestBody": oa.json_body({"type": "object", "required": ["token"],
                                               "properties": {"token": {"type": "string", "maxLength": 100}}}),
                  "responses": {"200": oa.json_response("Status, dates and the note the reporter may see")}}
add_information.openapi = {
    "requestBody": oa.json_body({"type": "object", "required": ["token", "information"], "properties": {
        "token": {"type": "string", "maxLength": 100},
        "information": {"type": "string", "minLength": 1, "maxLength": grievances.MAX_UPDATE}}}),
    "responses": {"201": oa.json_response("The report's status after the information was added")}}
listing.openapi = {"parameters": [oa.query("status", {"type": "string", "enum": list(grievances.FILTERS)}),
                                  *page_parameters(LIST_DEFAULT, LIST_MAXIMUM)],
                   "responses": {"200": oa.json_response("One page of grievances, oldest first, and the total")}}
detail.openapi = {"responses": {"200": oa.json_response("The grievance with its links and actions")}}
triage.openapi = {"requestBody": oa.json_body({
    "type": "object", "description": "Only the fields sent change: a field left out keeps its stored value, an "
    "explicit null clears it (credible: not assessed; end_user: no end-user linked, which lifts its hold; "
    "public_note: no note). end_user needs both name and country.", "properties": {
        "status": {"type": "string", "enum": list(grievances.STATUSES)},
        "credible": {"type": "boolean", "nullable": True},
        "end_user": {"type": "object", "nullable": True,
                     "properties": {"name": {"type": "string", "nullable": True}, "country": {"type": "string", "nullable": True}}},
        "public_note": {"type": "string", "nullable": True},
        "country": {"type": "string", "nullable": True, "description": "The report's country as an ISO 3166-1 "
                    "code or English name (the reporter's own text, country_text, is kept)"}}}),
    "responses": {"200": oa.json_response("The grievance after triage")}}
link.openapi = {"requestBody": oa.json_body({"type": "object", "required": ["transaction_id"],
                                             "properties": {"transaction_id": {"type": "string"}}}),
                "responses": {"200": oa.json_response("The grievance with the new link")}}
add_action.openapi = {"requestBody": oa.json_body({
    "type": "object", "required": ["action"],
    "properties": {"action": {"type": "string", "enum": list(grievances.ACTIONS)}, "outcome": {"type": "string"}}}),
    "responses": {"201": oa.json_response("The grievance with the action recorded")}}
