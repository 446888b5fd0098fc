"""Built-in plugin: the step 8 transparency report (`/v1/reports/transparency`, JSON, CSV, docx)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify, request

from hrdd import openapi as oa
from hrdd.api.query import refuse_unknown_args
from hrdd.auth import require_role
from hrdd.errors import ApiError
from hrdd.hookspecs import hookimpl
from hrdd.services import current_services
from hrdd.workspace import report_service, transparency

api = Blueprint("reports_api", __name__, url_prefix="/v1/reports")
FORMATS = ("json", "csv", "docx")
QUERY_ARGS = ("year", "format")


@hookimpl
def hrdd_register_routes(app):
    """`GET /v1/reports/transparency`."""
    app.register_blueprint(api)


@api.get("/transparency")
@require_role("reviewer")
def transparency_report():
    """Step 8 aggregates for `year` (default last year) as `format=json|csv|docx`, small cells suppressed."""
    # A misspelt argument (?yaer=, ?fromat=) would otherwise give last year's report as JSON without a word.
    refuse_unknown_args(QUERY_ARGS)
    raw = request.args.get("year", "").strip()
    if raw and (not re.fullmatch(r"[0-9]{4}", raw) or not 2000 <= int(raw) <= 2100):
        raise ApiError(400, "bad_request", f"year must be a four-digit year between 2000 and 2100 (got {raw!r})",
                       {"year": ["not a year"]})
    year = int(raw) if raw else datetime.now(UTC).year - 1
    fmt = request.args.get("format", "json")
    if fmt not in FORMATS:
        raise ApiError(400, "bad_request", f"format must be one of {', '.join(FORMATS)}", {"format": ["unknown"]})
    try:
        report = report_service.build_for_year(current_services(), year)
    except ValueError as exc:
        raise ApiError(500, "policy_error", str(exc)) from exc
    if fmt == "csv":
        return Response(transparency.to_csv(report), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="transparency-{year}.csv"'})
    if fmt == "docx":
        return Response(report_service.render_docx(report),
                        mimetype="application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                        headers={"Content-Disposition": f'attachment; filename="transparency-{year}.docx"'})
    return jsonify(report)


transparency_report.openapi = {
    "parameters": [oa.query("year", {"type": "integer", "minimum": 2000, "maximum": 2100}, "default: last year"),
                   oa.query("format", {"type": "string", "enum": list(FORMATS)})],
    "responses": {"200": {"description": "The report", "content": {
        "application/json": {"schema": {"type": "object"}}, "text/csv": {"schema": {"type": "string"}},
        oa.DOCX: {"schema": {"type": "string", "format": "binary"}}}},
        "400": {"description": "A year or format out of range, or a query parameter other than year and format "
                               "(`errors` names each one and lists the accepted ones)",
                "content": {"application/json": {"schema": "Error"}}}}}
