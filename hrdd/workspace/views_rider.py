"""The workspace's rider form: the rider's variables asked for in words, then the .docx downloaded."""

from __future__ import annotations

import os

from flask import Response, abort, current_app, render_template, request, url_for

from hrdd import openapi as oa
from hrdd.errors import ApiError
from hrdd.riders import ClauseLibraryError, SelectionError, configured_library
from hrdd.riders.build import needed_options
from hrdd.riders.governing import refuse_unless_governing
from hrdd.services import current_services
from hrdd.workspace import security
from hrdd.workspace.web import make_blueprint

bp = make_blueprint("workspace_rider", "/workspace")
# Roles that buy on the end-user's behalf: the likeliest contracting Buyer when one is disclosed.
BUYING_ROLES = ("distributor", "reseller", "integrator")


def _suggested(name: str, screening: dict) -> str:
    """A value the transaction suggests for an option (the Buyer's name); empty when it says nothing."""
    if name != "buyer_name":
        return ""
    transaction = screening.get("transaction") or {}
    for role in BUYING_ROLES:
        for party in transaction.get("parties") or ():
            if party.get("role") == role and party.get("name"):
                return str(party["name"])
    return str((transaction.get("end_user") or {}).get("name") or "")


def _fields(screening: dict, posted) -> list[dict]:
    """The form's fields: each option the rider needs, its value (posted, configured or suggested)."""
    library = configured_library(current_app.config)
    fields = []
    for spec in needed_options(library, screening):
        configured = current_app.config.get(spec.config_key) or os.environ.get(spec.config_key) or ""
        suggested = "" if configured else _suggested(spec.name, screening)
        value = posted.get(spec.name, "") if posted is not None else str(configured or suggested)
        fields.append({"spec": spec, "value": value, "configured": bool(configured),
                       "suggested": bool(suggested) and posted is None})
    return fields


def _page(screening: dict, fields: list[dict], errors: dict, problem: str | None = None, status: int = 200):
    return render_template("workspace/rider.html", screening=screening, fields=fields, errors=errors,
                           problem=problem), status


@bp.route("/screenings/<screening_id>/rider", methods=["GET", "POST"])
@security.login_required("reviewer")
def rider_form(screening_id: str):
    """Ask for the rider's variables; on a complete form, download the rider (.docx)."""
    svc = current_services()
    screening = svc.store.get_screening(screening_id)
    if screening is None:
        abort(404)
    try:
        refuse_unless_governing(screening, svc)
        fields = _fields(screening, request.form if request.method == "POST" else None)
    except ApiError as exc:
        governing = (exc.errors.get("superseded_by") or [None])[0]
        link = url_for("workspace_rider.rider_form", screening_id=governing) if governing else None
        return render_template("workspace/rider.html", screening=screening, fields=[], errors={},
                               problem=exc.message, governing=governing, governing_link=link), exc.status
    except (ClauseLibraryError, SelectionError) as exc:
        return _page(screening, [], {}, f"The clause library cannot build this rider: {exc}", 500)
    if request.method == "GET":
        return _page(screening, fields, {})
    options = {f["spec"].name: f["value"] for f in fields if f["value"].strip()}
    try:
        result = svc.pm.hook.hrdd_render_document(kind="rider.docx", screening=screening, options=options,
                                                  app=current_app)
    except ApiError as exc:
        names = {f["spec"].name for f in fields}
        # The renderer says how an API caller gives a missing value; on the form it is simply required.
        errors = {k: ["required" if str(m).startswith("required") else str(m) for m in v]
                  for k, v in exc.errors.items() if k in names}
        message = "Correct the fields marked below." if errors and exc.status == 422 else exc.message
        return _page(screening, fields, errors, message, exc.status)
    if result is None:
        return _page(screening, fields, {}, "No installed plugin renders the rider.", 404)
    body, mimetype, filename = result
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{filename}"',
                                                      "Cache-Control": "no-store"})


rider_form.openapi = {
    "get": {"responses": {"200": oa.html_page("The form"),
                          "409": oa.html_page("No rider: the screening is superseded or its deal blocked"),
                          "302": oa.redirect("Not signed in: to the sign-in page")}},
    "post": {"requestBody": oa.form_body({"seller_name": {"type": "string"}, "buyer_name": {"type": "string"},
                                          "agreement_reference": {"type": "string"},
                                          "governing_law": {"type": "string"},
                                          "grievance_contact": {"type": "string"},
                                          "cure_period": {"type": "integer"}}),
             "responses": {"200": {"description": "The rider", "content": {
                 "application/vnd.openxmlformats-officedocument.wordprocessingml.document": {
                     "schema": {"type": "string", "format": "binary"}}}},
                 "422": oa.html_page("The form with its errors"),
                 "409": oa.html_page("No rider: the screening is superseded or its deal blocked")}},
}
