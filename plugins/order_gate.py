"""The quote-to-order gate: at order, renewal and post-sale, hold while a required rider is not executed
or facts changed.

The rider is required by the screening's conditions (policy ``conditions.rider_on``) and, whatever the
engine decided, by an approval that needed two reviewers (``reviewer_decisions.dual_control``: an embargo,
a confirmed restricted-party match, ``do_not_proceed``): its conditions of approval reach the customer in
the rider, so such a deal is held at the order until the rider is executed, as an escalated one is.

Also ``POST /v1/transactions/<id>/rider-executed`` (role ``contracts``) records who executed the rider
and when, for which screening's rider. An executed rider counts only while it covers the order
(``hrdd.rider_coverage``): the same end-user, nothing it does not name, and every clause the order requires.
A material change (end-user, party, item or country, and under the policy the intended use or a grown
quantity or value) since the last quote-stage screening holds the order until the deal is quoted again
on the new facts; each hold says exactly what is missing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Blueprint, current_app, g, jsonify
from marshmallow import Schema, ValidationError, fields, validate, validates

from hrdd import audit, material
from hrdd import openapi as oa
from hrdd import rider_coverage as coverage
from hrdd.adapters.tables import iso, new_id, now, rider_executions
from hrdd.api.body import json_object
from hrdd.auth import require_role
from hrdd.changes import material_changes
from hrdd.errors import not_found, validation_error
from hrdd.hookspecs import hookimpl
from hrdd.model import is_order_stage, stage_noun
from hrdd.workspace import cases, decision_records
from hrdd.workspace.web import actor

RIDER_CONDITION = "rider_executed"


def _execution(row) -> dict:
    return {"id": row["id"], "transaction_id": row["transaction_id"], "screening_id": row["screening_id"],
            "executed_by": row["executed_by"], "executed_at": iso(row["executed_at"]),
            "document_ref": row["document_ref"], "recorded_by": row["recorded_by"],
            "recorded_at": iso(row["recorded_at"])}


def _rider_hold(store, transaction_id: str, screening: dict, rules: material.Rules,
                approval: dict | None = None) -> str | None:
    """Why the order's rider does not count as executed, or None when an execution covers it.

    ``approval``: the two-reviewer approval that requires the rider when the screening does not.
    """
    if transaction_id is None:  # a dry run of a deal never stored: nothing can have been executed for it
        return (f"the contract rider this {stage_noun(screening.get('stage'))} requires is not recorded as "
                "executed (the deal is not stored yet)")
    with store.reading() as conn:
        executions = coverage.executions_with_basis(conn, transaction_id)
        if approval or not executions:
            override = approval
        else:
            override = decision_records.standing_override(conn, transaction_id, screening, store.scope_memo(), rules)
    review = (override or {}).get("review")
    if not executions:
        required_by = _this(screening) + (f" (approved by two reviewers, decision {approval['decision_id']})"
                                          if approval else "")
        return (f"the contract rider required by {required_by} is not recorded as executed "
                f"(POST /v1/transactions/{transaction_id}/rider-executed)")
    first_gap = None
    for execution, basis in executions:  # newest first
        if basis is None:
            continue
        gaps = coverage.gaps(basis, screening, rules)
        missing = coverage.review_gap(execution["executed_at"], review)
        gaps += [missing] if missing else []
        if not gaps:
            return None
        first_gap = first_gap or (execution, basis, gaps)
    if first_gap is None:
        return f"no recorded rider execution names a screening of transaction {transaction_id}"
    execution, basis, gaps = first_gap
    if screening.get("id") is None:
        noun = stage_noun(screening.get("stage"))
        return (f"the contract rider executed {execution['executed_at']} (for screening {basis['id']}) would not "
                f"cover this {noun}: {'; '.join(gaps)}; once the {noun} is screened, execute its rider and record it")
    return (f"the contract rider executed {execution['executed_at']} (for screening {basis['id']}) does not "
            f"cover screening {screening['id']}: {'; '.join(gaps)}; execute the rider of screening "
            f"{screening['id']} (GET /v1/screenings/{screening['id']}/rider.docx) and record it")


def _this(screening: dict) -> str:
    return f"screening {screening['id']}" if screening.get("id") else f"this {stage_noun(screening.get('stage'))}"


def _quote_before(store, transaction_id: str | None, screening: dict) -> dict | None:
    if transaction_id is None:
        return None
    # A dry run is not stored: every stored quote came before it.
    return store.latest_screening_before(transaction_id, screening.get("id"), "quote")


def _two_reviewer_approval(store, transaction_id: str | None, screening: dict,
                           rules: material.Rules) -> dict | None:
    """The approval in force for the screening when it needed two reviewers (a gate override), else None."""
    if transaction_id is None or screening.get("decision") not in cases.CASE_DECISIONS:
        return None  # only escalated or blocked screenings have cases a reviewer approves
    with store.reading() as conn:
        override = decision_records.standing_override(conn, transaction_id, screening, store.scope_memo(), rules)
    approved = override and override["gate"] in ("release", "release_with_conditions")
    return override if approved and override.get("dual_control") else None


@hookimpl
def hrdd_gate_factors(transaction_id, screening, store, policy):
    """Holds at order, renewal and post-sale: rider not executed; material change since the quote (saying which).

    At any stage whose screening (or two-reviewer approval) requires a rider, a ``met`` factor when an
    executed rider covers it; before the order, a ``condition`` factor when only the approval requires it
    and none does yet.
    """
    order_stage = is_order_stage(screening.get("stage"))
    by_screening = RIDER_CONDITION in (screening.get("conditions") or [])
    if not (by_screening or order_stage or screening.get("decision") in cases.CASE_DECISIONS):
        return None  # before the order, a deal no reviewer approves owes no rider the screening does not name
    rules = material.rules_of(policy)
    approval = None if by_screening else _two_reviewer_approval(store, transaction_id, screening, rules)
    if not by_screening and not approval and not order_stage:
        return None
    factors = []
    if by_screening or approval:
        # Before the order too: outstanding_conditions says whether an executed rider already covers the deal.
        reason = _rider_hold(store, transaction_id, screening, rules, approval)
        if reason is None:
            factors.append({"kind": "met", "condition": RIDER_CONDITION})
        elif order_stage:
            factors.append({"kind": "hold", "reason": reason, "condition": RIDER_CONDITION})
        elif approval:
            factors.append({"kind": "condition", "condition": RIDER_CONDITION})
    if not order_stage:
        return factors
    quote = _quote_before(store, transaction_id, screening)
    if quote is not None:
        changes = material_changes(quote, screening, rules)
        if changes:
            factors.append({"kind": "hold", "reason": (
                f"material change since the quote ({quote['id']}): {'; '.join(changes)}; "
                "quote the deal again on the new facts")})
    return factors


class RiderExecutedSchema(Schema):
    """Who executed the rider, when, and optionally which screening's rider and the signed document."""

    executed_by = fields.String(required=True, validate=validate.Length(min=1, max=200))
    executed_at = fields.AwareDateTime(required=True, default_timezone=UTC)
    screening_id = fields.String(load_default=None, validate=validate.Length(max=40))
    document_ref = fields.String(load_default=None, validate=validate.Length(max=500))

    class Meta:
        # Unknown fields are refused, as everywhere in the API.
        unknown = "raise"

    @validates("executed_at")
    def _not_future(self, value, **_kwargs):
        if value > datetime.now(UTC) + timedelta(minutes=5):
            raise ValidationError("executed_at is in the future")


bp = Blueprint("order_gate", __name__)


@bp.post("/v1/transactions/<transaction_id>/rider-executed")
@require_role("contracts")
def rider_executed(transaction_id: str):
    """Record that the contract rider was executed; answers with the record and the gate now."""
    services = current_app.extensions["hrdd"]
    if services.store.get_transaction(transaction_id) is None:
        raise not_found("transaction", transaction_id)
    body = json_object("{executed_by, executed_at}")
    try:
        data = RiderExecutedSchema().load(body)
    except ValidationError as exc:
        raise validation_error(exc.messages) from exc
    named = services.store.get_screening(data["screening_id"]) if data["screening_id"] else None
    if data["screening_id"] and (named or {}).get("transaction_id") != transaction_id:
        raise validation_error({"screening_id": [f"not a screening of transaction {transaction_id}"]})
    # Without one named, the rider executed is the one of the deal's newest screening when it was signed:
    # recorded as such, so facts screened after the signature (a new party, say) are not covered by it.
    moment = now()
    with services.store.reading() as conn:
        try:
            basis = coverage.execution_basis(conn, transaction_id, data["executed_at"], data["screening_id"])
        except coverage.ExecutionDateError as exc:
            raise validation_error({"executed_at": [str(exc)]}, f"executed_at {exc}") from exc
    record = {"id": new_id("rdx"), "transaction_id": transaction_id, "screening_id": basis,
              "executed_by": data["executed_by"].strip(), "executed_at": data["executed_at"],
              "document_ref": data["document_ref"], "recorded_by": g.principal["name"], "recorded_at": moment}
    # The gate may open: if it does, the CRM is told (hrdd_gate_changed), atomically with the record.
    cause = f"contract rider recorded as executed ({record['id']})"
    with services.changing_gates([transaction_id], cause=cause) as conn:
        conn.execute(rider_executions.insert().values(**record))
        audit.record(conn, actor(), "rider.executed", record["id"], {
            "transaction_id": transaction_id, "screening_id": basis, "executed_by": record["executed_by"],
            "executed_at": iso(data["executed_at"]), "document_ref": data["document_ref"]})
    latest = services.store.latest_screening(transaction_id)
    gate, reasons = services.gate_of(transaction_id, latest)
    response = jsonify({**_execution(record), "gate": gate, "hold_reasons": reasons})
    response.status_code = 201
    return response


@hookimpl
def hrdd_register_routes(app):
    """Add POST /v1/transactions/<id>/rider-executed."""
    app.register_blueprint(bp)


rider_executed.openapi = {
    "requestBody": oa.json_body({
        "type": "object", "additionalProperties": False, "required": ["executed_by", "executed_at"],
        "properties": {"executed_by": {"type": "string", "minLength": 1, "maxLength": 200},
                       "executed_at": {"type": "string", "format": "date-time", "description": (
                           "Without screening_id, not before the deal's first screening; with it, not before "
                           "that screening was created unless the deal had no screening then")},
                       "screening_id": {"type": "string", "maxLength": 40, "nullable": True, "description": (
                           "The screening whose rider was executed; default: the deal's newest at executed_at")},
                       "document_ref": {"type": "string", "maxLength": 500, "nullable": True}}}),
    "responses": {"201": oa.json_response("The execution record and the transaction's gate now")}}
