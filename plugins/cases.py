"""Built-in plugin: review cases for escalations, reviewer decisions as gate overrides, and the cases API."""

from __future__ import annotations

import sys

from flask import Blueprint, jsonify, request

from hrdd import material
from hrdd import openapi as oa
from hrdd.api.body import json_object
from hrdd.api.query import refuse_unknown_args
from hrdd.auth import require_role
from hrdd.errors import ApiError, not_found, validation_error
from hrdd.hookspecs import hookimpl
from hrdd.services import current_services
from hrdd.workspace import cases, deciding, decision_records
from hrdd.workspace.dual_control import dual_control_rules
from hrdd.workspace.web import actor

api = Blueprint("cases_api", __name__, url_prefix="/v1/cases")
DECISION_FIELDS = {"decision", "rationale", "conditions", "safeguards", "screening_id", "licence_reference"}
SECOND_APPROVAL_FIELDS = {"decision_id", "rationale", "screening_id"}


@hookimpl
def hrdd_startup(app):
    """Refuse to start on an invalid ``reviewer_decisions.dual_control`` policy section (naming the file)."""
    services = app.extensions["hrdd"]
    try:
        dual_control_rules(services.policy, services.reference.red_flags)
    except ValueError as exc:
        raise ValueError(f"policy file {services.policy.path}: {exc}") from exc


@hookimpl
def hrdd_screening_stored(screening, connection, store, policy):
    """Open a case, in the screening's own transaction, for every escalate and do_not_proceed."""
    cases.on_screening_stored(connection, screening, store.scope_memo(), material.rules_of(policy))


@hookimpl
def hrdd_gate_factors(transaction_id, screening, store, policy):
    """The reviewer decision in force (an override), or a hold while an escalation is undecided at order."""
    if transaction_id is None:
        return None  # a dry run of a deal never stored: it has no case and no decision to look up
    with store.reading() as conn:
        return cases.gate_factors(conn, transaction_id, screening, store.scope_memo(), material.rules_of(policy))


@hookimpl
def hrdd_register_routes(app):
    """`/v1/cases` (list, one case, decision)."""
    app.register_blueprint(api)


def _case_json(case: dict) -> dict:
    return {k: v for k, v in case.items() if k != "capabilities"} | {"capabilities": case.get("capability_list", [])}


@api.get("")
@require_role("reviewer")
def list_cases():
    """Cases, oldest first; filters: status (open|information_requested|awaiting_second_approval|decided|all), country, capability, age."""
    refuse_unknown_args(("status", "country", "capability", "age", "limit", "offset"))
    age = request.args.get("age")
    try:
        min_age = float(age) if age else None
        limit = int(request.args.get("limit", 100))
        offset = int(request.args.get("offset", 0))
    except ValueError as exc:
        raise ApiError(400, "bad_request", "age, limit and offset must be numbers") from exc
    # inf/nan ages overflowed date arithmetic and a negative LIMIT is an error on PostgreSQL: both were 500s.
    if min_age is not None and not 0 <= min_age <= 36500:
        raise ApiError(400, "bad_request", "age must be a number of days from 0 to 36500", {"age": ["out of range"]})
    if not 1 <= limit <= 500 or not 0 <= offset <= 10**9:
        raise ApiError(400, "bad_request", "limit must be 1 to 500 and offset 0 or more",
                       {"limit" if not 1 <= limit <= 500 else "offset": ["out of range"]})
    status = request.args.get("status", "open")
    if status not in cases.STATUSES + ("all",):
        raise ApiError(400, "bad_request", f"status must be one of {', '.join(cases.STATUSES + ('all',))}")
    with current_services().store.engine.connect() as conn:
        rows, total = cases.queue(conn, status=status, country=request.args.get("country"),
                                  capability=request.args.get("capability"), min_age_days=min_age,
                                  limit=limit, offset=offset)
    return jsonify({"cases": [_case_json(c) for c in rows], "total": total})


@api.get("/<case_id>")
@require_role("reviewer")
def get_case(case_id):
    """One case with its decisions and notes."""
    svc = current_services()
    with svc.store.engine.connect() as conn:
        case = cases.get_case(conn, case_id, rules=dual_control_rules(svc.policy),
                              material_rules=material.rules_of(svc.policy))
    if case is None:
        raise not_found("case", case_id)
    return jsonify(_case_json(case))


def _body(fields: set[str], example: str) -> dict:
    body = json_object(example)
    unknown = sorted(set(body) - fields)
    if unknown:
        raise validation_error({k: ["unknown field"] for k in unknown})
    for key in fields - {"safeguards"}:
        if body.get(key) is not None and not isinstance(body[key], str):
            raise validation_error({key: ["must be a string"]})
    if body.get("screening_id") is not None and not 0 < len(body["screening_id"]) <= 64:
        raise validation_error({"screening_id": ["must be a screening id (1 to 64 characters)"]})
    return body


def _refused(exc: cases.CaseError) -> ApiError:
    if exc.status == 422:
        return validation_error({k: [v] for k, v in exc.errors.items()}, str(exc))
    code = {409: "conflict", 403: "forbidden"}.get(exc.status, "refused")
    if "screening_id" in exc.errors and exc.status == 409:
        code = "screening_changed"
    return ApiError(exc.status, code, str(exc), {k: [v] for k, v in exc.errors.items()})


def _answer(svc, case: dict, decision: dict):
    """The decision recorded and the deal's gate now (its governing screening's, with hold reasons)."""
    latest = svc.store.latest_screening(case["transaction_id"])
    standing = svc.standing(case["transaction_id"], latest) if latest else {"gate": "hold", "hold_reasons": []}
    return jsonify({"decision": decision, "transaction_id": case["transaction_id"],
                    "screening_id": decision["screening_id"], **standing,
                    "second_approval": decision.get("second_approval")}), 201


@api.post("/<case_id>/decision")
@require_role("reviewer")
def decide(case_id):
    """Record a decision: approve, approve_with_conditions, decline or request_information, with rationale."""
    body = _body(DECISION_FIELDS, '{"decision", "rationale", ...}')
    safeguards = body.get("safeguards") or []
    if not isinstance(safeguards, list) or not all(isinstance(s, str) for s in safeguards):
        raise validation_error({"safeguards": ["must be a list of safeguard ids"]})
    svc = current_services()
    with svc.store.engine.connect() as conn:
        case = cases.get_case(conn, case_id)
    if case is None:
        raise not_found("case", case_id)
    cause = deciding.decision_cause(case_id, body.get("decision"))
    try:
        # A decision that moves the deal's gate, or asks for information, is written back to the CRM in the
        # same transaction. The screening decided on is read there, once the deal is locked (a screening
        # stored meanwhile waits).
        with svc.changing_gates([case["transaction_id"]], cause=cause,
                                tell_unchanged=deciding.written_back_always(body.get("decision"))) as conn:
            decision = deciding.decide(conn, case_id, outcome=body.get("decision") or "",
                                    rationale=body.get("rationale") or "", conditions=body.get("conditions") or "",
                                    safeguards=safeguards, actor=actor(), screening_id=body.get("screening_id"),
                                    licence_reference=body.get("licence_reference") or "",
                                    rules=dual_control_rules(svc.policy), catalogue=svc.safeguard_catalogue())
    except cases.CaseError as exc:
        raise _refused(exc) from exc
    return _answer(svc, case, decision)


@api.post("/<case_id>/second-approval")
@require_role("reviewer")
def second_approval(case_id):
    """Give the second approval a first approval under dual control awaits (a different reviewer)."""
    body = _body(SECOND_APPROVAL_FIELDS, '{"decision_id", "rationale"}')
    svc = current_services()
    with svc.store.engine.connect() as conn:
        case = cases.get_case(conn, case_id)
    if case is None:
        raise not_found("case", case_id)
    try:
        with svc.changing_gates([case["transaction_id"]],
                                cause=deciding.decision_cause(case_id, "second_approval")) as conn:
            decision = deciding.second_approve(conn, case_id, decision_id=body.get("decision_id") or "",
                                            rationale=body.get("rationale") or "", actor=actor(),
                                            screening_id=body.get("screening_id"),
                                            rules=material.rules_of(svc.policy))
    except cases.CaseError as exc:
        raise _refused(exc) from exc
    return _answer(svc, case, decision)


@hookimpl
def hrdd_register_commands(cli):
    """`hrdd rescreen`: post-sale monitoring with a progress bar."""
    import click
    from flask.cli import with_appcontext

    from hrdd import audit, rescreen
    from hrdd.model import STAGES

    @cli.command("rescreen")
    @click.option("--stage", "stages", multiple=True, type=click.Choice(STAGES),
                  help="Latest stage of the transactions to re-screen (repeatable; default: order, renewal and "
                       "post_sale, the deals sold, or every stage with --since-list-version).")
    @click.option("--since-list-version", default=None, metavar="V",
                  help="Only transactions not yet screened against restricted-party list version V "
                       "(last screened against an older version).")
    @click.option("--store-unchanged", is_flag=True,
                  help="Store a new screening even when nothing changed (a dated record of each check).")
    @click.option("--dry-run", is_flag=True,
                  help="Screen and compare, and list what would change; store nothing (no screening, case or "
                       "audit entry).")
    @with_appcontext
    def rescreen_command(stages, since_list_version, store_unchanged, dry_run):
        """Re-screen active transactions after reference data, lists or policy change (or on a schedule).

        Every changed decision opens a case that says what changed. Run it with --dry-run first to see which.
        """
        if dry_run and store_unchanged:
            raise click.UsageError("--dry-run stores nothing; leave out --store-unchanged")
        services = current_services()
        # A new list concerns every open deal, not only those already sold.
        stages = stages or (STAGES if since_list_version else rescreen.DEFAULT_STAGES)

        def progress(items):
            with click.progressbar(items, label="Re-screening", show_pos=True, file=sys.stderr) as bar:
                yield from bar

        result = rescreen.rescreen(services, stages=stages, since_list_version=since_list_version,
                                   store_unchanged=store_unchanged, actor=audit.cli_actor(), progress=progress,
                                   dry_run=dry_run)
        for change in result.changes:
            click.echo(f"{change.transaction_id}: {change.summary}")
        for error in result.errors:
            click.echo(f"error: {error}", err=True)
        if dry_run:
            click.echo(f"dry run: {result.examined} examined, {len(result.changes)} would be re-screened, "
                       f"{len(result.decision_changes)} with a changed decision (each would open a case), "
                       f"{len(result.errors)} errors; nothing was stored")
        else:
            click.echo(f"{result.examined} examined, {result.stored} new screenings, "
                       f"{len(result.decision_changes)} changed decisions (each opened a case), "
                       f"{len(result.errors)} errors"
                       + (f", {result.replayed} already stored by a concurrent run" if result.replayed else ""))
        if result.errors:
            raise SystemExit(1)


list_cases.openapi = {
    "parameters": [
        oa.query("status", {"type": "string", "enum": [*cases.STATUSES, "all"]}),
        oa.query("country", {"type": "string", "maxLength": 2}),
        oa.query("capability", {"type": "string", "maxLength": 64}),
        oa.query("age", {"type": "number", "minimum": 0, "maximum": 36500}, "only cases at least this many days old"),
        oa.query("limit", {"type": "integer", "minimum": 1, "maximum": 500}),
        oa.query("offset", {"type": "integer", "minimum": 0})],
    "responses": {"200": oa.json_response("Cases, oldest first, and how many match")}}
get_case.openapi = {"responses": {"200": oa.json_response("The case with its decisions and notes")}}
_SECOND_APPROVAL_STATE = {
    "type": "object", "nullable": True,
    "description": "Null when one reviewer's decision suffices. Else the two-person approval: status awaiting "
                   "(the gate stays held), given, or not_given (superseded before a second approval).",
    "properties": {"status": {"type": "string", "enum": ["awaiting", "given", "not_given"]},
                   "first_approval": {"type": "string"}, "first_approver": {"type": "string"},
                   "second_approval_id": {"type": "string", "nullable": True},
                   "second_approver": {"type": "string", "nullable": True},
                   "reasons": {"type": "array", "items": {"type": "string"}}}}
_DECIDED = {"type": "object", "properties": {
    "decision": {"type": "object", "properties": {
        "id": {"type": "string"}, "screening_id": {"type": "string"}, "outcome": {"type": "string"},
        "gate": {"type": "string"}, "decided_by": {"type": "string"},
        "licence_reference": {"type": "string", "nullable": True},
        "dual_control": {"type": "array", "items": {"type": "string"}},
        "second_approval_of": {"type": "string", "nullable": True},
        "second_approval": _SECOND_APPROVAL_STATE}},
    "transaction_id": {"type": "string"}, "screening_id": {"type": "string"},
    "gate": {"type": "string", "enum": ["release", "release_with_conditions", "hold", "block"]},
    "hold_reasons": {"type": "array", "items": {"type": "string"}},
    "review": {"type": "object", "nullable": True,
               "description": "The reviewer's decision in force (as GET /v1/transactions/{id} gives it)"},
    "outstanding_conditions": {"type": "array", "items": {"type": "string"}},
    "second_approval": _SECOND_APPROVAL_STATE}}
_SCREENING_SHOWN = {"type": "string", "minLength": 1, "maxLength": 64, "description": (
    "The screening the reviewer was shown (the case page's, or latest_screening_id). When another screening "
    "governs the deal now and differs in material facts or red flags, the decision is refused with 409 "
    "naming what changed; when it differs in nothing material, the decision is made on it. Omitted: the "
    "decision is made on whatever screening governs the deal now.")}
decide.openapi = {
    "requestBody": oa.json_body({
        "type": "object", "additionalProperties": False, "required": ["decision", "rationale"],
        "properties": {"decision": {"type": "string", "enum": list(decision_records.OUTCOMES)},
                       "rationale": {"type": "string", "minLength": cases.MIN_RATIONALE},
                       "conditions": {"type": "string"},
                       "safeguards": {"type": "array", "items": {"type": "string"}, "description": (
                           "Safeguard ids: the screening's safeguards or the safeguard catalogue's (the clause "
                           "library's clauses and technical parts); any other id is a 422 naming the accepted ones")},
                       "screening_id": _SCREENING_SHOWN,
                       "licence_reference": {"type": "string", "maxLength": cases.MAX_LICENCE_REFERENCE, "description": (
                           "Licence or authorisation reference (export licence, sanctions authorisation). Required "
                           "to approve a screening under the policy's dual control (reviewer_decisions.dual_control: "
                           "by default an embargo RF-4.4, a confirmed restricted-party match RF-4.3 or the engine's "
                           "do_not_proceed), which also allows at most approve_with_conditions and records the "
                           "approval as awaiting a second approval by a different reviewer "
                           "(POST /v1/cases/{case_id}/second-approval); the gate stays held until then")}}}),
    "responses": {"201": oa.json_response("The decision recorded and the transaction's gate now (gate, "
                                          "hold_reasons, review, outstanding_conditions)", _DECIDED),
                  "409": oa.json_response("The deal was screened again since the screening shown (screening_id) "
                                          "and the screening now differs: the message names what changed", "Error")}}
second_approval.openapi = {
    "requestBody": oa.json_body({
        "type": "object", "additionalProperties": False, "required": ["decision_id", "rationale"],
        "properties": {"decision_id": {"type": "string", "description": "The first approval awaiting a second one"},
                       "rationale": {"type": "string", "minLength": cases.MIN_RATIONALE},
                       "screening_id": _SCREENING_SHOWN}}),
    "responses": {"201": oa.json_response("The second approval recorded (now in force) and the gate now", _DECIDED),
                  "403": oa.json_response("The caller gave the first approval: a different reviewer must give "
                                          "the second", "Error"),
                  "409": oa.json_response("The decision is not awaiting a second approval, no longer covers the "
                                          "deal, or the deal was screened again and differs", "Error")}}
