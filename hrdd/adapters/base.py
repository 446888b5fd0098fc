"""The adapter template every vendor plugin fills in: authenticate, parse, enrich, answer."""

from __future__ import annotations

import copy
import logging
from datetime import datetime
from typing import Any

from flask import Response, jsonify

from hrdd.adapters import fieldmap, pipeline, versions
from hrdd.adapters.config import adapter_settings, settings_for
from hrdd.adapters.events import PayloadError, VendorEvent
from hrdd.adapters.signatures import AuthError
from hrdd.errors import ApiError

log = logging.getLogger(__name__)


def deep_merge(base: dict, extra: dict) -> dict:
    """``base`` with ``extra`` laid over it (nested mappings merged, everything else replaced)."""
    out = copy.deepcopy(base)
    for key, value in (extra or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


# The widths of adapter_deliveries' columns: longer vendor ids were a 500 on PostgreSQL.
EVENT_LIMITS = {"object_id": 128, "object_type": 64, "system": 64, "delivery_id": 255}


def check_event_sizes(events: list[VendorEvent]) -> None:
    """Raise PayloadError naming the first event id or type longer than the store keeps."""
    for i, event in enumerate(events):
        for name, limit in EVENT_LIMITS.items():
            value = getattr(event, name) or ""
            if len(value) > limit:
                raise PayloadError(f"event {i}: {name} is {len(value)} characters; at most {limit} are accepted")


class WebhookAdapter:
    """One vendor's webhook endpoint. Subclasses set ``vendor`` and implement the vendor's parts."""

    vendor = ""
    #: the vendor's name in messages ("HubSpot dealstage 'closedlost' is not a stage hrdd screens").
    label = ""
    #: senders that give up after about a second (HubSpot, Odoo): thin events go to the worker.
    time_sensitive = False
    #: canonical field map per vendor object type, overridable by ``field_maps`` in configuration.
    default_field_maps: dict[str, dict] = {}
    #: record fields holding the vendor's last-modified time, first found wins (``modified_fields`` overrides).
    modified_fields: tuple[str, ...] = ()

    def __init__(self, app):
        self.app = app

    # ---- configuration ----
    @property
    def settings(self) -> dict[str, Any]:
        """All adapter settings of the app (adapters, writeback, worker)."""
        return settings_for(self.app)

    def settings_from(self, settings: dict) -> dict[str, Any]:
        """This vendor's own section of the settings."""
        return adapter_settings(settings, self.vendor)

    @property
    def system(self) -> str:
        """The ``reference.system`` of the transactions this adapter creates."""
        return str(self.settings_from(self.settings).get("system") or self.vendor)

    def field_map(self, object_type: str, vendor_settings: dict) -> dict:
        """The field map for a vendor object type: the default with configured changes laid over it."""
        configured = (vendor_settings.get("field_maps") or {}).get(object_type)
        default = self.default_field_maps.get(object_type) or self.default_field_maps.get("*") or {}
        return deep_merge(default, configured or {})

    def configured(self, mine: dict) -> bool:
        """True when this adapter has settings and is not switched off."""
        return bool(mine) and mine.get("enabled") is not False

    def canonical(self, event: VendorEvent, settings: dict) -> fieldmap.Mapped:
        """The canonical transaction body of a complete event, what is missing from it, and its sources."""
        field_map = self.field_map(event.object_type, settings)
        mapped = fieldmap.apply(field_map, event.record or {}, event.lines,
                                name=f"field_maps.{event.object_type}", check_absent=self.record_is_complete(event))
        mapped.body = {"reference": self.deal_reference(event, field_map), **mapped.body}
        return mapped

    def record_is_complete(self, event: VendorEvent) -> bool:
        """True when the vendor sends every field asked for (empty ones as null), so an absent one is an error.

        Vendors whose records leave empty fields out (Dataverse images) override this: for them an absent
        field cannot be told from an empty one.
        """
        return True

    def deal_reference(self, event: VendorEvent, field_map: dict) -> dict[str, str]:
        """The deal an event's record belongs to: the field map's ``reference`` when it names one, else the record.

        A quote and the order made from it are separate records in most CRMs and ERPs; mapped to the record
        that ties them (the opportunity, the reference quotation), they screen as one transaction, so the
        order is compared with its quote, decided once and covered by the rider executed for the deal.
        """
        system = event.system or self.system
        spec = field_map.get("reference") or {}
        if not isinstance(spec, dict):
            raise fieldmap.FieldMapError("field_map.reference: expected a mapping with object_type and object_id")
        object_type = fieldmap.resolve(event.record or {}, spec.get("object_type"), "field_map.reference.object_type")
        object_id = fieldmap.resolve(event.record or {}, spec.get("object_id"), "field_map.reference.object_id")
        if object_type in (None, "") or object_id in (None, ""):
            # Not tied to another record (an order entered without a quotation): the record is the deal.
            return {"system": system, "object_type": event.object_type, "object_id": event.object_id}
        return {"system": system, "object_type": str(object_type), "object_id": str(object_id)}

    def modified_fields_of(self, settings: dict) -> tuple[str, ...]:
        """The record fields read for the modification time: ``modified_fields`` if configured, else the vendor's."""
        return tuple(settings.get("modified_fields") or self.modified_fields)

    def modified_at(self, event: VendorEvent, settings: dict) -> tuple[datetime, str] | None:
        """The vendor's time of the record state ``event`` carries, and where it was read.

        A record field (``record:<field>``) if the record has one, else the event's own time (``event``).

        None when neither is sent (the delivery is then screened in arrival order) or when the time lies
        further in the future than ``max_clock_skew_seconds`` allows (a mis-mapped date field would
        otherwise make every later delivery of the record look stale).
        """
        found = versions.record_time(event.record, self.modified_fields_of(settings))
        if found is None:
            moment = versions.parse_vendor_time(event.modified_at)
            found = (moment, "event") if moment is not None else None
        if found is not None and found[0] > pipeline.now() + versions.clock_skew_allowed(settings):
            log.warning("%s delivery %s: modification time %s lies in the future; not used to order deliveries",
                        self.vendor, event.delivery_id, found[0].isoformat())
            return None
        return found

    # ---- the request ----
    def handle(self, request, services) -> Response:
        """Authenticate, parse, deduplicate, screen or queue, and answer the vendor's way."""
        settings = self.settings
        mine = self.settings_from(settings)
        if request.method == "OPTIONS":
            return self.options(request, mine)
        if request.method != "POST":
            return self.error(405, "method_not_allowed", f"/v1/hooks/{self.vendor} accepts POST")
        if not self.configured(mine):
            return self.error(503, "adapter_not_configured",
                              f"The {self.vendor} adapter is not configured (see README, 'CRM and ERP adapters')")
        raw = request.get_data(cache=True)
        try:
            self.authenticate(request, raw, mine)
        except AuthError as exc:
            log.warning("%s webhook rejected: %s", self.vendor, exc)
            return self.error(401, "unauthorized", str(exc))
        try:
            events = self.parse(request, raw, mine)
            check_event_sizes(events)
        except PayloadError as exc:
            return self.error(400, "bad_payload", str(exc))
        outcomes = pipeline.receive(services, self, events, settings,
                                    inline_thin=not self.time_sensitive and bool(mine.get("inline_enrichment", True)))
        return self.respond(request, outcomes, services)

    def options(self, request, settings: dict) -> Response:
        """Answer an OPTIONS request (only CloudEvents senders use it)."""
        response = Response(status=204)
        response.headers["Allow"] = "POST, OPTIONS"
        return response

    def error(self, status: int, code: str, message: str) -> Response:
        """An error in the project's one JSON shape (the SOAP adapter answers with a SOAP fault)."""
        raise ApiError(status, code, message)

    def respond(self, request, outcomes: list[dict], services) -> Response:
        """202 with the per-event outcomes (notify-style senders)."""
        response = jsonify({"accepted": len(outcomes), "results": outcomes})
        response.status_code = 202
        return response

    # ---- what each vendor fills in ----
    def authenticate(self, request, raw: bytes, settings: dict) -> None:
        """Raise AuthError unless the request carries this vendor's valid credentials."""
        raise NotImplementedError

    def parse(self, request, raw: bytes, settings: dict) -> list[VendorEvent]:
        """Turn the raw body into events; raise PayloadError with the reason when it cannot."""
        raise NotImplementedError

    def enrich(self, event: VendorEvent, settings: dict) -> tuple[dict, list[dict]]:
        """Fetch a thin event's record and line items from the vendor's API."""
        raise pipeline.EnrichmentError(f"the {self.vendor} adapter cannot fetch records; send complete records")
