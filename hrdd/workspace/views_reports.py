"""The dashboard (server-rendered SVG charts) and the transparency report pages."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from flask import Response, abort, render_template, request

from hrdd import openapi as oa
from hrdd.api.query import refuse_unknown_page_args
from hrdd.services import current_services
from hrdd.workspace import charts, report_service, security, stats
from hrdd.workspace.web import make_blueprint

bp = make_blueprint("workspace_reports", "/workspace")


@bp.route("/dashboard")
@security.login_required("reviewer")
def dashboard():
    """Screenings and decisions over time, by country and capability; open cases by age."""
    svc = current_services()
    with svc.store.engine.connect() as conn:
        data = stats.dashboard(conn)
    names = {}
    for code, _ in data["by_country"]:
        try:
            names[code] = svc.reference.country(code).name
        except Exception:  # unknown codes are shown as the code itself
            names[code] = code
    outcome_rows = [(label, data["outcomes"].get(key, 0)) for key, label in
                    (("approve", "approved"), ("approve_with_conditions", "approved with conditions"),
                     ("request_information", "information requested"), ("decline", "declined"))]
    figures = {
        "over_time": charts.stacked_columns(
            "chart-over-time", "Screenings per month by decision", [p[2:] for p in data["periods"]],
            data["by_month"], charts.DECISION_COLOURS, width=1000, height=280),
        "by_country": charts.bar_chart("chart-country", "Screenings by end-user country (top 12)",
                                       [(f"{names[c]} ({c})", n) for c, n in data["by_country"]]),
        "by_capability": charts.bar_chart("chart-capability", "Screenings by capability (top 12)",
                                          [(c.replace("_", " "), n) for c, n in data["by_capability"]]),
        "case_ages": charts.bar_chart("chart-ages", "Open cases by age", data["case_ages"], colour="#E69F00"),
        "outcomes": charts.bar_chart("chart-outcomes", "Reviewer decisions (last 12 months)", outcome_rows,
                                     colour="#CC79A7"),
    }
    return render_template("workspace/dashboard.html", data=data, figures=figures)


def requested_year() -> int:
    """The ``year`` query argument (default: last year); 400 for anything but a plausible year, or for any
    other query argument (a misspelt ``yaer`` would otherwise show last year's report)."""
    refuse_unknown_page_args(("year",))
    raw = request.args.get("year", "").strip()
    if not raw:
        return datetime.now(UTC).year - 1
    if not re.fullmatch(r"[0-9]{4}", raw) or not 2000 <= int(raw) <= 2100:
        abort(400, f"year must be a four-digit year between 2000 and 2100 (got {raw!r})")
    return int(raw)


@bp.route("/reports/transparency")
@security.login_required("reviewer")
def transparency_page():
    """The transparency report for a year, as a page."""
    year = requested_year()
    report = report_service.build_for_year(current_services(), year)
    return render_template("workspace/transparency.html", report=report,
                           years=list(range(datetime.now(UTC).year, datetime.now(UTC).year - 6, -1)))


@bp.route("/reports/transparency.docx")
@security.login_required("reviewer")
def transparency_docx():
    """The transparency report for a year, as a Word document."""
    year = requested_year()
    body = report_service.render_docx(report_service.build_for_year(current_services(), year))
    return Response(body, mimetype="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                    headers={"Content-Disposition": f'attachment; filename="transparency-report-{year}.docx"'})


_YEAR = oa.query("year", {"type": "integer", "minimum": 2000, "maximum": 2100})
dashboard.openapi = {"responses": {"200": oa.html_page("The dashboard"), "302": oa.redirect("Not signed in")}}
transparency_page.openapi = {"parameters": [_YEAR], "responses": {"200": oa.html_page("The report"),
                                                                   "302": oa.redirect("Not signed in")}}
transparency_docx.openapi = {"parameters": [_YEAR], "responses": {
    "200": {"description": "The report", "content": {oa.DOCX: {"schema": {"type": "string", "format": "binary"}}}},
    "302": oa.redirect("Not signed in")}}
