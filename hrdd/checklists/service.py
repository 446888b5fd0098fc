"""Checklist settings, rendering and the upload endpoint (POST /v1/screenings/<id>/checklist)."""

from __future__ import annotations

import copy
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from flask import Blueprint, current_app, g, has_app_context, has_request_context, jsonify, request

from hrdd import audit
from hrdd.api.query import refuse_unknown_args, unknown_args_error
from hrdd.auth import require_role
from hrdd.checklists import withdrawals
from hrdd.checklists.carry import carried_party_notes, carried_rows, deal_uploads
from hrdd.checklists.evidence import checklist_uploads, upload_of_workbook, upload_row
from hrdd.checklists.on_record import risky_answers
from hrdd.checklists.package import XLSX_MIMETYPE, UploadLimits
from hrdd.checklists.templates import DEFAULT_TEMPLATE, Template, get_template, load_templates
from hrdd.checklists.upload import read_checklist
from hrdd.checklists.workbook import build_workbook
from hrdd.config import DEFAULT_CHECKLISTS_DIR, cached_path
from hrdd.errors import ApiError, not_found
from hrdd.services import current_services
from hrdd.store import new_id
from hrdd.tables import screenings
from hrdd.workspace.cases import open_case
from hrdd.workspace.web import actor

bp = Blueprint("checklists", __name__)
_MACRO_TYPES = ("application/vnd.ms-excel.sheet.macroenabled.12", "application/vnd.ms-excel.sheet.macroEnabled.12")
_RAW_TYPES = (XLSX_MIMETYPE, "application/octet-stream")
_PENDING = "hrdd_checklist_upload"
_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
MULTIPART_FRAMING = 64 * 1024  # boundaries and part headers around a workbook sent as a multipart field


def checklists_dir(config: dict | None = None) -> Path:
    """The template directory: the app's HRDD_CHECKLISTS_DIR, else the environment, else the shipped checklists/."""
    if config is None and has_app_context():
        config = current_app.config
    value = (config or {}).get("HRDD_CHECKLISTS_DIR") or os.environ.get("HRDD_CHECKLISTS_DIR")
    return cached_path(str(value) if value else _DEFAULT_DIR)


_DEFAULT_DIR = str(DEFAULT_CHECKLISTS_DIR)


def upload_limits(config: dict) -> UploadLimits:
    """Upload bounds from HRDD_CHECKLIST_MAX_UPLOAD and HRDD_CHECKLIST_MAX_UNCOMPRESSED (bytes)."""
    default = UploadLimits()
    return UploadLimits(
        max_bytes=int(config.get("HRDD_CHECKLIST_MAX_UPLOAD") or default.max_bytes),
        max_uncompressed=int(config.get("HRDD_CHECKLIST_MAX_UNCOMPRESSED") or default.max_uncompressed),
    )


def template_for(config: dict, requested: str | None) -> Template:
    """The template asked for (``?template=``), else HRDD_CHECKLIST_TEMPLATE, else the State Dept one."""
    wanted = requested or config.get("HRDD_CHECKLIST_TEMPLATE") or DEFAULT_TEMPLATE
    try:
        return get_template(checklists_dir(config), wanted)
    except KeyError as exc:
        raise ApiError(422, "unknown_template", str(exc.args[0]), {"template": [str(exc.args[0])]}) from None


def data_sources(app) -> list[dict]:
    """The datasets' names, versions, sources and terms from the hrdd_data_sources hook (cached per app)."""
    services = app.extensions["hrdd"]
    cached = getattr(services, "_checklist_data_sources", None)
    if cached is None:
        from hrdd.engine import ScreeningContext  # noqa: PLC0415 - the engine imports plugins
        context = ScreeningContext(services.reference, services.policy, services.store)
        cached = [ds for rows in services.pm.hook.hrdd_data_sources(context=context) for ds in rows or ()]
        services._checklist_data_sources = cached
    return cached


def render_checklist(screening: dict, options: dict, app) -> tuple[bytes, str, str]:
    """The checklist workbook for a stored screening: (bytes, mimetype, download file name)."""
    unknown = sorted(name for name in options if name != "template")
    if unknown:
        # A misspelt ?template= would otherwise give the default template's workbook without a word.
        raise unknown_args_error(unknown, ("template",))
    template = template_for(app.config, options.get("template"))
    uploads = deal_uploads(app.extensions["hrdd"].store, screening)
    body = build_workbook(screening, template, data_sources=data_sources(app),
                          carried=carried_rows(None, screening, template, uploads),
                          party_notes=carried_party_notes(None, screening, uploads),
                          max_upload=upload_limits(app.config).max_bytes,
                          confirm_severities=withdrawals.confirm_severities(app.extensions["hrdd"].policy))
    return body, XLSX_MIMETYPE, f"checklist-{screening.get('id')}-{template.id}.xlsx"


def _received_workbook(limits: UploadLimits) -> tuple[bytes, str | None]:
    if request.content_length is not None and request.content_length > limits.max_bytes + MULTIPART_FRAMING:
        raise ApiError(413, "upload_too_large",
                       f"The upload is {request.content_length} bytes; the limit is {limits.max_bytes} bytes.")
    # Multipart framing adds a little; the workbook itself is checked against max_bytes afterwards.
    request.max_content_length = limits.max_bytes + MULTIPART_FRAMING
    mimetype = (request.mimetype or "").lower()
    if mimetype in (t.lower() for t in _MACRO_TYPES):
        raise ApiError(415, "macro_enabled",
                       "Macro-enabled workbooks (.xlsm) are refused; save the checklist as .xlsx and upload again.")
    if mimetype == "multipart/form-data":
        upload = request.files.get("file")
        if upload is None:
            raise ApiError(422, "validation_error", "Send the workbook in the multipart field 'file'.",
                           {"file": ["missing"]})
        return received_file(upload, limits)
    if mimetype in _RAW_TYPES:
        return request.get_data(cache=False), None
    raise ApiError(415, "unsupported_media_type",
                   f"Send the checklist as {XLSX_MIMETYPE} or as multipart/form-data field 'file' "
                   f"(got {request.mimetype or 'no content type'!r}).")


def received_file(upload, limits: UploadLimits) -> tuple[bytes, str | None]:
    """A multipart file part's bytes (at most one over the limit, so check_package can name it) and its name."""
    if (upload.mimetype or "").lower() in (t.lower() for t in _MACRO_TYPES) or \
            (upload.filename or "").lower().endswith(".xlsm"):
        raise ApiError(415, "macro_enabled", "Macro-enabled workbooks (.xlsm) are refused; save the "
                       "checklist as .xlsx and upload again.")
    # The name is the sender's text: control characters (NUL is refused by PostgreSQL) are dropped.
    name = "".join(ch for ch in upload.filename or "" if ch.isprintable()) or None
    return upload.read(limits.max_bytes + 1), name


@bp.post("/v1/screenings/<screening_id>/checklist")
@require_role("export")
def upload_checklist(screening_id: str):
    """Read a filled-in checklist and screen the transaction again with its answers (201, new screening)."""
    # It stores a screening: a parameter meant to change that (a ?dry_run=true) must not be ignored.
    refuse_unknown_args(())
    screening = current_services().store.get_screening(screening_id)
    if screening is None:
        raise not_found("screening", screening_id)
    limits = upload_limits(current_app.config)
    outcome = accept_upload(screening, lambda: _received_workbook(limits))
    response = jsonify({**outcome.screening, "checklist_upload": outcome.upload})
    if outcome.replayed:
        response.status_code = 200
        return response
    response.status_code = 201
    response.headers["Location"] = f"/v1/screenings/{outcome.screening['id']}"
    return response


@dataclass(frozen=True)
class UploadOutcome:
    """What an accepted upload made: the deal's new screening (or, for an identical re-upload, the one its first
    upload made, as the deal stands now), the upload's summary (``checklist_upload``), and whether it was a replay."""

    screening: dict
    upload: dict
    replayed: bool


def accept_upload(screening: dict, received: Callable[[], tuple[bytes, str | None]]) -> UploadOutcome:
    """Take a filled-in checklist of ``screening``: the same checks, storage and audit entry for the API and the
    workspace. ``received`` reads the workbook (bytes, file name); ApiError on any problem, with nothing stored."""
    services = current_services()
    limits = upload_limits(current_app.config)
    latest = services.store.latest_screening(screening["transaction_id"])
    if latest is not None and latest["id"] != screening["id"]:
        replayed = _replay(services, screening, received)
        if replayed is not None:
            return replayed
    # Refused before parsing so nobody's file is parsed for nothing; checked again under the deal's lock when storing.
    refuse_if_superseded(screening, latest)
    data, filename = received()
    directory = checklists_dir()
    checked = read_checklist(data, screening, lambda tid: get_template(directory, tid), limits,
                             newest_of=lambda sid: _newest_of(services.store, sid))
    body = copy.deepcopy(services.store.get_screening_request(screening["id"]) or screening["transaction"])
    body["answers"] = {**(body.get("answers") or {}), **checked.answers}
    upload_id = new_id("chk")
    # An API key's name, or the signed-in person's (the JSON API in a browser, or the workspace's form).
    uploader = g.get("principal") or g.get("user") or {}
    g.setdefault(_PENDING, {"id": upload_id, "screening": screening, "checked": checked, "data": data,
                            "filename": filename, "by": uploader.get("name"), "stored": False})
    # The stored request was accepted before; the upload's own answers come from the template's questions.
    try:
        result, created = services.screen_and_store(body, source="checklist", stored_request=True)
    finally:
        pending = g.pop(_PENDING)
    if not pending["stored"]:  # only if the store did not call hrdd_screening_stored
        with services.store.begin() as conn:
            _insert_upload(conn, pending, result)
    if created and hasattr(services, "metrics"):
        services.metrics.decisions.labels(result["decision"]).inc()
    return UploadOutcome(result, _upload_summary(upload_id, screening["id"], checked.template_id,
                                                 checked.template_version, checked.answers, checked.record), False)


def _upload_summary(upload_id: str, screening_id: str, template_id: str, template_version: str, answers: dict,
                    record: dict) -> dict:
    return {"id": upload_id, "screening_id": screening_id, "template_id": template_id,
            "template_version": template_version, "answers": answers, "withdrawn": record.get("withdrawn") or [],
            "party_notes": [p for p in record.get("parties") or () if p.get("review_notes")]}


def _replay(services, screening: dict, received) -> UploadOutcome | None:
    """What an earlier upload of the very same workbook to this screening made, else None.

    A retry after a lost reply is the same bytes: it gets what the first attempt got (as POST /v1/screenings
    does for an Idempotency-Key), not a 409 telling the user to copy answers they already uploaded.
    """
    try:
        data, _ = received()
    except ApiError:
        return None  # not a workbook we could take: the 409 below says what to do
    earlier = upload_of_workbook(services.store, screening["id"], data)
    made = services.store.get_screening(earlier["new_screening_id"]) if earlier else None
    if made is None:
        return None
    return UploadOutcome(services.as_current(made), _upload_summary(
        earlier["id"], screening["id"], earlier["template_id"], earlier["template_version"], earlier["answers"],
        earlier["record"]), True)


def refuse_if_superseded(screening: dict, latest: dict | None) -> None:
    """Refuse (409) a checklist of a screening that is no longer its transaction's newest."""
    if latest is None or latest["id"] == screening["id"]:
        return
    # An older screening's facts and answers would replace the newer screening's (and its gate).
    raise ApiError(409, "checklist_superseded",
                   f"Screening {screening['id']!r} has been superseded by screening {latest['id']!r}; download "
                   f"that screening's checklist (GET /v1/screenings/{latest['id']}/checklist.xlsx), copy your "
                   "answers into it and upload it to that screening.",
                   {"screening_id": [f"superseded by {latest['id']}"], "superseded_by": [latest["id"]]})


def _newest_of(store, screening_id: str) -> dict | None:
    """The newest screening of the transaction of screening ``screening_id`` (an id read from a workbook)."""
    if not _ID.fullmatch(screening_id):
        return None  # an edited metadata cell: nothing to look up
    other = store.get_screening(screening_id)
    return store.latest_screening(other["transaction_id"]) if other else None


def _latest_other(connection, transaction_id: str, screening_id: str) -> dict | None:
    return connection.execute(
        sa.select(screenings.c.result)
        .where(screenings.c.transaction_id == transaction_id, screenings.c.id != screening_id)
        .order_by(screenings.c.created_at.desc(), screenings.c.id.desc()).limit(1)).scalar()


def _insert_upload(connection, pending: dict, new_screening: dict) -> None:
    checked = pending["checked"]
    withdrawn = _withdrawn(pending["screening"], new_screening, checked.answers)
    if withdrawn:
        checked.record["withdrawn"] = withdrawn
    row = upload_row(pending["id"], screening=pending["screening"], new_screening=new_screening, checked=checked,
                     data=pending["data"], filename=pending["filename"], uploaded_by=pending["by"])
    connection.execute(checklist_uploads.insert().values(**row))
    who = actor()
    if withdrawn:
        # Lifting a serious flag is a reviewer's call: the case stays open (or opens) for it, and the gate
        # holds (hrdd_gate_factors) until a reviewer decides after this upload.
        open_case(connection, new_screening, "; ".join(withdrawals.in_words(pending["id"], w) for w in withdrawn)
                  + ": a human rights reviewer must confirm the changed answer", actor=who,
                  memo=current_services().store.scope_memo())
    before = (pending["screening"].get("transaction") or {}).get("answers") or {}
    audit.record(connection, who, "checklist.upload", pending["id"], {
        "transaction_id": new_screening["transaction_id"], "screening_id": pending["screening"]["id"],
        "new_screening_id": new_screening["id"], "template": f"{checked.template_id} {checked.template_version}",
        "filename": row["filename"], "sha256": row["sha256"], "size": row["size"], "answers": checked.answers,
        "changed": {q: {"from": before.get(q), "to": a} for q, a in checked.answers.items() if before.get(q) != a},
        "decision": {"from": pending["screening"].get("decision"), "to": new_screening.get("decision")},
        "engine_gate": {"from": pending["screening"].get("gate"), "to": new_screening.get("gate")},
        "withdrawn": withdrawn})
    pending["stored"] = True


def _withdrawn(previous: dict, new_screening: dict, answers: dict) -> list[dict]:
    """The upload's answers that lifted a flag of a severity the policy wants a reviewer to confirm."""
    templates = load_templates(checklists_dir(), max_age=1.0)
    return withdrawals.withdrawn_answers(
        previous, new_screening, answers, withdrawals.flags_by_question(templates), risky_answers(templates),
        withdrawals.confirm_severities(current_services().policy))


def store_pending_upload(screening: dict, connection) -> None:
    """Inside the screening's own database transaction, store the upload that caused it (if any)."""
    if not has_request_context():
        return
    pending = g.get(_PENDING)
    if pending and not pending["stored"]:
        # The deal is locked here (its transaction row, or SQLite's write lock), so of two uploads of the
        # same checklist the second sees the first's screening and is refused; raising rolls back both.
        previous = _latest_other(connection, screening["transaction_id"], screening["id"])
        refuse_if_superseded(pending["screening"], previous)
        _insert_upload(connection, pending, screening)


upload_checklist.openapi = {
    "requestBody": {"required": True, "content": {
        XLSX_MIMETYPE: {"schema": {"type": "string", "format": "binary"}},
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                           "properties": {"file": {"type": "string", "format": "binary"}}}}}},
    "responses": {
        "201": {"description": "A new screening of the same transaction with the checklist's answers",
                "content": {"application/json": {"schema": "Screening"}}},
        "200": {"description": "The same workbook uploaded again to the same screening: what its first upload made",
                "content": {"application/json": {"schema": "Screening"}}},
        "413": {"description": "Upload or its unpacked size over the limit",
                "content": {"application/json": {"schema": "Error"}}},
        "409": {"description": "The screening has been superseded by a newer one of its transaction",
                "content": {"application/json": {"schema": "Error"}}},
        "415": {"description": "Not an .xlsx workbook, or macro-enabled",
                "content": {"application/json": {"schema": "Error"}}},
        "422": {"description": "Not this screening's checklist, an older template, or invalid answers "
                               "(errors.answers.<question id>)",
                "content": {"application/json": {"schema": "Error"}}}},
}
