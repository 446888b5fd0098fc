"""Grievance pages: the public report form and token lookup, and the reviewers' triage pages."""

from __future__ import annotations

from flask import abort, flash, g, redirect, render_template, request, url_for

from hrdd import openapi as oa
from hrdd.api.query import refuse_unknown_page_args
from hrdd.auth import public as open_to_all
from hrdd.services import current_services
from hrdd.workspace import grievances, security
from hrdd.workspace.web import actor, make_blueprint, rate_limited, setting

DEFAULT_MAX_BODY = 32 * 1024


def max_body() -> int:
    """The largest report accepted, in bytes (HRDD_GRIEVANCE_MAX_BODY, default 32 KiB)."""
    return int(setting("HRDD_GRIEVANCE_MAX_BODY", DEFAULT_MAX_BODY))


public = make_blueprint("grievance_public", "/grievances", max_form_bytes=max_body)
triage_bp = make_blueprint("grievance_triage", "/workspace/grievances")


def submit_limit() -> str:
    """The rate limit on new reports per client address (HRDD_GRIEVANCE_RATE_LIMIT)."""
    return setting("HRDD_GRIEVANCE_RATE_LIMIT", "5 per minute;30 per day")


def lookup_limit() -> str:
    """The rate limit on token look-ups per client address (HRDD_GRIEVANCE_LOOKUP_RATE_LIMIT)."""
    return setting("HRDD_GRIEVANCE_LOOKUP_RATE_LIMIT", "30 per minute")


@public.route("/", methods=["GET"])
@open_to_all("the public report form")
def form():
    """The public form for reporting suspected misuse."""
    return render_template("grievances/form.html", values={}, errors={})


@public.route("/", methods=["POST"])
@open_to_all("public reports (CSRF token, rate limit, size bound)")
@rate_limited(submit_limit)
def submit():
    """Accept a report from the public form and show the tracking token once."""
    values = {key: request.form.get(key, "") for key in grievances.FIELDS}
    try:
        with current_services().store.begin() as conn:
            receipt = grievances.submit(conn, values)
    except grievances.GrievanceError as exc:
        return render_template("grievances/form.html", values=values, errors=exc.errors), 422
    response = render_template("grievances/received.html", receipt=receipt)
    return response, 201, {"Cache-Control": "no-store"}


@public.route("/status", methods=["GET", "POST"])
@open_to_all("a reporter follows a report with its tracking token; rate-limited")
@rate_limited(lookup_limit, methods=["POST"])
def status():
    """Follow a report with its tracking token (POST, so the token stays out of URLs and logs)."""
    result, error = None, None
    if request.method == "POST":
        with current_services().store.engine.connect() as conn:
            result = grievances.status_by_token(conn, request.form.get("token", ""))
        if result is None:
            error = "No report has this tracking token. Check that it was copied completely."
    return render_template("grievances/status.html", result=result, error=error), \
        (404 if error else 200), {"Cache-Control": "no-store"}


@triage_bp.route("/")
@security.login_required("reviewer")
def listing():
    """Grievances awaiting or under triage, oldest first."""
    refuse_unknown_page_args(("status",))
    status = request.args.get("status", "open")
    with current_services().store.engine.connect() as conn:
        rows = grievances.listing(conn, status=status)
    return render_template("grievances/list.html", rows=rows, status=status, statuses=grievances.STATUSES)


def _show(grievance_id: str, errors: dict | None = None, code: int = 200):
    with current_services().store.engine.connect() as conn:
        item = grievances.get(conn, grievance_id)
    if item is None:
        abort(404)
    return render_template("grievances/detail.html", g_=item, statuses=grievances.STATUSES,
                           actions=grievances.ACTIONS, errors=errors or {}), code


@triage_bp.route("/<grievance_id>")
@security.login_required("reviewer")
def detail(grievance_id: str):
    """One grievance with triage, links and actions."""
    return _show(grievance_id)


def _credible(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


@triage_bp.route("/<grievance_id>/triage", methods=["POST"])
@security.login_required("reviewer")
def save_triage(grievance_id: str):
    """Save status, credibility, the end-user concerned and the note the reporter sees."""
    name, country = request.form.get("end_user_name"), request.form.get("end_user_country")
    try:
        # A grievance found credible (or no longer, or closed) moves the gates of its end-user's deals.
        with current_services().changing_gates(
                lambda conn: grievances.deals_concerned(conn, grievance_id, (grievances.proposed_key(name, country),)),
                cause=f"triage of grievance {grievance_id}") as conn:
            grievances.triage(conn, grievance_id, actor(), status=request.form.get("status", ""),
                              credible=_credible(request.form.get("credible", "")),
                              end_user_name=name, end_user_country=country,
                              public_note=request.form.get("public_note"))
    except grievances.GrievanceError as exc:
        return _show(grievance_id, exc.errors, 422)
    except LookupError:
        abort(404)
    flash("Triage saved.")
    return redirect(url_for(".detail", grievance_id=grievance_id))


@triage_bp.route("/<grievance_id>/link", methods=["POST"])
@security.login_required("reviewer")
def link(grievance_id: str):
    """Link the grievance to a stored transaction."""
    svc = current_services()
    txn_id = request.form.get("transaction_id", "").strip()
    if not txn_id or svc.store.get_transaction(txn_id) is None:
        return _show(grievance_id, {"transaction_id": f"no transaction {txn_id!r} is stored"}, 422)
    with svc.changing_gates([txn_id], cause=f"grievance {grievance_id} linked to the deal") as conn:
        if grievances.get(conn, grievance_id) is None:
            abort(404)
        grievances.link_transaction(conn, grievance_id, txn_id, actor())
    flash(f"Linked to {txn_id}.")
    return redirect(url_for(".detail", grievance_id=grievance_id))


@triage_bp.route("/<grievance_id>/action", methods=["POST"])
@security.login_required("reviewer")
def action(grievance_id: str):
    """Record an action taken (engage, corrective action, suspend support, terminate) and its outcome."""
    try:
        with current_services().store.begin() as conn:
            grievances.add_action(conn, grievance_id, actor(), request.form.get("action", ""),
                                  request.form.get("outcome", ""))
    except grievances.GrievanceError as exc:
        return _show(grievance_id, exc.errors, 422)
    except LookupError:
        abort(404)
    flash("Action recorded.")
    g.pop("form_errors", None)
    return redirect(url_for(".detail", grievance_id=grievance_id))


_REPORT_FORM = oa.form_body({k: {"type": "string", "maxLength": limit} for k, (_, limit) in grievances.FIELDS.items()},
                            ("subject_name", "description"))
_POSTED = {"302": oa.redirect("Saved: back to the grievance"), "422": oa.html_page("The page with the errors")}
form.openapi = {"x-html": True, "responses": {"200": oa.html_page("The report form")}}
submit.openapi = {"x-html": True, "requestBody": _REPORT_FORM, "responses": {
    "201": oa.html_page("The reference and tracking token, shown once"), "422": oa.html_page("The form with errors")}}
status.openapi = {
    "get": {"x-html": True, "responses": {"200": oa.html_page("The token form")}},
    "post": {"x-html": True, "requestBody": oa.form_body({"token": {"type": "string"}}, ("token",)),
             "responses": {"200": oa.html_page("The report's status"), "404": oa.html_page("Unknown token")}}}
listing.openapi = {"parameters": [oa.query("status", {"type": "string"})],
                   "responses": {"200": oa.html_page("Grievances"), "302": oa.redirect("Not signed in")}}
detail.openapi = {"responses": {"200": oa.html_page("The grievance"), "302": oa.redirect("Not signed in")}}
save_triage.openapi = {"requestBody": oa.form_body({
    "status": {"type": "string", "enum": list(grievances.STATUSES)}, "credible": {"type": "string", "enum": ["yes", "no", ""]},
    "end_user_name": {"type": "string"}, "end_user_country": {"type": "string"}, "public_note": {"type": "string"}},
    ("status",)), "responses": _POSTED}
link.openapi = {"requestBody": oa.form_body({"transaction_id": {"type": "string"}}, ("transaction_id",)),
                "responses": _POSTED}
action.openapi = {"requestBody": oa.form_body({"action": {"type": "string", "enum": list(grievances.ACTIONS)},
                                               "outcome": {"type": "string"}}, ("action",)), "responses": _POSTED}
