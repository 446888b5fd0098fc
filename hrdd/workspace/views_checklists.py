"""The workspace's checklist page: find a deal, download its due diligence checklist, upload the filled-in one."""

from __future__ import annotations

from flask import Response, abort, current_app, g, render_template, request

from hrdd import openapi as oa
from hrdd.api.query import refuse_unknown_page_args
from hrdd.checklists import service
from hrdd.checklists.templates import get_template, load_templates
from hrdd.checklists.upload import screening_of
from hrdd.errors import ApiError
from hrdd.services import current_services
from hrdd.workspace import checklist_desk, security
from hrdd.workspace.web import make_blueprint


def _max_form_bytes() -> int:
    # Set before the CSRF check reads the form: the API's bound, a workbook at the limit plus multipart framing.
    return service.upload_limits(current_app.config).max_bytes + service.MULTIPART_FRAMING


bp = make_blueprint("workspace_checklists", "/workspace", max_form_bytes=_max_form_bytes)


def _may_upload() -> bool:
    # As the API: export-control staff and admins upload; reviewers read and download.
    return (g.get("user") or {}).get("role") in ("export", "admin")


def _templates() -> list:
    templates = load_templates(service.checklists_dir(), max_age=1.0)
    return sorted(templates.values(), key=lambda t: t.title)


def _page(status: int = 200, **context):
    context.setdefault("q", "")
    context.setdefault("deals", [])
    default = service.template_for(current_app.config, None).id
    return render_template("workspace/checklists.html", may_upload=_may_upload(), templates=_templates(),
                           default_template=default,
                           max_upload=service.upload_limits(current_app.config).max_bytes, **context), status


@bp.route("/checklists/")
@security.login_required("export", "reviewer")
def page():
    """Find a deal (screening id, transaction id or the CRM's reference id), download its checklist, upload one."""
    refuse_unknown_page_args(("q",))
    q = request.args.get("q", "").strip()
    if not q:
        return _page()
    svc = current_services()
    found = [d for d in (checklist_desk.deal(svc, t) for t in checklist_desk.find_deals(svc.store, q)) if d]
    asked = svc.store.get_screening(q) if len(q) <= 40 else None
    return _page(200 if found else 404, q=q, deals=found, asked=asked)


@bp.route("/checklists/<screening_id>.xlsx")
@security.login_required("export", "reviewer")
def download(screening_id: str):
    """A screening's checklist workbook (``?template=`` picks the template), as the API gives it."""
    refuse_unknown_page_args(("template",))
    svc = current_services()
    screening = svc.store.get_screening(screening_id)
    if screening is None:
        abort(404)
    options = {"template": request.args["template"]} if request.args.get("template") else {}
    try:
        result = svc.pm.hook.hrdd_render_document(kind="checklist.xlsx", screening=screening, options=options,
                                                  app=current_app)
    except ApiError as exc:
        return _page(exc.status, q=screening_id, refused=exc, rows=checklist_desk.refusal_rows(exc.errors),
                     refused_download=True)
    if result is None:
        abort(404)
    body, mimetype, filename = result
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                                      "Cache-Control": "no-store"})


@bp.route("/checklists/upload", methods=["POST"])
@security.login_required("export")
def upload():
    """Take a filled-in checklist (the screening is named in the workbook) and show what it changed, or why not."""
    limits = service.upload_limits(current_app.config)
    svc = current_services()
    part = request.files.get("file")
    screening = None
    try:
        if part is None or not (part.filename or "").strip():
            raise ApiError(422, "validation_error", "Choose the filled-in checklist workbook (.xlsx) to upload.",
                           {"file": ["no file was chosen"]})
        data, filename = service.received_file(part, limits)
        screening_id = screening_of(data, limits)
        screening = svc.store.get_screening(screening_id)
        if screening is None:
            raise ApiError(422, "checklist_mismatch",
                           f"This checklist was made for screening {screening_id[:80]!r}, which this hrdd does not "
                           "hold (a checklist from another installation, or its metadata was edited). Download the "
                           "deal's checklist here, copy your answers into it and upload that.",
                           {"screening_id": [f"unknown screening {screening_id[:80]}"]})
        outcome = service.accept_upload(screening, lambda: (data, filename))
    except ApiError as exc:
        superseded = (exc.errors.get("superseded_by") or [None])[0] if isinstance(exc.errors, dict) else None
        return _page(exc.status, refused=exc, rows=checklist_desk.refusal_rows(exc.errors), superseded_by=superseded,
                     filename=getattr(part, "filename", None), upload_screening=screening)
    return _page(200, result=_result(svc, outcome, filename), q="")


def _result(svc, outcome, filename: str | None) -> dict:
    """What an accepted upload did, for the page: the deal now, the answers recorded and withdrawn."""
    summary = outcome.upload
    try:
        template = get_template(service.checklists_dir(), summary["template_id"])
    except KeyError:
        template = None
    deal = checklist_desk.deal(svc, outcome.screening["transaction_id"])
    before = ((svc.store.get_screening(summary["screening_id"]) or {}).get("transaction") or {}).get("answers") or {}
    return {"screening": outcome.screening, "upload": summary, "replayed": outcome.replayed, "filename": filename,
            "deal": deal, "answers": checklist_desk.answers_in_words(summary["answers"], template, before),
            "withdrawn": checklist_desk.withdrawn_in_words(summary["withdrawn"])}


@bp.errorhandler(413)
def _too_large(exc):
    """A form over the limit: the page, naming the limit, with the form to try again (not a bare 413)."""
    limit = service.upload_limits(current_app.config).max_bytes
    refused = ApiError(413, "upload_too_large", f"The file is larger than the limit of {limit:,} bytes "
                       f"({limit / 1024 / 1024:.1f} MB) for a checklist. A checklist as downloaded is far smaller: "
                       "save it again as .xlsx without added pictures or sheets, and upload that.")
    return _page(413, refused=refused, rows=[])


_PAGE = {"200": oa.html_page("The page"), "302": oa.redirect("Not signed in: to the sign-in page")}
page.openapi = {"parameters": [oa.query("q", {"type": "string", "maxLength": 128},
                                        "a screening id, transaction id, or the deal's id in its CRM or ERP")],
                "responses": {**_PAGE, "404": oa.html_page("No deal found: the page says so")}}
download.openapi = {"parameters": [oa.query("template", {"type": "string"})], "responses": {
    "200": {"description": "The checklist", "content": {service.XLSX_MIMETYPE: {
        "schema": {"type": "string", "format": "binary"}}}},
    "302": oa.redirect("Not signed in: to the sign-in page"), "422": oa.html_page("Unknown template")}}
upload.openapi = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file", "csrf_token"],
    "properties": {"file": {"type": "string", "format": "binary"}, "csrf_token": {"type": "string"}}}}}},
    "responses": {"200": oa.html_page("What the upload changed: the new screening, its gate, the answers recorded"),
                  "409": oa.html_page("The checklist's screening has been superseded: the page says which to use"),
                  "413": oa.html_page("Over the upload limit: the page names it"),
                  "415": oa.html_page("Not an .xlsx workbook"),
                  "422": oa.html_page("Refused: every problem by sheet and cell, with the form to try again")}}
