"""From vendor events to stored screenings: dedup per vendor delivery, enrichment, field maps, holds."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from hrdd.adapters import outbox, reasons, versions
from hrdd.adapters.events import VendorEvent
from hrdd.adapters.http import HttpError
from hrdd.adapters.tables import adapter_deliveries, now
from hrdd.errors import ApiError

log = logging.getLogger(__name__)

# Statuses that answer a replayed delivery from the record instead of processing it again.
RECORDED = ("screened", "queued", "pending_enrichment", "invalid", "failed", "stale")


class EnrichmentError(Exception):
    """The vendor's API could not supply the record's fields (yet); the message says why."""


# The vendor record whose delivery is being screened. Its deal may be another record (an order screens as
# its quotation's deal): the write-back queued with the screening goes to the record that was delivered.
_DELIVERED: ContextVar[dict | None] = ContextVar("hrdd_delivered_record", default=None)


@contextmanager
def delivering(system: str, object_type: str, object_id: str) -> Iterator[None]:
    """Screenings stored inside this block were delivered as this vendor record."""
    token = _DELIVERED.set({"system": system, "object_type": object_type, "object_id": object_id})
    try:
        yield
    finally:
        _DELIVERED.reset(token)


def delivered_record(reference: Mapping) -> dict:
    """Where a screening's write-back goes: the vendor record being delivered, else the deal's reference."""
    return dict(_DELIVERED.get() or {k: reference[k] for k in ("system", "object_type", "object_id")})


def record_of_screening(store, screening_id: str | None, reference: Mapping) -> dict:
    """The vendor record a stored screening was delivered as (for later write-backs), else the deal's reference."""
    if screening_id:
        c = adapter_deliveries.c
        with store.reading() as conn:
            row = conn.execute(sa.select(c.system, c.object_type, c.object_id).where(c.screening_id == screening_id)
                               .order_by(c.created_at).limit(1)).first()
        if row is not None:
            return {"system": row.system, "object_type": row.object_type, "object_id": row.object_id}
    return {k: reference[k] for k in ("system", "object_type", "object_id")}


def transaction_of_record(store, vendor: str, system: str, object_type: str, object_id: str) -> str | None:
    """The deal a vendor record was last screened in (its own reference's, when it never was)."""
    c = adapter_deliveries.c
    with store.reading() as conn:
        found = conn.execute(sa.select(c.transaction_id).where(
            c.vendor == vendor, c.system == system, c.object_type == object_type, c.object_id == object_id,
            c.transaction_id.is_not(None)).order_by(c.updated_at.desc()).limit(1)).scalar()
    return found or store.find_transaction(system, object_type, object_id)


def _claim(store, vendor: str, system: str, event: VendorEvent) -> Mapping | None:
    """Record the delivery; return the earlier record when this delivery id was seen before."""
    moment = now()
    try:
        with store.begin() as conn:
            conn.execute(adapter_deliveries.insert().values(
                vendor=vendor, delivery_id=event.delivery_id, status="received", system=system,
                object_type=event.object_type, object_id=event.object_id, event=event.to_dict(),
                outcome={}, attempts=0, created_at=moment, updated_at=moment))
        return None
    except IntegrityError:
        return delivery(store, vendor, event.delivery_id)


def _other_body(existing: Mapping, event: VendorEvent) -> bool:
    given = event.meta.get("body_sha256")
    return bool(given) and ((existing["event"] or {}).get("meta") or {}).get("body_sha256") != given


def latest_delivery(store, vendor: str, system: str, object_type: str, object_id: str) -> Mapping | None:
    """The most recently received delivery of a vendor for one object, or None."""
    c = adapter_deliveries.c
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(adapter_deliveries).where(
            c.vendor == vendor, c.system == system, c.object_type == object_type, c.object_id == object_id,
        ).order_by(c.created_at.desc(), c.delivery_id.desc()).limit(1)).first()
    return row._mapping if row is not None else None


def content_delivery_id(store, vendor: str, system: str, event: VendorEvent) -> str:
    """The delivery id of an event known only by its content (``meta["content_id"]``, a body hash).

    Equal content is a retry only while it is the object's latest delivery: after A, B, A the third
    delivery is the record changing back, and is screened again rather than answered with A's old outcome.
    """
    content_id = event.meta["content_id"]
    latest = latest_delivery(store, vendor, system, event.object_type, event.object_id)
    if latest is None:
        return content_id
    if ((latest["event"] or {}).get("meta") or {}).get("content_id") == content_id:
        return latest["delivery_id"]
    # Derived from the delivery it follows, so two copies of this one still claim the same id.
    return f"{content_id}:after:{hashlib.sha256(latest['delivery_id'].encode()).hexdigest()[:16]}"


def delivery(store, vendor: str, delivery_id: str) -> Mapping | None:
    """The recorded delivery of a vendor, or None."""
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(adapter_deliveries).where(
            adapter_deliveries.c.vendor == vendor, adapter_deliveries.c.delivery_id == delivery_id)).first()
    return row._mapping if row is not None else None


def _base_outcome(event: VendorEvent) -> dict[str, Any]:
    return {"delivery_id": event.delivery_id, "object_type": event.object_type, "object_id": event.object_id}


def _update(store, vendor: str, current: VendorEvent, *, status: str, outcome: dict, hold: dict | None = None,
            settings: dict | None = None, version=None, **values) -> dict:
    """Record a delivery's status and outcome; ``version(conn)`` runs first, in the same transaction."""
    with store.begin() as conn:
        if version is not None:
            version(conn)
        conn.execute(adapter_deliveries.update().where(
            adapter_deliveries.c.vendor == vendor, adapter_deliveries.c.delivery_id == current.delivery_id,
        ).values(status=status, outcome=outcome, updated_at=now(), **values))
        if hold is not None:
            # Written with the record of the failure, so the CRM hears "hold" even if we crash next.
            outbox.enqueue(conn, settings or {}, **hold)
    return outcome


def receive(services, adapter, events: list[VendorEvent], settings: dict, *, inline_thin: bool) -> list[dict]:
    """Process a delivery's events; each outcome says screened, queued, pending, invalid or ignored."""
    return [receive_one(services, adapter, event, settings, inline_thin=inline_thin) for event in events]


def _replayed(services, existing: Mapping) -> dict:
    """A recorded outcome answered again, with the deal's gate now where it has a screening.

    A sender retrying after a timeout (a HubSpot workflow branching on the answer, say) must not act on
    the gate of minutes ago when a reviewer, a newer screening or an unscreened event has changed it.
    """
    outcome = {**existing["outcome"], "replayed": True}
    screening_id = outcome.get("screening_id")
    stored = services.store.get_screening(screening_id) if screening_id else None
    if stored is not None:
        current = services.as_current(stored)
        outcome.update(gate=current["gate"], hold_reasons=current.get("hold_reasons", []))
        if current.get("superseded_by"):
            outcome["superseded_by"] = current["superseded_by"]
    return outcome


def receive_one(services, adapter, event: VendorEvent, settings: dict, *, inline_thin: bool) -> dict:
    """Process one event exactly once per (vendor, delivery id); replays get the recorded outcome."""
    if event.ignore:
        return {**_base_outcome(event), "status": "ignored", "reason": event.ignore}
    system = event.system or adapter.system
    if event.meta.get("content_id"):
        event.delivery_id = content_delivery_id(services.store, adapter.vendor, system, event)
    existing = _claim(services.store, adapter.vendor, system, event)
    if existing is not None and _other_body(existing, event):
        return {**_base_outcome(event), "status": "conflict", "screening_id": existing["screening_id"],
                "idempotency_key": event.meta.get("idempotency_key"), "earlier_status": existing["status"],
                "earlier_reason": (existing["outcome"] or {}).get("reason"),
                "reason": "the delivery key was already used for a different body"}
    if existing is not None and existing["status"] in RECORDED:
        return _replayed(services, existing)
    if event.thin and not inline_thin:
        outcome = {**_base_outcome(event), "status": "queued",
                   "reason": "the record will be fetched from the vendor and screened by the worker"}
        return _update(services.store, adapter.vendor, event, status="queued", outcome=outcome,
                       next_attempt_at=now())
    return complete(services, adapter, event, settings, attempts=0)


def complete(services, adapter, event: VendorEvent, settings: dict, *, attempts: int) -> dict:
    """Enrich a thin event if needed, map it and screen it; record holds for what cannot be screened."""
    vendor_settings = adapter.settings_from(settings)
    try:
        if event.thin:
            event.record, event.lines = adapter.enrich(event, vendor_settings)
        mapped = adapter.canonical(event, vendor_settings)
    except (EnrichmentError, HttpError) as exc:
        return _pending(services, adapter, event, settings, attempts + 1, str(exc))
    except Exception as exc:
        # A field map that cannot work on this record: recorded and held with the reason, never a 500 that
        # leaves the delivery "received" and fails the same way on every retry.
        log.exception("%s delivery %s could not be mapped", adapter.vendor, event.delivery_id)
        return _invalid(services, adapter, event, settings,
                        f"cannot screen: the {adapter.vendor} field map could not be applied: {exc}")
    # Third-party adapters may still answer (body, missing).
    body, missing, sources = (mapped.body, mapped.missing, mapped.sources) if not isinstance(mapped, tuple) \
        else (*mapped, {})
    version = _version_claim(adapter, event, vendor_settings)
    try:
        if missing:
            return _invalid(services, adapter, event, settings,
                            "cannot screen: missing or unusable fields: " + "; ".join(missing), version=version)
        try:
            with delivering(event.system or adapter.system, event.object_type, event.object_id):
                screening, created = services.screen_and_store(
                    body, idempotency_key=f"{adapter.vendor}:{event.delivery_id}"[:255], source=adapter.vendor,
                    precondition=version)
        except ApiError as exc:
            named = reasons.invalid_fields(exc.errors, sources, label=adapter.label or adapter.vendor,
                                           object_type=event.object_type)
            detail = "; ".join(named) if named else exc.message
            return _invalid(services, adapter, event, settings, f"cannot screen: {detail}", errors=exc.errors,
                            version=version)
    except versions.StaleDelivery as stale:
        return _stale(services, adapter, event, settings, stale, attempts)
    outcome = {**_base_outcome(event), "status": "screened", "screening_id": screening["id"],
               "transaction_id": screening["transaction_id"], "stage": screening["stage"],
               "decision": screening["decision"], "gate": screening["gate"],
               "hold_reasons": screening.get("hold_reasons", [])}
    if screening.get("superseded_because"):
        # A quote arriving after the order: stored, but the deal's gate is the order's.
        outcome.update(superseded_by=screening["superseded_by"], superseded_because=screening["superseded_because"])
    recorded = _update(services.store, adapter.vendor, event, status="screened", outcome=outcome,
                       screening_id=screening["id"], transaction_id=screening["transaction_id"],
                       stage=screening["stage"], reason=None, event=event.to_dict(), next_attempt_at=None)
    # A copy of this delivery processed at the same moment (another instance, say) stored the screening:
    # answer as a replay, so the sender sees one "created" per delivery.
    return recorded if created else {**recorded, "replayed": True}


def _version_claim(adapter, event: VendorEvent, vendor_settings: dict):
    """The check that this delivery's record state is not older than one already processed, or None.

    It runs inside the transaction that stores the screening (after the deal's row is locked) or records
    the delivery as invalid, so of two versions processed at once the older one cannot be stored last.
    """
    found = adapter.modified_at(event, vendor_settings)
    if found is None:
        return None
    moment, source = found
    system = event.system or adapter.system

    def claim(conn) -> None:
        versions.claim(conn, vendor=adapter.vendor, system=system, object_type=event.object_type,
                       object_id=event.object_id, modified_at=moment, source=source,
                       delivery_id=event.delivery_id)
    return claim


def _stale(services, adapter, event: VendorEvent, settings: dict, stale: versions.StaleDelivery,
           attempts: int) -> dict:
    """Record a delivery that carries an older state of the record than one already processed."""
    log.info("%s delivery %s is stale: %s", adapter.vendor, event.delivery_id, stale.reason)
    outcome = {**_base_outcome(event), "status": "stale", "reason": stale.reason,
               "modified_at": versions.iso(stale.modified_at), "newer_delivery_id": stale.newer_delivery,
               "newer_modified_at": versions.iso(stale.newer_at)}
    store = services.store
    system = event.system or adapter.system
    this = (adapter_deliveries.c.vendor == adapter.vendor, adapter_deliveries.c.delivery_id == event.delivery_id)
    # One transaction, whose reads share its connection: the gate below sees this delivery as stale (not
    # waiting to be screened), and the status, the answer and any write-back are stored together.
    with store.read_scope(), store.writing() as conn:
        conn.execute(adapter_deliveries.update().where(*this).values(
            status="stale", reason=stale.reason, event=event.to_dict(), next_attempt_at=None, updated_at=now()))
        transaction_id = transaction_of_record(store, adapter.vendor, system, event.object_type, event.object_id)
        latest = store.latest_screening(transaction_id) if transaction_id else None
        if latest is not None:
            # What governs the deal instead, for senders that act on the answer (workflows, batch callers).
            current = services.as_current(latest)
            outcome.update(transaction_id=transaction_id, screening_id=latest["id"], gate=current["gate"],
                           hold_reasons=current.get("hold_reasons", []))
            if attempts > 0:
                # A failed fetch of this delivery told the CRM "hold"; now that it is known to be stale, the
                # CRM must hear the deal's gate again, or it keeps that hold until the record next changes.
                outbox.enqueue(conn, settings, system=system, object_type=event.object_type,
                               object_id=event.object_id, transaction_id=transaction_id, screening_id=latest["id"])
        else:
            newer = delivery(store, adapter.vendor, stale.newer_delivery)
            if newer is not None and newer["status"] != "screened":
                # The newer state could not be screened either: the deal is held for its reason.
                outcome.update(gate="hold", hold_reasons=[
                    newer["reason"] or f"delivery {stale.newer_delivery} is not screened yet"])
        conn.execute(adapter_deliveries.update().where(*this).values(outcome=outcome))
    return outcome


def _hold(adapter, event: VendorEvent, reason: str) -> dict:
    return {"system": event.system or adapter.system, "object_type": event.object_type, "object_id": event.object_id,
            "gate": "hold", "reason": reason}


def _invalid(services, adapter, event, settings, reason: str, errors: dict | None = None, version=None) -> dict:
    log.info("%s delivery %s recorded as invalid: %s", adapter.vendor, event.delivery_id, reason)
    outcome = {**_base_outcome(event), "status": "invalid", "gate": "hold", "reason": reason}
    if errors:
        outcome["errors"] = errors
    return _update(services.store, adapter.vendor, event, status="invalid", outcome=outcome, reason=reason,
                   hold=_hold(adapter, event, reason), settings=settings, next_attempt_at=None, version=version)


def _pending(services, adapter, event, settings, attempts: int, error: str) -> dict:
    policy = outbox.worker_settings(settings)
    final = attempts >= int(policy["max_attempts"])
    status = "failed" if final else "pending_enrichment"
    reason = f"could not fetch the record from {adapter.vendor}: {error}"
    outcome = {**_base_outcome(event), "status": status, "gate": "hold", "reason": reason}
    # Tell the CRM "hold" once, on the first failure; retries only update the record.
    hold = _hold(adapter, event, reason) if attempts == 1 else None
    return _update(services.store, adapter.vendor, event, status=status, outcome=outcome, reason=reason,
                   attempts=attempts, hold=hold, settings=settings,
                   next_attempt_at=None if final else now() + outbox.backoff(attempts, policy))


def process_due(services, resolve, settings: dict, *, moment=None, limit: int = 50) -> dict:
    """Worker step: enrich and screen queued or pending deliveries whose next attempt is due.

    ``resolve(vendor)`` returns the adapter object of a vendor (or None when it is no longer installed).
    """
    moment = moment or now()
    counts = {"screened": 0, "pending": 0, "invalid": 0, "stale": 0, "failed": 0}
    # Lease the due rows (SKIP LOCKED on PostgreSQL) so a second worker does not process them as well.
    due = outbox.claim_due(services.store, adapter_deliveries, ("vendor", "delivery_id"), (
        adapter_deliveries.c.status.in_(("queued", "pending_enrichment")),
        adapter_deliveries.c.next_attempt_at <= moment), lease_until=moment + timedelta(seconds=120), limit=limit)
    for row in due:
        adapter = resolve(row.vendor)
        if adapter is None:
            continue
        outcome = complete(services, adapter, VendorEvent.from_dict(row.event), settings, attempts=row.attempts)
        # "failed": the last attempt gave up (hrdd deliveries lists it; hrdd deliveries retry queues it again).
        key = {"screened": "screened", "invalid": "invalid", "stale": "stale", "failed": "failed"}.get(
            outcome["status"], "pending")
        counts[key] += 1
    return counts
