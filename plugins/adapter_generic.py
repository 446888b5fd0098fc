"""Generic JSON adapter (POST /v1/hooks/generic): the canonical transaction from Flow, Apex or SuiteScript.

Authenticates with an API key of role ``crm`` (``Authorization: Bearer``) or with an HMAC signature:
``X-HRDD-Timestamp: <unix seconds>`` and ``X-HRDD-Signature: sha256=<hex HMAC-SHA256 of
"<timestamp>.<raw body>">`` under ``signing_secret``. Answers with the screening JSON (201, 200 on replay).
"""

from __future__ import annotations

import hashlib
import json
import re
import time

from flask import jsonify

from hrdd import safejson
from hrdd.adapters import fieldmap, signatures
from hrdd.adapters.base import WebhookAdapter
from hrdd.adapters.events import PayloadError, VendorEvent
from hrdd.adapters.signatures import AuthError
from hrdd.errors import ApiError
from hrdd.hookspecs import hookimpl

MAX_BATCH = 100
MAX_SKEW = 300
ROLES = ("crm", "admin")  # API keys that may post here


MAX_READABLE_KEY = 200  # the screening's key is "generic:" + this, in a 255-character column


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class GenericAdapter(WebhookAdapter):
    """The canonical transaction, one object or a batch (a JSON array of up to 100)."""

    vendor = "generic"
    label = "generic"

    def configured(self, mine: dict) -> bool:
        """Works without settings (API keys); ``enabled: false`` switches it off."""
        return mine.get("enabled") is not False

    def authenticate(self, request, raw: bytes, settings: dict) -> None:
        """A crm/admin API key, or a fresh HMAC signature under the configured signing secret."""
        signature = request.headers.get("X-HRDD-Signature")
        if signature:
            secrets = signatures.configured(settings, "signing_secret", "signing_secrets")
            if not secrets:
                raise AuthError("X-HRDD-Signature sent but no signing secret is configured")
            stamp = request.headers.get("X-HRDD-Timestamp", "")
            if not re.fullmatch(r"[0-9]{1,15}", stamp) or abs(time.time() - int(stamp)) > MAX_SKEW:
                raise AuthError("X-HRDD-Timestamp missing or more than 5 minutes from now")
            # Each configured secret (signing_secrets: the new and the old one while senders change over).
            expected = [signatures.hrdd_signature(s, stamp, raw) for s in secrets]
            # Hex is hex in either case (some HMAC libraries print upper case).
            if not signatures.matches_any(signature.strip().lower(), expected):
                raise AuthError("X-HRDD-Signature does not match the body under the configured signing secret(s)")
            self._scope = "hmac"
            return
        from hrdd.auth import authenticate, forbidden

        principal = authenticate()
        if principal is None:
            if signatures.bearer_token(request.headers.get("Authorization")):
                # Say the key was refused: an admin whose key was revoked or mistyped must not read this as
                # "no credentials were sent".
                raise AuthError("the API key in Authorization: Bearer is not valid (unknown, revoked or "
                                "mistyped); create one with `hrdd keys create NAME --role crm`")
            raise AuthError("send an API key of role crm (Authorization: Bearer) or an X-HRDD-Signature")
        if principal["role"] not in ROLES:
            # A valid key of another role: 403, as on every endpoint (README, "errors").
            raise forbidden(principal, ROLES)
        self._scope = f"{principal['kind']}:{principal.get('id') or principal['name']}"

    def parse(self, request, raw: bytes, settings: dict) -> list[VendorEvent]:
        """One canonical transaction or an array of them; each needs its reference."""
        try:
            data = safejson.loads(raw)
        except ValueError as exc:
            raise PayloadError(f"the body is not JSON: {exc}") from None
        batch = isinstance(data, list)
        items = data if batch else [data]
        if not items or len(items) > MAX_BATCH:
            raise PayloadError(f"a batch holds 1 to {MAX_BATCH} transactions, this one {len(items)}")
        key = request.headers.get("Idempotency-Key")
        events = []
        for i, item in enumerate(items):
            where = f"[{i}]" if batch else "body"
            if not isinstance(item, dict):
                raise PayloadError(f"{where}: expected a JSON object (the canonical transaction)")
            ref = item.get("reference")
            if not isinstance(ref, dict) or not all(isinstance(ref.get(k), str) and ref.get(k)
                                                    for k in ("system", "object_type", "object_id")):
                raise PayloadError(f"{where}.reference: needs system, object_type and object_id")
            events.append(self._event(item, ref, key, batch))
        self._batch = batch
        return events

    def _event(self, item: dict, ref: dict, key: str | None, batch: bool) -> VendorEvent:
        body_hash = _sha256(json.dumps(item, sort_keys=True))
        event = VendorEvent(delivery_id="", object_type=ref["object_type"], object_id=ref["object_id"],
                            system=ref["system"], record=item, kind="batch" if batch else "single")
        if key:
            # The caller's key, scoped to the caller (another CRM's "opp-1" is another delivery) and, in a
            # batch, to the item's reference (a retry may send the items in another order).
            # Readable when it fits ("key:api_key:<id>:<key>", as /v1/screenings stores keys), so operators
            # can find a delivery by the key the CRM sent; hashed past the column's width.
            scoped = f"key:{self._scope}:{key}" + (
                f":{ref['system']}/{ref['object_type']}/{ref['object_id']}" if batch else "")
            event.delivery_id = scoped if len(scoped) <= MAX_READABLE_KEY else "key:" + _sha256(scoped)
            event.meta = {"body_sha256": body_hash, "idempotency_key": key}
        else:
            # Without a key, an identical body is a retry only while it is the deal's latest delivery.
            event.meta = {"content_id": "sha256:" + body_hash}
        return event

    def canonical(self, event: VendorEvent, settings: dict) -> fieldmap.Mapped:
        """The body is already canonical; the core's schema validates it."""
        return fieldmap.Mapped(body=event.record or {})

    def respond(self, request, outcomes: list[dict], services):
        """The screening JSON (201 created, 200 replayed); 422 naming the fields for a bad transaction.

        A batch answers ``{"results": [...]}`` in the order sent, each result with its own ``status``
        (201, 200 or 422): 200 overall when every transaction was screened, 207 when any was not.
        """
        results = []
        for outcome in outcomes:
            if outcome.get("status") == "conflict":
                results.append({**_conflict(outcome).to_dict(), "reference": {
                    "object_type": outcome["object_type"], "object_id": outcome["object_id"]}})
                continue
            if outcome.get("status") != "screened":
                results.append({"code": "validation_error", "status": 422,
                                "message": outcome.get("reason", "not screened"), "errors": outcome.get("errors") or {},
                                "reference": {"object_type": outcome["object_type"],
                                              "object_id": outcome["object_id"]}})
                continue
            stored = services.store.get_screening(outcome["screening_id"])
            replayed = bool(outcome.get("replayed"))
            # A replayed delivery may have been followed by newer screenings, and a new one may come after
            # the deal reached a later stage: answer with the deal's gate now.
            current = services.as_current(stored)
            results.append({**current, "status": 200 if replayed else 201, "replayed": replayed})
        if getattr(self, "_batch", False):
            response = jsonify({"results": results, "screened": sum(r["status"] in (200, 201) for r in results),
                                "invalid": sum(r["status"] == 422 for r in results),
                                "conflicts": sum(r["status"] == 409 for r in results)})
            response.status_code = 207 if any(r["status"] not in (200, 201) for r in results) else 200
            return response
        only = results[0]
        if "code" in only:
            raise ApiError(only["status"], only["code"], only["message"], only["errors"] or None)
        response = jsonify({k: v for k, v in only.items() if k not in ("replayed", "status")})
        response.status_code = 200 if only["replayed"] else 201
        return response


def _conflict(outcome: dict) -> ApiError:
    """The /v1/screenings answer to an Idempotency-Key reused with a different body."""
    if outcome.get("screening_id"):
        earlier = f" (screening {outcome['screening_id']})"
    else:
        # The earlier request was not screened (invalid, say): say so, rather than "(screening None)".
        reason = outcome.get("earlier_reason")
        earlier = (f", which was not screened ({outcome.get('earlier_status') or 'not screened'}"
                   + (f": {reason}" if reason else "") + "); send the corrected request under a new Idempotency-Key")
    return ApiError(409, "idempotency_conflict",
                    f"Idempotency-Key {outcome.get('idempotency_key')!r} was already used for a different request"
                    f"{earlier}", {"Idempotency-Key": ["reused with a different body"]})


@hookimpl
def hrdd_webhook_adapter(name, app):
    """Own /v1/hooks/generic."""
    return GenericAdapter(app) if name == "generic" else None
