"""Microsoft Dynamics 365 / Dataverse (POST /v1/hooks/dynamics): the webhook's RemoteExecutionContext.

Register a webhook service endpoint with HttpHeader authentication (a header name and secret of your
choice) or WebhookKey (sent as ``?code=``), and a step on Create/Update of the opportunity, quote or
salesorder table with a post-image holding the fields the field map reads. Attributes arrive as
key/value lists; EntityReference lookups become ``{"id", "logical_name", "name"}``, Money and
OptionSetValue their value (the label under ``<attribute>@label``), ``/Date(…)/`` ISO 8601.
Deduplicated on OperationId + entity id. A context Dataverse trimmed for size
(``x-ms-dynamics-msg-size-exceeded``) is fetched from the Web API when credentials are configured.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from hrdd import safejson
from hrdd.adapters import fieldmap, signatures
from hrdd.adapters.base import WebhookAdapter
from hrdd.adapters.config import reveal
from hrdd.adapters.events import PayloadError, VendorEvent
from hrdd.adapters.http import call, tokens
from hrdd.adapters.pipeline import EnrichmentError
from hrdd.adapters.signatures import AuthError
from hrdd.hookspecs import hookimpl

_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
MESSAGES = ("Create", "Update")

_COMMON = {
    "end_user": {"name": "hrdd_enduser", "country": "hrdd_enduser_country",
                 "type": {"field": "hrdd_endusertype@label", "default": "unknown", "slug": True},
                 "sector": {"field": "hrdd_endusersector@label", "default": "other", "slug": True}},
    "parties": [{"role": {"const": "distributor"}, "name": "hrdd_distributor.name",
                 "country": "hrdd_distributor_country"}],
    "items": [{"sku": "hrdd_productcode", "name": "hrdd_productname",
               "capabilities": {"field": "hrdd_capabilities", "split": ";"}, "eccn": "hrdd_eccn",
               "unit_price": {"field": "totalamount", "type": "float"}}],
    "deployment_countries": {"field": "hrdd_deploymentcountries", "split": ";"},
    "intended_use": "hrdd_intendeduse",
    "answers": {"past_misuse": "hrdd_pastmisuse@label", "end_user_disclosed": "hrdd_enduserdisclosed@label",
                "exports_to_abusers": "hrdd_exportstoabusers@label",
                "accepts_safeguards": "hrdd_acceptssafeguards@label"},
}
# Quotes and orders screen as their opportunity's deal (their opportunityid lookup), so an order is compared
# with its quote, decided once and covered by the rider executed for the deal; without the lookup (a quote
# or order entered on its own) the row is its own deal.
_DEAL = {"object_type": {"const": "opportunity"}, "object_id": "opportunityid.id"}
DEFAULT_FIELD_MAPS = {
    "opportunity": {**_COMMON, "stage": {"field": "salesstage@label", "default": "opportunity", "values": {
        "Qualify": "opportunity", "Develop": "opportunity", "Propose": "quote", "Close": "order"}}},
    "quote": {**_COMMON, "stage": {"const": "quote"}, "reference": _DEAL},
    "salesorder": {**_COMMON, "stage": {"const": "order"}, "reference": _DEAL},
}
ENTITY_SETS = {"opportunity": "opportunities", "quote": "quotes", "salesorder": "salesorders"}


def convert(value):
    """A Dataverse JSON value in plain form (see the module docstring)."""
    if isinstance(value, str):
        match = _DATE.match(value)
        if match:
            moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(match.group(1)))
            return moment.isoformat().replace("+00:00", "Z")
        return value
    if isinstance(value, dict):
        kind = str(value.get("__type", "")).split(":", 1)[0]
        if kind == "EntityReference":
            return {"id": value.get("Id"), "logical_name": value.get("LogicalName"), "name": value.get("Name")}
        if kind and "Value" in value:
            # Money, OptionSetValue, BooleanManagedProperty, OptionSetValueCollection ...
            return convert(value["Value"])
        return {k: convert(v) for k, v in value.items()}
    if isinstance(value, list):
        return [convert(v) for v in value]
    return value


def pairs(container: dict, key: str) -> list:
    """A Dataverse key/value list (``[]`` when absent); PayloadError when it is not a list."""
    value = container.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadError(f"RemoteExecutionContext: {key} must be a list of key/value pairs, "
                           f"not {type(value).__name__}")
    return value


def attributes(entity: dict) -> dict:
    """An entity's Attributes and FormattedValues as one flat dict (labels under ``name@label``)."""
    out = {}
    for pair in pairs(entity, "Attributes"):
        if isinstance(pair, dict) and isinstance(pair.get("key"), str):
            out[pair["key"]] = convert(pair.get("value"))
    for pair in pairs(entity, "FormattedValues"):
        if isinstance(pair, dict) and isinstance(pair.get("key"), str):
            out[f"{pair['key']}@label"] = pair.get("value")
    return out


def _text_or_none(value) -> str | None:
    return value if isinstance(value, str) and value else None


def _parameter(context: dict, name: str):
    for pair in pairs(context, "InputParameters"):
        if isinstance(pair, dict) and pair.get("key") == name:
            return pair.get("value")
    return None


class DynamicsAdapter(WebhookAdapter):
    """Create and Update steps on opportunity, quote and salesorder (others via configured field maps)."""

    vendor = "dynamics"
    label = "Dynamics 365"
    default_field_maps = DEFAULT_FIELD_MAPS
    modified_fields = ("modifiedon",)

    def record_is_complete(self, event: VendorEvent) -> bool:
        """No: entity images and Target leave out empty columns, so an absent one may just be empty."""
        return False

    def authenticate(self, request, raw: bytes, settings: dict) -> None:
        """The configured header (HttpHeader) or ``code`` query parameter (WebhookKey) must match."""
        header = settings.get("auth_header")
        keys = signatures.configured(settings, "auth_key", "auth_keys") or signatures.configured(
            settings, "webhook_key", "webhook_keys")
        if not keys:
            raise AuthError("no Dynamics webhook key is configured (auth_key)")
        given = request.headers.get(str(header), "") if header else request.args.get("code", "")
        if not signatures.matches_any(given, keys):
            raise AuthError(f"the {'header ' + str(header) if header else 'code parameter'} is missing or wrong")
        orgs = settings.get("organization_ids") or []
        if orgs:
            try:
                org = str(safejson.loads(raw).get("OrganizationId", ""))
            except (ValueError, AttributeError):
                return  # parse() answers 400
            if not signatures.matches_any(org.lower(), [str(o).lower() for o in orgs]):
                raise AuthError("the OrganizationId is not on the allowlist")

    def parse(self, request, raw: bytes, settings: dict) -> list[VendorEvent]:
        """One event per context; Target attributes laid over the post-image (or pre-image)."""
        try:
            context = safejson.loads(raw)
        except ValueError as exc:
            raise PayloadError(f"the body is not JSON: {exc}") from None
        if not isinstance(context, dict):
            raise PayloadError("expected a RemoteExecutionContext object")
        missing = [k for k in ("OperationId", "MessageName", "PrimaryEntityName", "PrimaryEntityId")
                   if not context.get(k)]
        if missing:
            raise PayloadError(f"RemoteExecutionContext: missing {', '.join(missing)}")
        entity = str(context["PrimaryEntityName"])
        entity_id = str(context["PrimaryEntityId"])
        event = VendorEvent(delivery_id=f"{context['OperationId']}:{entity_id}", object_type=entity,
                            object_id=entity_id, kind=str(context["MessageName"]),
                            meta={"organization": context.get("OrganizationName")},
                            # When the operation began: asynchronous steps may finish out of that order.
                            modified_at=_text_or_none(context.get("OperationCreatedOn")))
        if event.kind not in MESSAGES:
            event.ignore = f"{event.kind} messages do not call for a screening"
            return [event]
        record: dict = {}
        for images in ("PreEntityImages", "PostEntityImages"):
            for pair in pairs(context, images):
                if isinstance(pair, dict) and isinstance(pair.get("value"), dict):
                    record.update(attributes(pair["value"]))
        target = _parameter(context, "Target")
        if isinstance(target, dict):
            record.update(attributes(target))
        trimmed = request.headers.get("x-ms-dynamics-msg-size-exceeded") or not record
        event.record = None if trimmed else record
        return [event]

    def enrich(self, event: VendorEvent, settings: dict) -> tuple[dict, list[dict]]:
        """Read the row through the Dataverse Web API (for contexts trimmed for size)."""
        base = reveal(settings.get("api_base_url")).strip().rstrip("/")
        if not base:
            raise EnrichmentError("the context arrived without attributes and api_base_url is not configured")
        entity_set = (settings.get("entity_sets") or {}).get(event.object_type) or ENTITY_SETS.get(
            event.object_type, event.object_type + "s")
        fields, _ = fieldmap.fields_used(self.field_map(event.object_type, settings))
        select = ",".join(sorted({f.split("@")[0] for f in fields if "." not in f}
                                 | set(self.modified_fields_of(settings))))
        headers = {**tokens.headers(settings, where="adapters.dynamics"),
                   "Prefer": 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'}
        row = call("GET", f"{base}/api/data/v9.2/{entity_set}({event.object_id})?$select={select}",
                   headers=headers, timeout=float(settings.get("timeout", 10)),
                   setting="adapters.dynamics.api_base_url").body
        if not isinstance(row, dict):
            raise EnrichmentError("the Web API answered without a row")
        record = {}
        for key, value in row.items():
            if key.endswith("@OData.Community.Display.V1.FormattedValue"):
                record[key.split("@")[0] + "@label"] = value
            elif not key.startswith("@"):
                record[key] = value
        return record, []


@hookimpl
def hrdd_webhook_adapter(name, app):
    """Own /v1/hooks/dynamics."""
    return DynamicsAdapter(app) if name == "dynamics" else None
