"""The dashboard (server-rendered SVG charts) and the transparency report pages."""

from __future__ import annotations

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
    """The ``year`` query argument (default: last year); 400 for anything but a year up to the current one,
    or for any other query argument (a misspelt ``yaer`` would otherwise show last year's report)."""
    refuse_unknown_page_args(("year",))
    try:
        return report_service.parse_year(request.args.get("year", ""))
    except ValueError as exc:
        abort(400, str(exc))


bp.add_app_template_filter(report_service.sentence_case, "sentence")


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


_YEAR = oa.query("year", {"type": "integer", "minimum": report_service.FIRST_YEAR},
                 "default: last year; at most the current year, whose report is marked as not yet ended")
dashboard.openapi = {"responses": {"200": oa.html_page("The dashboard"), "302": oa.redirect("Not signed in")}}
transparency_page.openapi = {"parameters": [_YEAR], "responses": {"200": oa.html_page("The report"),
                                                                   "302": oa.redirect("Not signed in")}}
transparency_docx.openapi = {"parameters": [_YEAR], "responses": {
    "200": {"description": "The report", "content": {oa.DOCX: {"schema": {"type": "string", "format": "binary"}}}},
    "302": oa.redirect("Not signed in")}}
