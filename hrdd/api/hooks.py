"""POST /v1/hooks/<plugin>: CRM/ERP webhooks, each authenticated and answered by its adapter plugin."""

from __future__ import annotations

from flask import Blueprint, current_app, g, request

from hrdd.auth import vendor_authenticated
from hrdd.errors import ApiError
from hrdd.services import current_services

bp = Blueprint("hooks", __name__)


@bp.route("/v1/hooks/<name>", methods=["POST", "OPTIONS", "GET"])
@vendor_authenticated("each adapter checks its vendor's signature, token or key on the raw body")
def webhook(name: str):
    """Hand the request to the adapter that owns ``name``; it verifies the sender the vendor's way."""
    services = current_services()
    adapter = services.pm.hook.hrdd_webhook_adapter(name=name, app=current_app)
    if adapter is None:
        raise ApiError(404, "unknown_adapter", f"No installed adapter handles /v1/hooks/{name}")
    g.hrdd_adapter = name  # the request's metrics label (hrdd.metrics)
    return adapter.handle(request, services)
