"""HubSpot (POST /v1/hooks/hubspot): webhooks API batches and the workflow "Send a webhook" action.

Signatures: v3 (``X-HubSpot-Signature-v3``, HMAC-SHA256 over method + URI + body + timestamp, rejected
when the timestamp is older than 5 minutes), or v1/v2 when ``X-HubSpot-Signature-Version`` says so.
Webhooks API events carry ids only: they are recorded at once (HubSpot gets its answer well inside its
timeout) and the worker fetches the deal and its line items through the CRM API, then screens.
Deduplicated on portal + eventId + objectId; workflow calls (no event id) on the body's hash.
"""

from __future__ import annotations

import hashlib
import re
import time

from flask import jsonify

from hrdd import safejson
from hrdd.adapters import fieldmap, signatures
from hrdd.adapters.base import WebhookAdapter
from hrdd.adapters.config import reveal
from hrdd.adapters.events import PayloadError, VendorEvent
from hrdd.adapters.http import call, tokens
from hrdd.adapters.pipeline import EnrichmentError
from hrdd.adapters.signatures import AuthError
from hrdd.hookspecs import hookimpl

MAX_AGE_MS = 5 * 60 * 1000
MAX_BATCH = 100
DEAL_TYPE_ID = "0-3"
API = "https://api.hubapi.com"

DEFAULT_FIELD_MAPS = {
    "deal": {
        "stage": {"field": "dealstage", "default": "opportunity", "values": {
            "appointmentscheduled": "opportunity", "qualifiedtobuy": "opportunity",
            "presentationscheduled": "opportunity", "decisionmakerboughtin": "opportunity",
            "contractsent": "quote", "closedwon": "order"}},
        "end_user": {"name": "hrdd_end_user_name", "country": "hrdd_end_user_country",
                     "type": {"field": "hrdd_end_user_type", "default": "unknown", "slug": True},
                     "sector": {"field": "hrdd_end_user_sector", "default": "other", "slug": True}},
        "parties": [{"role": {"const": "distributor"}, "name": "hrdd_distributor_name",
                     "country": "hrdd_distributor_country"}],
        "items": {"from_lines": True, "sku": "hs_sku", "name": "name",
                  "capabilities": {"field": "hrdd_capabilities", "split": ";"}, "eccn": "hrdd_eccn",
                  "quantity": {"field": "quantity", "type": "float"},
                  "unit_price": {"field": "price", "type": "float"},
                  "fallback": {"sku": "hrdd_product_sku", "name": "hrdd_product_name",
                               "capabilities": {"field": "hrdd_capabilities", "split": ";"},
                               "unit_price": {"field": "amount", "type": "float"}}},
        "deployment_countries": {"field": "hrdd_deployment_countries", "split": ";"},
        "intended_use": "hrdd_intended_use",
        "answers": {"past_misuse": "hrdd_past_misuse", "end_user_disclosed": "hrdd_end_user_disclosed",
                    "exports_to_abusers": "hrdd_exports_to_abusers",
                    "accepts_safeguards": "hrdd_accepts_safeguards"},
    },
}


def signed_uri(request, settings: dict) -> str:
    """The URI HubSpot signed: the configured public URL (behind a proxy) plus the query string."""
    public = settings.get("public_url")
    if public:
        query = request.query_string.decode()
        return f"{str(public).rstrip('?')}{'?' + query if query else ''}"
    return request.url


class HubSpotAdapter(WebhookAdapter):
    """Deal events from a HubSpot app (webhooks API) or a workflow's webhook action."""

    vendor = "hubspot"
    label = "HubSpot"
    modified_fields = ("hs_lastmodifieddate",)
    time_sensitive = True
    default_field_maps = DEFAULT_FIELD_MAPS

    def record_is_complete(self, event: VendorEvent) -> bool:
        """A deal read through the CRM API lists every property asked for (empty ones as null).

        A workflow call's default body leaves out properties without a value: there an absent property
        cannot be told from an empty one.
        """
        return event.kind != "workflow"

    def authenticate(self, request, raw: bytes, settings: dict) -> None:
        """v3 when its header is present; otherwise v2 or v1 as the version header says."""
        secret = settings.get("client_secret")
        if not secret:
            raise AuthError("no HubSpot client secret is configured (client_secret)")
        v3 = request.headers.get("X-HubSpot-Signature-v3")
        if v3:
            stamp = request.headers.get("X-HubSpot-Request-Timestamp", "")
            if not re.fullmatch(r"[0-9]{1,15}", stamp):  # not isdigit(): it accepts '²', which int() refuses
                raise AuthError("X-HubSpot-Request-Timestamp is missing")
            skew = time.time() * 1000 - int(stamp)
            if abs(skew) > MAX_AGE_MS:
                raise AuthError("X-HubSpot-Request-Timestamp is more than 5 minutes "
                                + ("old" if skew > 0 else "ahead of this server's clock (check its time sync)"))
            expected = signatures.hubspot_v3(secret, request.method, signed_uri(request, settings), raw, stamp)
            if not signatures.same(v3, expected):
                raise AuthError("X-HubSpot-Signature-v3 does not match")
            return
        version = (request.headers.get("X-HubSpot-Signature-Version") or "").lower()
        given = request.headers.get("X-HubSpot-Signature", "")
        if version == "v1":
            expected = signatures.hubspot_v1(secret, raw)
        elif version == "v2":
            expected = signatures.hubspot_v2(secret, request.method, signed_uri(request, settings), raw)
        else:
            raise AuthError("no HubSpot signature (X-HubSpot-Signature-v3, or v1/v2 with its version header)")
        if not signatures.same(given, expected):
            raise AuthError(f"X-HubSpot-Signature ({version}) does not match")

    def parse(self, request, raw: bytes, settings: dict) -> list[VendorEvent]:
        """A JSON array is a webhooks API batch; a JSON object is one workflow webhook call."""
        try:
            data = safejson.loads(raw)
        except ValueError as exc:
            raise PayloadError(f"the body is not JSON: {exc}") from None
        if isinstance(data, list):
            if not data:
                raise PayloadError("the batch is empty")
            if len(data) > MAX_BATCH:
                # HubSpot sends at most 100 events a request; more is not HubSpot, and each costs a write.
                raise PayloadError(f"a batch holds at most {MAX_BATCH} events, this one {len(data)}")
            return [self._event(e, i, settings) for i, e in enumerate(data)]
        if isinstance(data, dict):
            return [self._workflow(data, raw)]
        raise PayloadError("expected a JSON array of events or a workflow record object")

    def _event(self, event, index: int, settings: dict) -> VendorEvent:
        if not isinstance(event, dict):
            raise PayloadError(f"event {index}: expected an object")
        missing = [k for k in ("eventId", "subscriptionType", "objectId", "portalId") if event.get(k) in (None, "")]
        if missing:
            raise PayloadError(f"event {index}: missing {', '.join(missing)}")
        kind = str(event["subscriptionType"])
        delivery = f"{event['portalId']}:{event['eventId']}:{event['objectId']}"
        occurred = event.get("occurredAt")
        thin = VendorEvent(delivery_id=delivery, object_type="deal", object_id=str(event["objectId"]),
                           kind=kind, meta={"portal_id": event["portalId"]},
                           modified_at=str(occurred) if isinstance(occurred, int | str) and occurred else None)
        is_deal = kind.startswith("deal.") or (kind.startswith("object.")
                                               and str(event.get("objectTypeId")) == DEAL_TYPE_ID)
        action = kind.split(".", 1)[1] if "." in kind else kind
        watched = settings.get("watched_properties") or ["dealstage"]
        if not is_deal:
            thin.ignore = f"{kind} is not a deal event"
            thin.object_type = kind.split(".", 1)[0]
        elif action not in ("creation", "propertyChange", "restore", "merge"):
            thin.ignore = f"{kind} does not call for a screening"
        elif action == "propertyChange" and event.get("propertyName") not in watched:
            thin.ignore = f"a change of {event.get('propertyName')!r} does not call for a screening"
        return thin

    def _workflow(self, data: dict, raw: bytes) -> VendorEvent:
        props = data.get("properties")
        if isinstance(props, dict):
            # The workflow's default body: {"objectId": ..., "properties": {name: {"value": ...}}}.
            record = {k: (v.get("value") if isinstance(v, dict) else v) for k, v in props.items()}
        else:
            record = {k: v for k, v in data.items() if not isinstance(v, dict | list)}
        object_id = data.get("objectId") or data.get("dealId") or record.get("hs_object_id")
        if object_id in (None, ""):
            raise PayloadError("workflow payload: no objectId, dealId or hs_object_id")
        content_id = "workflow:" + hashlib.sha256(raw).hexdigest()
        # The default body dates each property's last change: the newest is the state the call carries.
        changed = [v["timestamp"] for v in props.values() if isinstance(v, dict) and type(v.get("timestamp")) is int
                   ] if isinstance(props, dict) else []
        # No delivery id: identical bytes are a retry only while they are the deal's latest delivery.
        event = VendorEvent(delivery_id=content_id, object_type="deal", object_id=str(object_id), record=record,
                            kind="workflow", meta={"content_id": content_id},
                            modified_at=str(max(changed)) if changed else None)
        object_type = data.get("objectType") or data.get("objectTypeId")
        if object_type not in (None, "") and str(object_type).strip().upper() not in ("DEAL", "DEALS", DEAL_TYPE_ID):
            # A company's or contact's workflow posting here: its id is not a deal's, and must not open one.
            event.ignore = f"a workflow call for a {str(object_type)[:40]} record; hrdd screens deals only"
            event.object_type = str(object_type)[:64]
        return event

    def enrich(self, event: VendorEvent, settings: dict) -> tuple[dict, list[dict]]:
        """Read the deal and its line items through the CRM v3 API."""
        if not settings.get("access_token") and not settings.get("oauth"):
            raise EnrichmentError("no HubSpot access token is configured (access_token)")
        base = (reveal(settings.get("api_base_url")).strip() or API).rstrip("/")
        record_fields, line_fields = fieldmap.fields_used(self.field_map("deal", settings))
        headers = tokens.headers(settings, where="adapters.hubspot")
        timeout = float(settings.get("timeout", 10))
        properties = ",".join(dict.fromkeys([*record_fields, *self.modified_fields_of(settings)]))
        deal = call("GET", f"{base}/crm/v3/objects/deals/{event.object_id}?properties={properties}"
                    "&associations=line_items", headers=headers, timeout=timeout,
                    setting="adapters.hubspot.api_base_url").body
        if not isinstance(deal, dict) or not isinstance(deal.get("properties"), dict):
            raise EnrichmentError("the deal answer had no properties")
        assoc = (deal.get("associations") or {}).get("line items") or (deal.get("associations") or {}).get(
            "line_items") or {}
        ids = [str(r["id"]) for r in assoc.get("results", []) if r.get("id")]
        lines = []
        if ids:
            answer = call("POST", f"{base}/crm/v3/objects/line_items/batch/read", headers=headers,
                          json_body={"properties": line_fields, "inputs": [{"id": i} for i in ids]},
                          timeout=timeout, setting="adapters.hubspot.api_base_url").body
            lines = [r.get("properties", {}) for r in (answer or {}).get("results", [])]
        return deal["properties"], lines

    def respond(self, request, outcomes: list[dict], services):
        """202 and the outcomes for a batch; the one outcome (with its gate) for a workflow call."""
        if len(outcomes) == 1 and outcomes[0].get("delivery_id", "").startswith("workflow:"):
            return jsonify(outcomes[0])
        return super().respond(request, outcomes, services)


@hookimpl
def hrdd_webhook_adapter(name, app):
    """Own /v1/hooks/hubspot."""
    return HubSpotAdapter(app) if name == "hubspot" else None


