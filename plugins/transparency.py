"""Built-in plugin: the step 8 transparency report (`/v1/reports/transparency`, `hrdd report transparency`)."""

from __future__ import annotations

import json
from pathlib import Path

import click
from flask import Blueprint, Response, current_app, jsonify, request
from flask.cli import with_appcontext

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


@hookimpl
def hrdd_register_commands(cli):
    """`hrdd report transparency [--year Y] [--format json|csv|docx] [-o FILE]`."""
    group = click.Group("report", help="Reports for publication.")
    cli.add_command(group)

    @group.command("transparency")
    @click.option("--year", default="", help="The calendar year (default: last year; at most the current one).")
    @click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
                  help="Default: from the output file's extension, else json.")
    @click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
                  help="Where to write it (docx needs a file); default: print it.")
    @with_appcontext
    def transparency_command(year, fmt, output):
        """Write the step 8 transparency report for a year, small cells suppressed as on the page and API."""
        try:
            year = report_service.parse_year(year)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--year") from exc
        fmt = fmt or (output.suffix.lstrip(".").lower() if output and output.suffix.lstrip(".").lower()
                      in FORMATS else "json")
        if fmt == "docx" and output is None:
            raise click.UsageError("a Word document needs -o FILE.docx")
        report = report_service.build_for_year(current_app.extensions["hrdd"], year)
        body = (report_service.render_docx(report) if fmt == "docx" else
                (transparency.to_csv(report) if fmt == "csv"
                 else json.dumps(report, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
        if output is None:
            click.echo(body.decode("utf-8"), nl=False)
            return
        output.write_bytes(body)
        click.echo(f"wrote {output} ({len(body)} bytes): the {fmt} transparency report for {year}"
                   + ("" if report["complete"] else f" ({report['period_note']})"), err=True)


@api.get("/transparency")
@require_role("reviewer")
def transparency_report():
    """Step 8 aggregates for `year` (default last year) as `format=json|csv|docx`, small cells suppressed."""
    # A misspelt argument (?yaer=, ?fromat=) would otherwise give last year's report as JSON without a word.
    refuse_unknown_args(QUERY_ARGS)
    try:
        year = report_service.parse_year(request.args.get("year", ""))
    except ValueError as exc:
        raise ApiError(400, "bad_request", str(exc), {"year": [str(exc)]}) from exc
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
    "parameters": [oa.query("year", {"type": "integer", "minimum": report_service.FIRST_YEAR},
                            "default: last year; at most the current year, whose report is marked as not yet ended"),
                   oa.query("format", {"type": "string", "enum": list(FORMATS)})],
    "responses": {"200": {"description": "The report", "content": {
        "application/json": {"schema": {"type": "object"}}, "text/csv": {"schema": {"type": "string"}},
        oa.DOCX: {"schema": {"type": "string", "format": "binary"}}}},
        "400": {"description": "A year after the current one or before 2000, an unknown format, or a query "
                               "parameter other than year and format (`errors` names each one and lists the "
                               "accepted ones)",
                "content": {"application/json": {"schema": "Error"}}}}}
