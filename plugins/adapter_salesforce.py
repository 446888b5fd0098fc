"""Salesforce Outbound Messages (POST /v1/hooks/salesforce): SOAP 1.1 ``notifications``, answered with Ack.

Each message carries up to 100 notifications of one object type (Opportunity, Quote, Order, ...). The
endpoint URL must carry the configured ``?token=`` and the OrganizationId be on the configured allowlist;
fields are mapped through the configured field map; each notification is deduplicated on OrganizationId +
notification Id, so Salesforce's retries never screen twice. Line items, which outbound messages cannot carry, can be fetched with a SOQL query.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from urllib.parse import quote

import defusedxml.ElementTree as defused
from defusedxml import DefusedXmlException
from flask import Response

from hrdd.adapters import signatures
from hrdd.adapters.base import WebhookAdapter
from hrdd.adapters.config import ConfigError, adapter_settings, reveal, settings_for
from hrdd.adapters.events import PayloadError, VendorEvent
from hrdd.adapters.http import call, tokens
from hrdd.adapters.pipeline import EnrichmentError
from hrdd.adapters.signatures import AuthError
from hrdd.hookspecs import hookimpl

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
OM_NS = "http://soap.sforce.com/2005/09/outbound"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
MAX_NOTIFICATIONS = 100

_ANSWERS = {"past_misuse": "HRDD_Past_Misuse__c", "end_user_disclosed": "HRDD_End_User_Disclosed__c",
            "exports_to_abusers": "HRDD_Exports_To_Abusers__c", "accepts_safeguards": "HRDD_Accepts_Safeguards__c"}
_END_USER = {"name": "HRDD_End_User_Name__c", "country": "HRDD_End_User_Country__c",
             "type": {"field": "HRDD_End_User_Type__c", "default": "unknown", "slug": True},
             "sector": {"field": "HRDD_End_User_Sector__c", "default": "other", "slug": True}}
_PARTIES = [{"role": {"const": "distributor"}, "name": "HRDD_Distributor_Name__c",
             "country": "HRDD_Distributor_Country__c"},
            {"role": {"const": "consignee"}, "name": "HRDD_Consignee_Name__c",
             "country": "HRDD_Consignee_Country__c"}]
_ITEM = {"sku": "HRDD_Product_Code__c", "name": "HRDD_Product_Name__c",
         "capabilities": {"field": "HRDD_Capabilities__c", "split": ";"}, "eccn": "HRDD_ECCN__c",
         "unit_price": {"field": "Amount", "type": "float"}, "currency": "CurrencyIsoCode"}
_COMMON = {"end_user": _END_USER, "parties": _PARTIES, "items": _ITEM,
           "deployment_countries": {"field": "HRDD_Deployment_Countries__c", "split": ";"},
           "intended_use": "HRDD_Intended_Use__c", "answers": _ANSWERS}
# Quotes and orders screen as their opportunity's deal (when the outbound message selects OpportunityId).
_DEAL = {"object_type": {"const": "Opportunity"}, "object_id": "OpportunityId"}

DEFAULT_FIELD_MAPS = {
    "Opportunity": {**_COMMON, "stage": {"field": "StageName", "default": "opportunity", "values": {
        "Prospecting": "opportunity", "Qualification": "opportunity", "Needs Analysis": "opportunity",
        "Value Proposition": "opportunity", "Id. Decision Makers": "opportunity",
        "Perception Analysis": "opportunity", "Proposal/Price Quote": "quote", "Negotiation/Review": "quote",
        "Closed Won": "order"}}},
    "Quote": {**_COMMON, "stage": {"const": "quote"}, "reference": _DEAL,
              "items": {**_ITEM, "unit_price": {"field": "GrandTotal", "type": "float"}}},
    "Order": {**_COMMON, "stage": {"const": "order"}, "reference": _DEAL,
              "items": {**_ITEM, "unit_price": {"field": "TotalAmount", "type": "float"}}},
}


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_notifications(raw: bytes) -> dict:
    """The parts of a ``notifications`` message: org, action, URLs and each notification's fields."""
    if b"<!DOCTYPE" in raw[:2048].upper() or b"<!ENTITY" in raw.upper():
        # SOAP forbids DTDs; refusing them shuts out entity-expansion attacks.
        raise PayloadError("XML with a DOCTYPE or ENTITY declaration is not accepted")
    try:
        # defusedxml also refuses a DTD the byte check above cannot see (a UTF-16 encoded body).
        root = defused.fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        raise PayloadError("XML with a DOCTYPE or ENTITY declaration is not accepted") from None
    except ET.ParseError as exc:
        raise PayloadError(f"the body is not well-formed XML: {exc}") from None
    body = root.find(f"{{{SOAP_NS}}}Body")
    message = body.find(f"{{{OM_NS}}}notifications") if body is not None else None
    if message is None:
        raise PayloadError("not a Salesforce outbound message: no soapenv:Body/notifications element")

    def text(name: str) -> str | None:
        node = message.find(f"{{{OM_NS}}}{name}")
        return node.text.strip() if node is not None and node.text else None

    org = text("OrganizationId")
    if not org:
        raise PayloadError("notifications: OrganizationId is missing")
    notes = message.findall(f"{{{OM_NS}}}Notification")
    if not notes:
        raise PayloadError("notifications: no Notification element")
    if len(notes) > MAX_NOTIFICATIONS:
        raise PayloadError(f"notifications: {len(notes)} notifications, Salesforce sends at most 100")
    parsed = []
    for i, note in enumerate(notes, 1):
        note_id = note.find(f"{{{OM_NS}}}Id")
        sobject = note.find(f"{{{OM_NS}}}sObject")
        if note_id is None or not (note_id.text or "").strip():
            raise PayloadError(f"Notification {i}: Id is missing")
        if sobject is None:
            raise PayloadError(f"Notification {i}: sObject is missing")
        object_type = _local(sobject.get(f"{{{XSI_NS}}}type", "")).split(":")[-1]
        fields = {}
        for child in sobject:
            nil = child.get(f"{{{XSI_NS}}}nil") == "true"
            fields[_local(child.tag)] = None if nil else (child.text or "").strip()
        if not fields.get("Id"):
            raise PayloadError(f"Notification {i}: the sObject has no Id field")
        parsed.append({"id": note_id.text.strip(), "object_type": object_type or "sObject", "fields": fields})
    return {"organization_id": org, "action_id": text("ActionId"), "enterprise_url": text("EnterpriseUrl"),
            "notifications": parsed}


def soap_response(body_xml: str, status: int = 200) -> Response:
    """A SOAP 1.1 envelope around ``body_xml``."""
    envelope = (f'<?xml version="1.0" encoding="UTF-8"?>\n<soapenv:Envelope xmlns:soapenv="{SOAP_NS}">'
                f"<soapenv:Body>{body_xml}</soapenv:Body></soapenv:Envelope>")
    return Response(envelope, status=status, mimetype="text/xml")


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SalesforceAdapter(WebhookAdapter):
    """Outbound Messages of Opportunity, Quote or Order (or any object with a configured field map)."""

    vendor = "salesforce"
    label = "Salesforce"
    default_field_maps = DEFAULT_FIELD_MAPS
    # Sent when the outbound message selects them; SystemModstamp also moves on system changes.
    modified_fields = ("LastModifiedDate", "SystemModstamp")

    def authenticate(self, request, raw: bytes, settings: dict) -> None:
        """The ``?token=`` must match and the OrganizationId (and ActionId, when set) be allowlisted."""
        allowed = settings.get("organization_ids") or []
        if not allowed:
            raise AuthError("no Salesforce organization ids are allowlisted (organization_ids)")
        tokens_ = signatures.configured(settings, "token", "tokens")
        if not tokens_:
            raise AuthError("no Salesforce endpoint token is configured (token)")
        if not signatures.matches_any(request.args.get("token", ""), tokens_):
            raise AuthError("the token in the endpoint URL is missing or wrong")
        try:
            message = parse_notifications(raw)
        except PayloadError:
            return  # parse() reports the reason with a 400
        # Salesforce shows 15- or 18-character ids; compare on the 15-character stem.
        org = message["organization_id"][:15]
        if not signatures.matches_any(org, [str(reveal(a))[:15] for a in allowed]):
            raise AuthError(f"organization {org} is not on the allowlist")
        actions = settings.get("action_ids") or []
        if actions and not signatures.matches_any((message["action_id"] or "")[:15],
                                                  [str(a)[:15] for a in actions]):
            raise AuthError("the outbound message's ActionId is not on the allowlist")

    def record_is_complete(self, event: VendorEvent) -> bool:
        """False: an outbound message may leave an empty field out rather than send it as ``xsi:nil``.

        Salesforce's documentation does not promise either, and holding every deal whose distributor field
        is blank would stop the integration; a misspelt field therefore reads as empty (README, field maps).
        """
        return False

    def parse(self, request, raw: bytes, settings: dict) -> list[VendorEvent]:
        """One event per Notification, keyed on OrganizationId + notification Id."""
        message = parse_notifications(raw)
        org = message["organization_id"]
        return [VendorEvent(delivery_id=f"{org}:{n['id']}", object_type=n["object_type"],
                            object_id=n["fields"]["Id"], record=n["fields"], kind="notification",
                            lines=[], meta={"organization_id": org})
                for n in message["notifications"]]

    def canonical(self, event: VendorEvent, settings: dict):
        """Fetch line items first when a SOQL query is configured for this object type."""
        queries = settings.get("line_item_queries") or {}
        if event.object_type in queries and not event.lines:
            event.lines = self._lines(queries[event.object_type], event.object_id, settings)
        return super().canonical(event, settings)

    def _lines(self, soql: str, object_id: str, settings: dict) -> list[dict]:
        base = reveal(settings.get("instance_url")).strip().rstrip("/")
        if not base:
            raise EnrichmentError("line_item_queries needs instance_url")
        version = settings.get("api_version", "v61.0")
        query = soql.replace("{id}", object_id.replace("'", ""))
        answer = call("GET", f"{base}/services/data/{version}/query?q={quote(query)}",
                      headers=tokens.headers(settings, where="adapters.salesforce"),
                      timeout=float(settings.get("timeout", 10)), setting="adapters.salesforce.instance_url")
        # Relationship fields stay nested (Product2.Name is reached by the field map's dotted path).
        return answer.body.get("records", []) if isinstance(answer.body, dict) else []

    def respond(self, request, outcomes: list[dict], services) -> Response:
        """The SOAP Ack: every notification is recorded (screened, or held with its reason)."""
        return soap_response(f'<notificationsResponse xmlns="{OM_NS}"><Ack>true</Ack></notificationsResponse>')

    def error(self, status: int, code: str, message: str) -> Response:
        """A SOAP fault, so Salesforce's outbound message queue shows the reason."""
        fault_code = "soapenv:Client" if status < 500 else "soapenv:Server"
        return soap_response(f"<soapenv:Fault><faultcode>{fault_code}</faultcode>"
                             f"<faultstring>{_escape(code + ': ' + message)}</faultstring></soapenv:Fault>",
                             status=status)


def check_settings(settings: dict) -> None:
    """Raise ConfigError when the Salesforce adapter is configured without its shared token."""
    mine = adapter_settings(settings, "salesforce")
    # The org id is no secret (it shows in every Web-to-Lead form), so it cannot be the only check.
    if mine and mine.get("enabled") is not False and not signatures.configured(mine, "token", "tokens"):
        raise ConfigError("adapters.salesforce.token (HRDD_ADAPTER_SALESFORCE_TOKEN) is required: a long random "
                          "string, sent by Salesforce as ?token= in the outbound message's endpoint URL")


@hookimpl
def hrdd_startup(app):
    """Refuse to start with a Salesforce adapter that anyone knowing the org id could call."""
    check_settings(settings_for(app))


@hookimpl
def hrdd_webhook_adapter(name, app):
    """Own /v1/hooks/salesforce."""
    return SalesforceAdapter(app) if name == "salesforce" else None
