"""GET /v1/screenings/<id>/rider.docx and checklist.xlsx, rendered by whichever plugin owns the kind."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, request

from hrdd.api.query import refuse_unknown_args
from hrdd.auth import require_role
from hrdd.errors import ApiError, not_found
from hrdd.services import current_services

bp = Blueprint("documents", __name__)


def render(screening_id: str, kind: str) -> Response:
    """Find the screening, ask the plugins to render ``kind``, and send it as a download."""
    # Options are the renderer's to check, but a repeated one would reach it as its first value only.
    refuse_unknown_args(None)
    services = current_services()
    screening = services.store.get_screening(screening_id)
    if screening is None:
        raise not_found("screening", screening_id)
    result = services.pm.hook.hrdd_render_document(kind=kind, screening=screening,
                                                   options=request.args.to_dict(), app=current_app)
    if result is None:
        raise ApiError(404, "no_renderer", f"No installed plugin renders {kind!r}")
    body, mimetype, filename = result
    return Response(body, mimetype=mimetype,
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "no-store"})


@bp.get("/v1/screenings/<screening_id>/rider.docx")
@require_role("contracts", "reviewer")
def rider(screening_id: str):
    """The contract rider for a screening."""
    return render(screening_id, "rider.docx")


@bp.get("/v1/screenings/<screening_id>/checklist.xlsx")
@require_role("export", "reviewer")
def checklist(screening_id: str):
    """The due diligence checklist workbook for a screening."""
    return render(screening_id, "checklist.xlsx")
