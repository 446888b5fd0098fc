"""Odoo server actions (POST /v1/hooks/odoo/<token>): the "Send Webhook Notification" action's flat JSON.

Odoo 17+ posts ``{"_action": "<name>(#<id>)", "_id": <record id>, "_model": "sale.order", <fields>}``
with a one-second timeout and no signature, so the secret is part of the URL
(``/v1/hooks/odoo/<token>``; ``?token=`` works too) and the record is screened at once. Odoo sends no
delivery id: a body identical to the record's latest delivery is a retry (after A, B, A the third is
screened again). A JSON array of such records (from an "Execute Code" action posting several records)
is a batch.
"""

from __future__ import annotations

import hashlib
import json

from flask import Blueprint, current_app, request

from hrdd import safejson
from hrdd.adapters import signatures
from hrdd.adapters.base import WebhookAdapter
from hrdd.adapters.events import PayloadError, VendorEvent
from hrdd.adapters.signatures import AuthError
from hrdd.auth import vendor_authenticated
from hrdd.hookspecs import hookimpl

MAX_BATCH = 100

_COMMON = {
    "end_user": {"name": "x_hrdd_end_user", "country": "x_hrdd_end_user_country",
                 "type": {"field": "x_hrdd_end_user_type", "default": "unknown", "slug": True},
                 "sector": {"field": "x_hrdd_end_user_sector", "default": "other", "slug": True}},
    "parties": [{"role": {"const": "distributor"}, "name": "x_hrdd_distributor",
                 "country": "x_hrdd_distributor_country"}],
    "items": [{"sku": "x_hrdd_product_code", "name": "x_hrdd_product_name",
               "capabilities": {"field": "x_hrdd_capabilities", "split": ","},
               "unit_price": {"field": "amount_total", "type": "float"}}],
    "deployment_countries": {"field": "x_hrdd_deployment_countries", "split": ","},
    "intended_use": "x_hrdd_intended_use",
    "answers": {"past_misuse": "x_hrdd_past_misuse", "end_user_disclosed": "x_hrdd_end_user_disclosed"},
}
DEFAULT_FIELD_MAPS = {
    # sale.order states: draft/sent are quotations, sale is a confirmed order.
    "sale.order": {**_COMMON, "stage": {"field": "state", "default": "quote", "values": {
        "draft": "quote", "sent": "quote", "sale": "order", "done": "order"}}},
    "crm.lead": {**_COMMON, "stage": {"const": "opportunity"},
                 "items": [{**_COMMON["items"][0], "unit_price": {"field": "expected_revenue", "type": "float"}}]},
}


class OdooAdapter(WebhookAdapter):
    """sale.order and crm.lead records (others through configured field maps)."""

    vendor = "odoo"
    label = "Odoo"
    modified_fields = ("write_date",)
    time_sensitive = True
    default_field_maps = DEFAULT_FIELD_MAPS

    def authenticate(self, request, raw: bytes, settings: dict) -> None:
        """The token in the path (or ``?token=``) must equal the configured one."""
        tokens_ = signatures.configured(settings, "token", "tokens")
        if not tokens_:
            raise AuthError("no Odoo path token is configured (token)")
        given = (request.view_args or {}).get("token") or request.args.get("token", "")
        if not signatures.matches_any(given, tokens_):
            raise AuthError("the token in the webhook URL is missing or wrong")

    def parse(self, request, raw: bytes, settings: dict) -> list[VendorEvent]:
        """One record per body (or an array of them); each needs _model and _id."""
        try:
            data = safejson.loads(raw)
        except ValueError as exc:
            raise PayloadError(f"the body is not JSON: {exc}") from None
        records = data if isinstance(data, list) else [data]
        if not records or len(records) > MAX_BATCH:
            raise PayloadError(f"expected 1 to {MAX_BATCH} records, got {len(records)}")
        models = settings.get("models") or list(self.default_field_maps) + list(settings.get("field_maps") or {})
        events = []
        for i, record in enumerate(records):
            if not isinstance(record, dict):
                raise PayloadError(f"record {i}: expected a JSON object")
            missing = [k for k in ("_model", "_id") if record.get(k) in (None, "")]
            if missing:
                raise PayloadError(f"record {i}: missing {', '.join(missing)} (is this an Odoo webhook action?)")
            text = json.dumps(record, sort_keys=True)
            # Odoo reads empty fields as False; treat them as absent.
            record = {k: (None if v is False else v) for k, v in record.items()}
            content_id = f"{record['_model']}:{record['_id']}:" + hashlib.sha256(text.encode()).hexdigest()[:32]
            # Identical content is a retry only while it is the record's latest delivery (see pipeline).
            event = VendorEvent(delivery_id=content_id, object_type=str(record["_model"]),
                                object_id=str(record["_id"]), record=record, kind=str(record.get("_action", "")),
                                meta={"content_id": content_id})
            if event.object_type not in models:
                event.ignore = f"model {event.object_type} has no field map"
            events.append(event)
        return events


bp = Blueprint("odoo_hook", __name__)


@bp.route("/v1/hooks/odoo/<token>", methods=["POST"])
@vendor_authenticated("the secret token in the path, compared in constant time")
def odoo_with_token(token: str):
    """The same adapter, with the secret token as the last path segment."""
    from hrdd.services import current_services

    return OdooAdapter(current_app).handle(request, current_services())


@hookimpl
def hrdd_webhook_adapter(name, app):
    """Own /v1/hooks/odoo."""
    return OdooAdapter(app) if name == "odoo" else None


@hookimpl
def hrdd_register_routes(app):
    """Add /v1/hooks/odoo/<token>."""
    app.register_blueprint(bp)


odoo_with_token.openapi = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": {}}}},
    "responses": {"202": {"description": "Each record screened, or held with its reason"}}}
