"""The reviewer workspace pages: sign-in, the case queue, the case page with its decision form."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, flash, g, redirect, render_template, request, url_for

from hrdd import audit, material
from hrdd import openapi as oa
from hrdd.api.query import refuse_unknown_page_args
from hrdd.auth import public
from hrdd.model import quantity_text
from hrdd.services import current_services
from hrdd.workspace import (
    cases,
    checklist_record,
    deciding,
    decision_records,
    falsepositives,
    queue_filters,
    security,
    stale_forms,
    users,
)
from hrdd.workspace.dual_control import awaiting_second_approval, dual_control_rules
from hrdd.workspace.util import parse_iso
from hrdd.workspace.web import actor, make_blueprint, rate_limited, setting

bp = make_blueprint("workspace", "/workspace", static=True)
CASE_HISTORY = 50  # screenings listed on a case page; the API pages through all of them


def _login_limit() -> str:
    return setting("HRDD_LOGIN_RATE_LIMIT", "10 per minute")


@bp.route("/login", methods=["GET", "POST"])
@public("the sign-in form (CSRF token, rate limit on POST)")
@rate_limited(_login_limit, methods=["POST"])
def login():
    """Sign in with name and password."""
    error = None
    if request.method == "POST":
        store = current_services().store
        with store.engine.connect() as conn:
            user = users.authenticate(conn, request.form.get("name", ""), request.form.get("password", ""))
        if user:
            security.sign_in(user, store)
            return stale_forms.resend_page() or redirect(security.safe_next(request.form.get("next"), user))
        error = "Name or password is wrong, or the account is disabled."
    return render_template("workspace/login.html", error=error, next=request.values.get("next", "")), \
        (401 if error else 200)


@bp.route("/logout", methods=["POST"])
@public("ends the caller's own session (CSRF token)")
def logout():
    """Sign out: the session ends in the store too, so a copy of the cookie signs no one in."""
    security.sign_out(current_services().store)
    return redirect(url_for("workspace.login"))


@bp.route("/")
@security.role_home
@security.login_required("reviewer")
def queue():
    """The case queue with filters (status, country, capability, age), oldest first."""
    refuse_unknown_page_args(("status", "country", "capability", "age", "page"))
    svc = current_services()
    capabilities = sorted(getattr(svc.reference, "capabilities", {}) or {})
    filters, page, problems = queue_filters.read(request.args, capabilities)
    with svc.store.engine.connect() as conn:
        rows, total = cases.queue(conn, **filters, limit=50, offset=(page - 1) * 50)
        counts = cases.counts_by_status(conn)
    # Paging links carry the filters as applied: a value not accepted is not carried on.
    args = {k: v for k, v in (("status", filters["status"]), ("country", filters["country"]),
                              ("capability", filters["capability"]), ("age", request.args.get("age")))
            if v and not (k == "age" and filters["min_age_days"] is None)}
    prev_url = url_for("workspace.queue", page=page - 1, **args) if page > 1 else None
    next_url = url_for("workspace.queue", page=page + 1, **args) if page * 50 < total else None
    return render_template("workspace/queue.html", cases=rows, total=total, filters=filters, page=page,
                           counts=counts, capabilities=capabilities, prev_url=prev_url, next_url=next_url,
                           problems=problems, status_choices=queue_filters.STATUS_CHOICES), 400 if problems else 200


def _load_case(case_id: str):
    svc = current_services()
    with svc.store.engine.connect() as conn:
        case = cases.get_case(conn, case_id, rules=dual_control_rules(svc.policy),
                              material_rules=material.rules_of(svc.policy))
        if case is None:
            abort(404)
        case["audit"] = audit.entries(conn, subject=case_id, limit=50)
    latest = svc.store.latest_screening(case["transaction_id"])
    return svc, case, latest


@bp.route("/cases/<case_id>")
@security.login_required("reviewer")
def case_page(case_id: str):
    """A case: the transaction, red flags with evidence, party matches, steps, history, decisions."""
    svc, case, latest = _load_case(case_id)
    history = svc.store.screenings_of(case["transaction_id"], limit=CASE_HISTORY)
    history_total = svc.store.count_screenings_of(case["transaction_id"]) if len(history) == CASE_HISTORY else len(history)
    gate, reasons = svc.gate_of(case["transaction_id"], latest) if latest else ("hold", [])
    with svc.store.engine.connect() as conn:
        marks = falsepositives.marks_for_case(conn, case_id)
    uploads, uploads_total = checklist_record.uploads_for_case(svc.store, latest)
    answers = ((latest or {}).get("transaction") or {}).get("answers") or {}
    return render_template(
        "workspace/case.html", case=case, screening=latest, history=history, history_total=history_total,
        gate=gate, reasons=reasons,
        transaction=svc.store.get_transaction(case["transaction_id"]), outcomes=decision_records.OUTCOME_LABELS,
        marks=marks, uploads=uploads, uploads_total=uploads_total,
        answer_sources=checklist_record.answer_sources(answers, uploads), min_rationale=cases.MIN_RATIONALE,
        errors=g.get("form_errors", {}),
        form=request.form if request.method == "POST" else {}, form_kind=g.get("form_kind"),
        me=actor())


def _shown_screening() -> str:
    """The screening id the posted form displayed; a form without one (a page served before hrdd said
    which) is refused like a changed screening: the reviewer reviews the page as it is now."""
    shown = request.form.get("screening_id", "").strip()
    if not shown:
        raise cases.CaseError("no screening", {"screening_id": (
            "This form did not say which screening it showed. Review the case as it is shown now and record "
            "the decision again.")}, status=409)
    return shown


@bp.route("/cases/<case_id>/decision", methods=["POST"])
@security.login_required("reviewer")
def decide(case_id: str):
    """Record the reviewer's decision (approve, approve with conditions, decline, request information).

    The form carries the id of the screening the page showed: a deal screened again since then with other
    facts or flags refuses the decision (409), showing the page as it is now with the reviewer's text kept.
    """
    svc, case, latest = _load_case(case_id)
    if latest is None:
        abort(409)
    try:
        shown = _shown_screening()
        outcome = request.form.get("decision")
        with svc.changing_gates([case["transaction_id"]], cause=deciding.decision_cause(case_id, outcome),
                                tell_unchanged=deciding.written_back_always(outcome)) as conn:
            decision = deciding.decide(
                conn, case_id, outcome=request.form.get("decision", ""), rationale=request.form.get("rationale", ""),
                conditions=request.form.get("conditions", ""), safeguards=request.form.getlist("safeguards"),
                licence_reference=request.form.get("licence_reference", ""), actor=actor(), screening_id=shown,
                rules=dual_control_rules(svc.policy), catalogue=svc.safeguard_catalogue())
    except cases.CaseError as exc:
        g.form_errors, g.form_kind = exc.errors, "decision"
        return case_page(case_id), exc.status
    if awaiting_second_approval(decision):
        flash("First approval recorded: it awaits a second approval by a different reviewer, and the gate stays "
              "held until then.")
    else:
        flash("Decision recorded.")
    return redirect(url_for("workspace.case_page", case_id=case_id))


@bp.route("/cases/<case_id>/second-approval", methods=["POST"])
@security.login_required("reviewer")
def second_approval(case_id: str):
    """Give the second approval that a first approval under dual control awaits (a different reviewer)."""
    svc, case, latest = _load_case(case_id)
    if latest is None:
        abort(409)
    try:
        shown = _shown_screening()
        with svc.changing_gates([case["transaction_id"]],
                                cause=deciding.decision_cause(case_id, "second_approval")) as conn:
            deciding.second_approve(conn, case_id, decision_id=request.form.get("decision_id", ""),
                                 rationale=request.form.get("rationale", ""), actor=actor(), screening_id=shown,
                                 rules=material.rules_of(svc.policy))
    except cases.CaseError as exc:
        g.form_errors, g.form_kind = exc.errors, "second_approval"
        return case_page(case_id), exc.status
    flash("Second approval recorded: the approval is in force.")
    return redirect(url_for("workspace.case_page", case_id=case_id))


@bp.route("/cases/<case_id>/false-positive", methods=["POST"])
@security.login_required("reviewer")
def false_positive(case_id: str):
    """Mark a restricted-party match as a false positive for this party (reason, optional expiry)."""
    svc, case, latest = _load_case(case_id)
    matches = (latest or {}).get("party_matches") or []
    try:
        index = int(request.form.get("match", "-1"))
        match = matches[index]
    except (ValueError, IndexError):
        abort(400)
    try:
        with svc.store.begin() as conn:
            falsepositives.mark(conn, svc, match=match, reason=request.form.get("reason", ""),
                                expires=request.form.get("expires", ""), author=actor(), case_id=case_id)
    except falsepositives.MarkError as exc:
        g.form_errors = {"false_positive": str(exc)}
        return case_page(case_id), 422
    flash(f"Marked {match.get('matched_name') or match.get('name')} as a false positive for "
          f"{match.get('party_name') or match.get('party') or 'this party'}.")
    return redirect(url_for("workspace.case_page", case_id=case_id) + "#matches")


@bp.route("/cases/<case_id>/note", methods=["POST"])
@security.login_required("reviewer")
def note(case_id: str):
    """Add a note to a case."""
    text = request.form.get("text", "").strip()
    svc = current_services()
    if text:
        with svc.store.begin() as conn:
            if cases.get_case(conn, case_id) is None:
                abort(404)
            cases.add_note(conn, case_id, actor(), text[:5000])
    return redirect(url_for("workspace.case_page", case_id=case_id) + "#notes")


@bp.app_template_filter("label")
def label_filter(value) -> str:
    """Turn an id like ``do_not_proceed`` into words."""
    return str(value or "").replace("_", " ")


@bp.app_template_filter("quantity")
def quantity_filter(value) -> str:
    """A quantity without a trailing ".0" (hrdd.model.quantity_text)."""
    return quantity_text(value)


@bp.app_template_filter("money")
def money_filter(value: dict) -> str:
    """``{"currency": "USD", "amount": 250000.0}`` as "USD 250,000" (cents only when there are any)."""
    amount = value.get("amount") or 0
    text = f"{amount:,.0f}" if float(amount).is_integer() else f"{amount:,.2f}"
    return f"{value.get('currency') or ''} {text}".strip()


@bp.app_template_filter("day")
def day_filter(value) -> str:
    """The date part of an ISO timestamp."""
    return str(value or "")[:10]


@bp.app_template_filter("age_days")
def age_days_filter(value) -> int:
    """Whole days since an ISO timestamp."""
    try:
        return (datetime.now(UTC) - parse_iso(str(value))).days
    except ValueError:
        return 0


_PAGE = {"200": oa.html_page("The page"), "302": oa.redirect("Not signed in: to the sign-in page")}
_POSTED = {"302": oa.redirect("Done: back to the case page"), "422": oa.html_page("The form with its errors")}
login.openapi = {
    "get": {"x-html": True, "parameters": [oa.query("next", {"type": "string"})],
            "responses": {"200": oa.html_page("The sign-in form")}},
    "post": {"x-html": True, "requestBody": oa.form_body(
        {"name": {"type": "string"}, "password": {"type": "string"}, "next": {"type": "string"}}, ("name", "password")),
        "responses": {"302": oa.redirect("Signed in"), "401": oa.html_page("Wrong name or password")}}}
logout.openapi = {"x-html": True, "requestBody": oa.form_body({}),
                  "responses": {"302": oa.redirect("Signed out: to the sign-in page")}}
queue.openapi = {"parameters": [
    oa.query("status", {"type": "string", "enum": [*cases.STATUSES, "all"]}),
    oa.query("country", {"type": "string"}), oa.query("capability", {"type": "string"}),
    oa.query("age", {"type": "number"}), oa.query("page", {"type": "integer"})], "responses": _PAGE}
case_page.openapi = {"responses": _PAGE}
_POSTED_DECISION = {**_POSTED, "409": oa.html_page("The deal was screened again since the page was shown and "
                                                   "differs (or the form named no screening): the page as it is now, "
                                                   "saying what changed, with the form's text kept"),
                    "403": oa.html_page("Not allowed (a second approval by the first approver: the page says so)")}
decide.openapi = {"requestBody": oa.form_body({
    "decision": {"type": "string", "enum": list(decision_records.OUTCOMES)}, "rationale": {"type": "string"},
    "conditions": {"type": "string"}, "safeguards": {"type": "array", "items": {"type": "string"}},
    "licence_reference": {"type": "string", "maxLength": cases.MAX_LICENCE_REFERENCE},
    "screening_id": {"type": "string", "description": "The screening the page showed"}},
    ("decision", "rationale", "screening_id")), "responses": _POSTED_DECISION}
second_approval.openapi = {"requestBody": oa.form_body({
    "decision_id": {"type": "string"}, "rationale": {"type": "string"},
    "screening_id": {"type": "string", "description": "The screening the page showed"}},
    ("decision_id", "rationale", "screening_id")), "responses": _POSTED_DECISION}
false_positive.openapi = {"requestBody": oa.form_body({
    "match": {"type": "integer"}, "reason": {"type": "string"}, "expires": {"type": "string", "format": "date"}},
    ("match", "reason")), "responses": _POSTED}
note.openapi = {"requestBody": oa.form_body({"text": {"type": "string", "maxLength": 5000}}, ("text",)),
                "responses": {"302": oa.redirect("Back to the case page")}}
