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
from hrdd.workspace import cases
from hrdd.workspace.web import actor

api = Blueprint("cases_api", __name__, url_prefix="/v1/cases")
DECISION_FIELDS = {"decision", "rationale", "conditions", "safeguards"}


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
    """Cases, oldest first; filters: status (open|information_requested|decided|all), country, capability, age."""
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
    with current_services().store.engine.connect() as conn:
        case = cases.get_case(conn, case_id)
    if case is None:
        raise not_found("case", case_id)
    return jsonify(_case_json(case))


@api.post("/<case_id>/decision")
@require_role("reviewer")
def decide(case_id):
    """Record a decision: approve, approve_with_conditions, decline or request_information, with rationale."""
    body = json_object('{"decision", "rationale", ...}')
    unknown = sorted(set(body) - DECISION_FIELDS)
    if unknown:
        raise validation_error({k: ["unknown field"] for k in unknown})
    safeguards = body.get("safeguards") or []
    if not isinstance(safeguards, list) or not all(isinstance(s, str) for s in safeguards):
        raise validation_error({"safeguards": ["must be a list of safeguard ids"]})
    for key in ("decision", "rationale", "conditions"):
        if body.get(key) is not None and not isinstance(body[key], str):
            raise validation_error({key: ["must be a string"]})
    svc = current_services()
    with svc.store.engine.connect() as conn:
        case = cases.get_case(conn, case_id)
    if case is None:
        raise not_found("case", case_id)
    latest = svc.store.latest_screening(case["transaction_id"])
    cause = cases.decision_cause(case_id, body.get("decision"))
    try:
        # A decision that moves the deal's gate is written back to the CRM in the same transaction.
        with svc.changing_gates([case["transaction_id"]], cause=cause) as conn:
            decision = cases.decide(conn, case_id, outcome=body.get("decision") or "",
                                    rationale=body.get("rationale") or "", conditions=body.get("conditions") or "",
                                    safeguards=safeguards, actor=actor(), screening=latest)
    except cases.CaseError as exc:
        raise validation_error({k: [v] for k, v in exc.errors.items()}, str(exc)) from exc
    return jsonify({"decision": decision, "transaction_id": case["transaction_id"],
                    **svc.standing(case["transaction_id"], latest)}), 201


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
    @with_appcontext
    def rescreen_command(stages, since_list_version, store_unchanged):
        """Re-screen active transactions after reference data, lists or policy change (or on a schedule).

        Every changed decision opens a case that says what changed.
        """
        services = current_services()
        # A new list concerns every open deal, not only those already sold.
        stages = stages or (STAGES if since_list_version else rescreen.DEFAULT_STAGES)

        def progress(items):
            with click.progressbar(items, label="Re-screening", show_pos=True, file=sys.stderr) as bar:
                yield from bar

        result = rescreen.rescreen(services, stages=stages, since_list_version=since_list_version,
                                   store_unchanged=store_unchanged, actor=audit.cli_actor(), progress=progress)
        for change in result.changes:
            click.echo(f"{change.transaction_id}: {change.summary}")
        for error in result.errors:
            click.echo(f"error: {error}", err=True)
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
decide.openapi = {
    "requestBody": oa.json_body({
        "type": "object", "additionalProperties": False, "required": ["decision", "rationale"],
        "properties": {"decision": {"type": "string", "enum": list(cases.OUTCOMES)},
                       "rationale": {"type": "string", "minLength": cases.MIN_RATIONALE},
                       "conditions": {"type": "string"},
                       "safeguards": {"type": "array", "items": {"type": "string"}}}}),
    "responses": {"201": oa.json_response("The decision recorded and the transaction's gate now (gate, hold_reasons, "
                                          "review, outstanding_conditions)")}}
