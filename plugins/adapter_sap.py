"""SAP S/4HANA via SAP Event Mesh (POST /v1/hooks/sap): CloudEvents 1.0 over a webhook subscription.

Binary mode (``ce-*`` headers, the body is the data), structured mode
(``application/cloudevents+json``) and batches (``application/cloudevents-batch+json``). The webhook's
OPTIONS validation handshake is answered with ``WebHook-Allowed-Origin``. Authentication is a bearer
token or basic credentials configured on the Event Mesh webhook. Business events such as
``sap.s4.beh.salesorder.v1.SalesOrder.Created.v1`` carry only the key (``{"SalesOrder": "1"}``): the
order, its items and partners are read through the OData API (``API_SALES_ORDER_SRV``), inline, and
when that fails the event is kept, the gate is ``hold`` with the reason, and the worker retries.
Deduplicated on CloudEvents ``source`` + ``id``.
"""

from __future__ import annotations

from flask import Response

from hrdd import safejson
from hrdd.adapters import signatures
from hrdd.adapters.base import WebhookAdapter
from hrdd.adapters.config import ConfigError, adapter_settings, reveal, settings_for
from hrdd.adapters.events import PayloadError, VendorEvent
from hrdd.adapters.http import call, tokens
from hrdd.adapters.pipeline import EnrichmentError
from hrdd.adapters.signatures import AuthError
from hrdd.hookspecs import hookimpl

REQUIRED = ("specversion", "id", "source", "type")
STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
MAX_BATCH = 100
# Business object of an event type -> (object type, key field in data, OData entity path, expand).
OBJECTS = {
    "salesorder": ("SalesOrder", "SalesOrder", "API_SALES_ORDER_SRV/A_SalesOrder('{id}')",
                   "to_Item,to_Partner/to_Address"),
    "salesquotation": ("SalesQuotation", "SalesQuotation",
                       "API_SALES_QUOTATION_SRV/A_SalesQuotation('{id}')", "to_Item,to_Partner"),
}
# Partner functions read into the record as nested fields (``ShipToParty.FullName``).
PARTNER_ROLES = {"SH": "ShipToParty", "SP": "SoldToParty", "ZE": "EndUser"}
_COMMON = {
    "end_user": {"name": "YY1_HRDD_EndUser_SDH", "country": "YY1_HRDD_EndUserCountry_SDH",
                 "type": {"field": "YY1_HRDD_EndUserType_SDH", "default": "unknown", "slug": True},
                 "sector": {"field": "YY1_HRDD_EndUserSector_SDH", "default": "other", "slug": True}},
    "parties": [{"role": {"const": "consignee"}, "name": "ShipToParty.FullName",
                 "country": "ShipToParty.Country"}],
    "items": {"from_lines": True, "sku": "Material", "name": "SalesOrderItemText",
              "capabilities": {"field": "YY1_HRDD_Capabilities_SDI", "split": ";"},
              "quantity": {"field": "RequestedQuantity", "type": "float"},
              "unit_price": {"field": "NetAmount", "type": "float"}, "currency": "TransactionCurrency"},
    "deployment_countries": {"field": "YY1_HRDD_DeployCountries_SDH", "split": ";"},
    "intended_use": "YY1_HRDD_IntendedUse_SDH",
    "answers": {"past_misuse": "YY1_HRDD_PastMisuse_SDH", "end_user_disclosed": "YY1_HRDD_EUDisclosed_SDH"},
}
# An order created with reference to a quotation is that quotation's deal (see ``reference_quotation``).
DEFAULT_FIELD_MAPS = {
    "SalesOrder": {**_COMMON, "stage": {"const": "order"},
                   "reference": {"object_type": {"const": "SalesQuotation"}, "object_id": "ReferenceQuotation"}},
    "SalesQuotation": {**_COMMON, "stage": {"const": "quote"},
                       "items": {**_COMMON["items"], "name": "SalesQuotationItemText"}},
}


def _object_of(event_type: str):
    # sap.s4.beh.salesorder.v1.SalesOrder.Created.v1 -> "salesorder"
    parts = event_type.split(".")
    return OBJECTS.get(parts[3]) if len(parts) > 4 and parts[:3] == ["sap", "s4", "beh"] else None


class SapEventMeshAdapter(WebhookAdapter):
    """S/4HANA business events delivered by an Event Mesh webhook subscription."""

    vendor = "sap"
    label = "SAP"
    default_field_maps = DEFAULT_FIELD_MAPS
    modified_fields = ("LastChangeDateTime",)

    def options(self, request, settings: dict) -> Response:
        """CloudEvents webhook validation: allow the requesting origin when it is on the allowlist."""
        origin = request.headers.get("WebHook-Request-Origin", "").strip()
        allowed = settings.get("allowed_origins") or []
        response = Response(status=200)
        response.headers["Allow"] = "POST, OPTIONS"
        if origin and (not allowed or origin in allowed or "*" in allowed):
            response.headers["WebHook-Allowed-Origin"] = origin
            response.headers["WebHook-Allowed-Rate"] = str(settings.get("allowed_rate", "*"))
        return response

    def authenticate(self, request, raw: bytes, settings: dict) -> None:
        """A configured bearer token, or basic credentials, as set on the Event Mesh webhook."""
        header = request.headers.get("Authorization")
        tokens_ = settings.get("bearer_tokens") or ([settings["bearer_token"]] if settings.get("bearer_token")
                                                   else [])
        if tokens_ and signatures.matches_any(signatures.bearer_token(header), tokens_):
            return
        user = settings.get("basic_user")
        if user and settings.get("basic_password"):
            given = signatures.basic_credentials(header) or ("", "")
            ok_user = signatures.same(given[0], reveal(user))
            ok_password = signatures.same(given[1], reveal(settings["basic_password"]))
            if ok_user and ok_password:
                return
        if not tokens_ and not user:
            raise AuthError("no Event Mesh credentials are configured (bearer_token or basic_user)")
        raise AuthError("the Authorization header is missing or wrong")

    def parse(self, request, raw: bytes, settings: dict) -> list[VendorEvent]:
        """Binary, structured or batched CloudEvents."""
        content_type = (request.mimetype or "").lower()
        if content_type in (STRUCTURED, BATCH):
            try:
                data = safejson.loads(raw)
            except ValueError as exc:
                raise PayloadError(f"the body is not JSON: {exc}") from None
            events = data if content_type == BATCH else [data]
            if not isinstance(events, list) or not events or not all(isinstance(e, dict) for e in events):
                raise PayloadError("a CloudEvents batch is a non-empty JSON array of event objects")
            if len(events) > MAX_BATCH:
                # Each event may need an OData call inline: bound the work one request can cause.
                raise PayloadError(f"a CloudEvents batch holds at most {MAX_BATCH} events, this one {len(events)}")
        else:
            attrs = {k[3:].lower(): v for k, v in request.headers.items() if k.lower().startswith("ce-")}
            if not attrs:
                raise PayloadError("no CloudEvents attributes: send ce-* headers or application/cloudevents+json")
            try:
                attrs["data"] = safejson.loads(raw) if raw else None
            except ValueError as exc:
                raise PayloadError(f"the event data is not JSON: {exc}") from None
            events = [attrs]
        return [self._event(e, i) for i, e in enumerate(events)]

    def _event(self, event: dict, index: int) -> VendorEvent:
        missing = [k for k in REQUIRED if not event.get(k)]
        if missing:
            raise PayloadError(f"event {index}: missing CloudEvents attribute(s) {', '.join(missing)}")
        if str(event["specversion"]) != "1.0":
            raise PayloadError(f"event {index}: specversion {event['specversion']} is not 1.0")
        delivery = f"{event['source']}:{event['id']}"
        known = _object_of(str(event["type"]))
        if known is None:
            return VendorEvent(delivery_id=delivery, object_type=str(event["type"]), object_id="-",
                               kind=str(event["type"]), ignore=f"{event['type']} is not a sales event hrdd screens")
        object_type, key, _, _ = known
        data = event.get("data") if isinstance(event.get("data"), dict) else {}
        if not data.get(key):
            raise PayloadError(f"event {index}: data.{key} is missing")
        occurred = event.get("time")
        return VendorEvent(delivery_id=delivery, object_type=object_type, object_id=str(data[key]),
                           kind=str(event["type"]), meta={"event_type": event["type"]},
                           modified_at=occurred if isinstance(occurred, str) and occurred else None)

    def enrich(self, event: VendorEvent, settings: dict) -> tuple[dict, list[dict]]:
        """Read the document with items and partners from the S/4HANA OData API."""
        base = reveal(settings.get("api_base_url")).strip().rstrip("/")
        if not base:
            raise EnrichmentError("api_base_url (the S/4HANA OData host) is not configured")
        _, _, path, expand = _object_of(event.kind)
        url = f"{base}/sap/opu/odata/sap/{path.format(id=event.object_id)}?$expand={expand}&$format=json"
        headers = {**tokens.headers(settings, where="adapters.sap"), **_basic(settings)}
        answer = call("GET", url, headers=headers, timeout=float(settings.get("timeout", 10)),
                      setting="adapters.sap.api_base_url").body
        doc = answer.get("d") if isinstance(answer, dict) else None
        if not isinstance(doc, dict):
            raise EnrichmentError("the OData answer had no 'd' object")
        lines = (doc.get("to_Item") or {}).get("results") or []
        record = {k: v for k, v in doc.items() if not isinstance(v, dict)}
        record["ReferenceQuotation"] = reference_quotation(doc, lines)
        # The partner list is read whole: a function it lacks is an order without that partner, not a
        # field the map could not find.
        record.update(dict.fromkeys(PARTNER_ROLES.values()))
        for partner in (doc.get("to_Partner") or {}).get("results") or []:
            address = partner.get("to_Address") or {}
            address = (address.get("results") or [address])[0] if isinstance(address, dict) else {}
            role = PARTNER_ROLES.get(partner.get("PartnerFunction"))
            if role:
                record[role] = {"Id": partner.get("Customer"), "FullName": address.get("OrganizationName1")
                                or partner.get("Customer"), "Country": address.get("Country")}
        return record, lines


def reference_quotation(doc: dict, lines: list[dict]) -> str | None:
    """The sales quotation a document was created from (SD document category B), or None.

    The header's ReferenceSDDocument is set when the whole order was created with reference to one document;
    otherwise the items carry it (an item without a category is taken as referring to a quotation: SD
    document numbers are unique, so a contract's number never names another deal's quotation).
    """
    if doc.get("ReferenceSDDocument") and doc.get("ReferenceSDDocumentCategory") in ("B", None, ""):
        return str(doc["ReferenceSDDocument"])
    for line in lines:
        if line.get("ReferenceSDDocument") and line.get("ReferenceSDDocumentCategory") in ("B", None, ""):
            return str(line["ReferenceSDDocument"])
    return None


def _basic(settings: dict) -> dict[str, str]:
    """Basic authentication for the OData API (communication user), when configured."""
    import base64

    user, password = settings.get("odata_user"), settings.get("odata_password")
    if not user or not password:
        return {}
    token = base64.b64encode(f"{reveal(user)}:{reveal(password)}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def check_settings(settings: dict) -> None:
    """Raise ConfigError when the SAP adapter is on without the OData host it must read every document from.

    (A value that is not an http(s) URL is refused by the adapters' common URL check.)
    """
    mine = adapter_settings(settings, "sap")
    if not mine or mine.get("enabled") is False:
        return
    base = reveal(mine.get("api_base_url")).strip()
    # Business events carry only the document's key: without the host every one would wait on hold.
    if not base:
        raise ConfigError("adapters.sap.api_base_url (HRDD_ADAPTER_SAP_API_BASE_URL) is required: the S/4HANA "
                          "API host (e.g. https://my123456-api.s4hana.cloud.sap); SAP business events carry "
                          "only the document's key, so hrdd reads every order and quotation through OData")


@hookimpl
def hrdd_startup(app):
    """Refuse to start with a SAP adapter that could screen nothing (no OData host to read documents from)."""
    check_settings(settings_for(app))


@hookimpl
def hrdd_webhook_adapter(name, app):
    """Own /v1/hooks/sap."""
    return SapEventMeshAdapter(app) if name == "sap" else None
