"""Grievance pages: the public report form and token lookup, and the reviewers' triage pages."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, current_app, flash, g, redirect, render_template, request, session, url_for
from sqlalchemy.exc import IntegrityError

from hrdd import openapi as oa
from hrdd.api.query import refuse_unknown_page_args
from hrdd.auth import public as open_to_all
from hrdd.services import current_services
from hrdd.workspace import grievance_followups, grievances, security, stale_forms
from hrdd.workspace.util import parse_iso
from hrdd.workspace.web import actor, make_blueprint, rate_limited, setting

# The character limits hold in any script: a character outside the BMP is 4 bytes of UTF-8, 12 once
# percent-encoded by a form (%F0%9F%98%80) or escaped in JSON as a surrogate pair (\ud83d\ude00); the
# envelope covers field names, separators and the CSRF token.
BYTES_PER_CHARACTER = 12
ENVELOPE = 4096
DEFAULT_MAX_BODY = sum(limit for _, limit in grievances.FIELDS.values()) * BYTES_PER_CHARACTER + ENVELOPE


def max_body() -> int:
    """The largest report accepted, in bytes (HRDD_GRIEVANCE_MAX_BODY; the default fits every field's limit)."""
    return int(setting("HRDD_GRIEVANCE_MAX_BODY", DEFAULT_MAX_BODY))


def too_large_message() -> str:
    """What a reporter whose report is over the size limit is told: the limits, and how to keep the text."""
    return ("Your report was not received: it is longer than this form accepts (" + grievances.limits_text()
            + "). Use your browser's Back button to return to your text, which it usually keeps, shorten it "
            "and send it again.")


def _stale_report():
    """A report sent from a page whose session expired or was lost: the form back, filled in, to send again.

    Only for a form on this site's page: another site must not get a report sent in someone's name.
    """
    if request.endpoint != "grievance_public.submit" or not stale_forms.from_this_site():
        return None
    values = _typed_report()
    if not any(values.values()):
        return None
    return _form_page(values, {}, expired=True, code=400)


public = make_blueprint("grievance_public", "/grievances", max_form_bytes=max_body, stale_form=_stale_report)
triage_bp = make_blueprint("grievance_triage", "/workspace/grievances")


@public.errorhandler(413)
def _too_large(exc):
    return render_template("workspace/error.html", title="Report too long", message=too_large_message()), 413


@public.errorhandler(429)
def _too_many(exc):
    """Over a rate limit: which limit was hit, and (for a report) the form back filled in, nothing stored."""
    limit = getattr(getattr(exc, "limit", None), "limit", None)
    said = (f"at most {limit} from one network address" if limit is not None
            else "only a limited number from one network address")
    if request.endpoint != "grievance_public.submit":
        return render_template("workspace/error.html", title="Too many attempts",
                               message=f"Too many requests from your network address: this page accepts {said}. "
                                       "Try again later."), 429
    notice = (f"Your report was not sent: this form accepts {said}, and that many have come from yours (people "
              "sharing a network, such as an office or a café, share the limit). Nothing you typed is lost: keep "
              "a copy of it and send it again later.")
    return _form_page(_typed_report(), {}, notice=notice, code=429)


# The form and POST /v1/grievances are two doors to one channel: they share one count per address (and so
# do the two doors for adding information), or using both would double the limit.
REPORTS_SCOPE, ADDITIONS_SCOPE = "grievance-reports", "grievance-additions"


def submit_limit() -> str:
    """The rate limit on new reports per client address (HRDD_GRIEVANCE_RATE_LIMIT)."""
    return setting("HRDD_GRIEVANCE_RATE_LIMIT", "5 per minute;30 per day")


def lookup_limit() -> str:
    """The rate limit on token look-ups per client address (HRDD_GRIEVANCE_LOOKUP_RATE_LIMIT)."""
    return setting("HRDD_GRIEVANCE_LOOKUP_RATE_LIMIT", "30 per minute")


def review_within_days(policy=None) -> int | None:
    """The policy's ``grievances.review_within_days``: the time frame reporters are told and the list flags
    (None when the policy sets none); ValueError for anything but a whole number of days."""
    policy = policy if policy is not None else current_services().policy
    value = (policy.section("grievances") or {}).get("review_within_days")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"grievances.review_within_days must be a whole number of days, 1 or more (got {value!r})")
    return value


def _waiting(rows: list[dict], within: int | None) -> None:
    """Add how many days each open report has waited since receipt, and whether it is still unreviewed
    past the policy's time frame."""
    today = datetime.now(UTC).date()
    for row in rows:
        open_ = row["status"] not in grievances.CLOSED
        row["waited_days"] = (today - parse_iso(row["received_at"]).date()).days if open_ else None
        row["overdue"] = bool(within and row["status"] == "received" and row["waited_days"] > within)


def _limits() -> dict[str, int]:
    return {key: limit for key, (_, limit) in grievances.FIELDS.items()}


def _typed_report() -> dict[str, str]:
    # A browser counts a line break as one character against maxlength but sends it as CRLF.
    return {key: request.form.get(key, "").replace("\r\n", "\n") for key in grievances.FIELDS}


SUBMISSION_MARK = "grievance_mark"  # the session's random mark that makes a resent report's token the same


def _submission_mark() -> str:
    if not isinstance(session.get(SUBMISSION_MARK), str):
        session[SUBMISSION_MARK] = grievances.new_submission_mark()
    return session[SUBMISSION_MARK]


def _form_page(values: dict, errors: dict, *, expired: bool = False, notice: str = "", code: int = 200):
    _submission_mark()
    return render_template("grievances/form.html", values=values, errors=errors, limits=_limits(),
                           labels=grievances.LABELS, expired=expired, notice=notice), code


@public.route("/", methods=["GET"])
@open_to_all("the public report form")
def form():
    """The public form for reporting suspected misuse."""
    return _form_page({}, {})


@public.route("/", methods=["POST"])
@open_to_all("public reports (CSRF token, rate limit, size bound)")
@rate_limited(submit_limit, scope=REPORTS_SCOPE)
def submit():
    """Accept a report from the public form and show the tracking token once (again for the same report sent
    twice from the browser: it is stored once)."""
    values = _typed_report()
    try:
        receipt = _store_report(values)
    except grievances.GrievanceError as exc:
        return _form_page(values, exc.errors, code=422)
    response = render_template("grievances/received.html", receipt=receipt, review_days=review_within_days())
    return response, 200 if receipt["duplicate"] else 201, {"Cache-Control": "no-store"}


def _store_report(values: dict) -> dict:
    """Store the report once: a double click's two requests, racing, both miss the other's row; the loser's
    insert breaks the unique token, and its retry finds the winner's report."""
    store, mark = current_services().store, _submission_mark()
    try:
        with store.begin() as conn:
            return grievances.submit(conn, values, submission=mark, secret=current_app.secret_key)
    except IntegrityError:
        pass
    with store.begin() as conn:
        return grievances.submit(conn, values, submission=mark, secret=current_app.secret_key)


@public.route("/status", methods=["GET", "POST"])
@open_to_all("a reporter follows a report with its tracking token; rate-limited")
@rate_limited(lookup_limit, methods=["POST"])
def status():
    """Follow a report with its tracking token (POST, so the token stays out of URLs and logs)."""
    result, error = None, None
    token = request.form.get("token", "")
    if request.method == "POST":
        with current_services().store.engine.connect() as conn:
            result = grievances.status_by_token(conn, token)
        if result is None:
            error = "No report has this tracking token. Check that it was copied completely."
    return _status_page(result, token if result else "", error=error, code=404 if error else 200)


def _status_page(result, token: str, *, error=None, information: str = "", added: bool = False,
                 errors: dict | None = None, code: int = 200):
    return render_template("grievances/status.html", result=result, token=token, error=error,
                           review_days=review_within_days(),
                           information=information, added=added, errors=errors or {},
                           max_update=grievances.MAX_UPDATE), code, {"Cache-Control": "no-store"}


@public.route("/status/information", methods=["POST"])
@open_to_all("a reporter adds information to a report with its tracking token; rate-limited, size-bounded")
@rate_limited(submit_limit, scope=ADDITIONS_SCOPE)
def add_information():
    """Add information to a report (what the reporter learnt since, evidence they describe), given its token."""
    token, information = request.form.get("token", ""), request.form.get("information", "")
    try:
        with current_services().store.begin() as conn:
            result = grievance_followups.add_reporter_update(conn, token, information)
    except grievances.GrievanceError as exc:
        with current_services().store.engine.connect() as conn:
            result = grievances.status_by_token(conn, token)
        return _status_page(result, token, information=information, errors=exc.errors, code=422)
    if result is None:
        # What was typed stays on the page: the reporter can copy it and try the token again.
        return _status_page(None, "", information=information, code=404,
                            error="No report has this tracking token, so nothing was added. Check that it was "
                                  "copied completely; what you wrote is below.")
    return _status_page(result, token, added=True, code=201)


PAGE_SIZE = 50


@triage_bp.route("/")
@security.login_required("reviewer")
def listing():
    """Grievances awaiting or under triage, oldest first, a page at a time, with how many match."""
    refuse_unknown_page_args(("status", "page"))
    status = request.args.get("status", "open")
    if status not in grievances.FILTERS:
        abort(400, grievances.bad_filter_message(status))
    raw_page = request.args.get("page", "1")
    if not (raw_page.isascii() and raw_page.isdigit() and 1 <= int(raw_page) <= 10**6):
        abort(400, f"Unknown page {raw_page[:40]!r}; use a whole number from 1")
    page = int(raw_page)
    with current_services().store.engine.connect() as conn:
        rows, total = grievances.listing(conn, status=status, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    within = review_within_days()
    _waiting(rows, within)
    prev_url = url_for(".listing", status=status, page=page - 1) if page > 1 else None
    next_url = url_for(".listing", status=status, page=page + 1) if page * PAGE_SIZE < total else None
    return render_template("grievances/list.html", rows=rows, status=status, statuses=grievances.STATUSES, within=within,
                           total=total, page=page, first=(page - 1) * PAGE_SIZE + 1, prev_url=prev_url,
                           next_url=next_url)


def _show(grievance_id: str, errors: dict | None = None, code: int = 200):
    with current_services().store.engine.connect() as conn:
        item = grievances.get(conn, grievance_id)
        # Linked deals, and those whose newest screening names the end-user as typed under Triage.
        deals = sorted(grievances.deals_concerned(conn, grievance_id)) if item else []
    if item is None:
        abort(404)
    return render_template("grievances/detail.html", g_=item, deals=deals, statuses=grievances.STATUSES,
                           actions=grievances.ACTIONS, action_labels=grievances.ACTION_LABELS,
                           errors=errors or {}), code


@triage_bp.route("/<grievance_id>")
@security.login_required("reviewer")
def detail(grievance_id: str):
    """One grievance with triage, links and actions."""
    return _show(grievance_id)


def _triage_changes(form) -> dict:
    """The triage fields the form sent (the page sends them all, pre-filled); one left out stays as stored."""
    changes = {key: form[key] for key in ("status", "public_note", "end_user_name", "end_user_country", "country")
               if key in form}
    if "credible" in form:
        changes["credible"] = {"yes": True, "no": False}.get(form["credible"])
    return changes


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
            grievances.triage(conn, grievance_id, actor(), **_triage_changes(request.form))
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
    "201": oa.html_page("The reference and tracking token, shown once"),
    "200": oa.html_page("The same report sent again: the one already stored, with its reference and token"),
    "400": oa.html_page("The page had expired: the form back, filled in, nothing stored"),
    "429": oa.html_page("Over the rate limit: the limit hit, and the form back, filled in, nothing stored"),
    "422": oa.html_page("The form with errors")}}
status.openapi = {
    "get": {"x-html": True, "responses": {"200": oa.html_page("The token form")}},
    "post": {"x-html": True, "requestBody": oa.form_body({"token": {"type": "string"}}, ("token",)),
             "responses": {"200": oa.html_page("The report's status"), "404": oa.html_page("Unknown token")}}}
add_information.openapi = {
    "x-html": True, "requestBody": oa.form_body({"token": {"type": "string"}, "information": {
        "type": "string", "maxLength": grievances.MAX_UPDATE}}, ("token", "information")),
    "responses": {"201": oa.html_page("The report's status, saying the information was added"),
                  "404": oa.html_page("Unknown token: nothing added, the text kept on the page"),
                  "422": oa.html_page("Nothing to add, or too long")}}
listing.openapi = {"parameters": [oa.query("status", {"type": "string", "enum": list(grievances.FILTERS)}),
                                  oa.query("page", {"type": "integer", "minimum": 1})],
                   "responses": {"200": oa.html_page("Grievances"), "302": oa.redirect("Not signed in")}}
detail.openapi = {"responses": {"200": oa.html_page("The grievance"), "302": oa.redirect("Not signed in")}}
save_triage.openapi = {"requestBody": oa.form_body({
    "status": {"type": "string", "enum": list(grievances.STATUSES)}, "credible": {"type": "string", "enum": ["yes", "no", ""]},
    "end_user_name": {"type": "string"}, "end_user_country": {"type": "string"}, "public_note": {"type": "string"},
    "country": {"type": "string"}},
    ()), "responses": _POSTED}
link.openapi = {"requestBody": oa.form_body({"transaction_id": {"type": "string"}}, ("transaction_id",)),
                "responses": _POSTED}
action.openapi = {"requestBody": oa.form_body({"action": {"type": "string", "enum": list(grievances.ACTIONS)},
                                               "outcome": {"type": "string"}}, ("action",)), "responses": _POSTED}
