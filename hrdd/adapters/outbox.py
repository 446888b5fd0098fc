"""The transactional outbox: rows written with the screening, delivered to the CRM by ``hrdd worker``."""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from hrdd.adapters import signatures
from hrdd.adapters.config import reveal, shown_url
from hrdd.adapters.http import HttpError, call, tokens
from hrdd.adapters.tables import aware, iso, new_id, now, outbox
from hrdd.gate import conditions_in_words

log = logging.getLogger(__name__)

DEFAULT_WORKER = {"max_attempts": 8, "base_delay": 30, "max_delay": 3600, "lease": 120, "timeout": 10}
# Field names each system's write-back sets by default (custom fields/properties the set-up guide creates).
DEFAULT_BODIES: dict[str, Any] = {
    "salesforce": {"HRDD_Gate__c": "{gate}", "HRDD_Decision__c": "{decision}",
                   "HRDD_Reason__c": "{reason}", "HRDD_Screening_Id__c": "{screening_id}"},
    "hubspot": {"properties": {"hrdd_gate": "{gate}", "hrdd_decision": "{decision}",
                               "hrdd_reason": "{reason}", "hrdd_screening_id": "{screening_id}"}},
    "dynamics": {"hrdd_gate": "{gate}", "hrdd_decision": "{decision}", "hrdd_reason": "{reason}",
                 "hrdd_screeningid": "{screening_id}"},
    "sap": {"YY1_HRDD_Gate_SDH": "{gate}", "YY1_HRDD_Screening_SDH": "{screening_id}"},
    "odoo": {"jsonrpc": "2.0", "method": "call", "params": {
        "service": "object", "method": "execute_kw",
        "args": ["{config.database}", "{config.uid|int}", "{config.api_key}", "{object_type}", "write",
                 [["{object_id|int}"]],
                 {"x_hrdd_gate": "{gate}", "x_hrdd_decision": "{decision}", "x_hrdd_reason": "{reason}",
                  "x_hrdd_screening_id": "{screening_id}"}]}},
}
GENERIC_BODY = {"reference": {"system": "{system}", "object_type": "{object_type}", "object_id": "{object_id}"},
                "gate": "{gate}", "decision": "{decision}", "reason": "{reason}", "stage": "{stage}",
                "screening_id": "{screening_id}", "transaction_id": "{transaction_id}",
                "risk_score": "{risk_score|int}", "red_flags": "{flags}", "conditions": "{conditions}"}
DEFAULT_METHOD = {"odoo": "POST"}
# Where each object type of a system lives in its API, below the write-back's ``base_url``: a quotation's
# gate goes to the quotation, never to the sales order that happens to have the same number.
ENTITY_PATHS: dict[str, dict[str, str]] = {
    "sap": {"SalesOrder": "/sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder('{object_id}')",
            "SalesQuotation": "/sap/opu/odata/sap/API_SALES_QUOTATION_SRV/A_SalesQuotation('{object_id}')"},
    "dynamics": {"opportunity": "/api/data/v9.2/opportunities({object_id})",
                 "quote": "/api/data/v9.2/quotes({object_id})",
                 "salesorder": "/api/data/v9.2/salesorders({object_id})"},
}
_PLACEHOLDER = re.compile(r"\{([a-z_.]+)(\|int)?\}")


def worker_settings(settings: dict) -> dict[str, Any]:
    """Retry policy: defaults overridden by the ``worker`` section."""
    return {**DEFAULT_WORKER, **(settings.get("worker") or {})}


def backoff(attempts: int, policy: dict[str, Any]) -> timedelta:
    """Exponential back-off: base_delay * 2^(attempts-1), capped at max_delay."""
    seconds = float(policy["base_delay"]) * (2 ** max(attempts - 1, 0))
    return timedelta(seconds=min(seconds, float(policy["max_delay"])))


def enqueue(conn, settings: dict, *, system: str, object_type: str, object_id: str,
            transaction_id: str | None = None, screening_id: str | None = None, gate: str | None = None,
            reason: str | None = None) -> str | None:
    """Add a write-back row in the caller's DB transaction; None when the system has no write-back."""
    if system not in (settings.get("writeback") or {}):
        return None
    row_id = new_id("obx")
    moment = now()
    conn.execute(outbox.insert().values(
        id=row_id, system=system, object_type=object_type, object_id=str(object_id),
        transaction_id=transaction_id, screening_id=screening_id, gate=gate, reason=reason,
        status="pending", attempts=0, next_attempt_at=moment, created_at=moment))
    return row_id


def rows(store, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Outbox rows, oldest first, optionally only one status (pending, failed, delivered)."""
    query = sa.select(outbox).order_by(outbox.c.created_at, outbox.c.id).limit(limit)
    if status:
        query = query.where(outbox.c.status == status)
    with store.engine.connect() as conn:
        return [_row_dict(r) for r in conn.execute(query)]


def _row_dict(row) -> dict[str, Any]:
    data = dict(row._mapping)
    for key in ("next_attempt_at", "created_at", "delivered_at"):
        data[key] = iso(data[key])
    return data


def retry(store, row_id: str | None = None, *, system: str | None = None) -> int:
    """Put failed rows (one by id, or every one, or every one of a system) back in the queue; how many."""
    where = [outbox.c.status == "failed"]
    if row_id:
        where.append(outbox.c.id == row_id)
    if system:
        where.append(outbox.c.system == system)
    with store.begin() as conn:
        done = conn.execute(outbox.update().where(*where)
                            .values(status="pending", attempts=0, next_attempt_at=now(), last_error=None))
    return int(done.rowcount or 0)


def claim_due(store, table, keys, due, *, lease_until, limit: int) -> list:
    """Lease up to ``limit`` due rows of ``table`` to this worker and return them, oldest first.

    One statement: ``UPDATE … SET next_attempt_at = <lease end> WHERE key IN (SELECT key … WHERE <due>
    LIMIT n FOR UPDATE SKIP LOCKED) RETURNING …``. On PostgreSQL, workers on different machines skip each
    other's rows instead of waiting for them or taking them twice; SQLite runs one writing statement at a
    time, so the same statement (without the locking clause, which it does not have) is already exclusive.
    A worker that dies holding a lease loses it when the lease runs out, and another worker takes the row.
    """
    key_cols = [table.c[k] for k in keys]
    picked = (sa.select(*key_cols).where(*due).order_by(table.c.created_at, *key_cols).limit(limit)
              .with_for_update(skip_locked=True))
    target = sa.tuple_(*key_cols).in_(picked) if len(key_cols) > 1 else key_cols[0].in_(picked)
    with store.begin() as conn:
        leased = conn.execute(table.update().where(target).values(next_attempt_at=lease_until)
                              .returning(*table.c)).fetchall()
    return sorted(leased, key=lambda r: (aware(r.created_at), *(getattr(r, k) for k in keys)))


def deliver_due(services, settings: dict, *, moment=None, limit: int = 50) -> dict[str, int]:
    """Deliver every due pending row once; returns counts of delivered, retrying and failed rows."""
    moment = moment or now()
    policy = worker_settings(settings)
    counts = {"delivered": 0, "retrying": 0, "failed": 0}
    lease_until = moment + timedelta(seconds=float(policy["lease"]))
    due = claim_due(services.store, outbox, ("id",), (outbox.c.status == "pending",
                                                       outbox.c.next_attempt_at <= moment),
                    lease_until=lease_until, limit=limit)
    for row in due:
        attempts = row.attempts + 1
        try:
            sent = send(services, settings, row, timeout=float(policy["timeout"]))
        except HttpError as exc:
            final = not exc.retryable or attempts >= int(policy["max_attempts"])
            values = dict(attempts=attempts, last_error=str(exc)[:2000], last_status=exc.status,
                          status="failed" if final else "pending",
                          next_attempt_at=moment + backoff(attempts, policy))
            outcome = "failed" if final else "retrying"
            log.warning("write-back %s to %s failed (attempt %d): %s", row.id, row.system, attempts, exc)
        else:
            values = dict(attempts=attempts, status="delivered", delivered_at=now(), sent=sent,
                          last_error=None, last_status=sent.get("status"))
            outcome = "delivered"
        with services.store.begin() as conn:
            # Only while the lease is still ours: a worker that overran it must not overwrite the
            # outcome of the worker that took the row over.
            done = conn.execute(outbox.update().where(
                outbox.c.id == row.id, outbox.c.status == "pending", outbox.c.next_attempt_at == lease_until,
            ).values(**values)).rowcount
        if done:
            counts[outcome] += 1
        else:
            log.warning("write-back %s: lease ran out before the outcome (%s) was recorded; another worker "
                        "has the row", row.id, outcome)
    return counts


# "(POST /v1/transactions/…/rider-executed)": how an API client clears a hold, not for the CRM's users.
_API_HINT = re.compile(r"\s*\((?:GET|POST|PUT|PATCH|DELETE) /v1/[^)]*\)")


def plain(reason: str) -> str:
    """A gate reason as the CRM's users read it: without the API calls the API's hold_reasons name."""
    return _API_HINT.sub("", reason)


def state_of(services, row) -> dict[str, Any]:
    """What to tell the CRM now: the transaction's effective gate, or the row's explicit hold.

    ``reason`` says why in plain words; for ``release_with_conditions`` it ends with the conditions
    (also alone in ``conditions``): the rider to sign, the checklist to complete, a reviewer's conditions.
    """
    state = {"system": row.system, "object_type": row.object_type, "object_id": row.object_id,
             "transaction_id": row.transaction_id or "", "screening_id": row.screening_id or "",
             "gate": row.gate or "", "decision": "", "reason": row.reason or "", "stage": "",
             "risk_score": 0, "risk_level": "", "flags": "", "conditions": ""}
    if row.transaction_id and not row.gate:
        latest = services.store.latest_screening(row.transaction_id)
        if latest is not None:
            gate, reasons, factors = services.gate_details(row.transaction_id, latest)
            questions = services.policy.section("conditions").get("checklist_questions", ())
            conditions = conditions_in_words(latest, gate, factors, questions)
            flags = [f["id"] for f in latest.get("red_flags", [])]
            said = [plain(r) for r in reasons]
            if gate == "release_with_conditions" and conditions:
                said.append("released on conditions: " + "; ".join(conditions))
            state.update(gate=gate, decision=latest["decision"], screening_id=latest["id"],
                         stage=latest["stage"], risk_score=latest["risk"]["score"],
                         risk_level=latest["risk"]["level"], flags=", ".join(flags),
                         conditions="; ".join(conditions),
                         reason="; ".join(said) or (f"red flags: {', '.join(flags)}" if flags else
                                                    "no red flags"))
    return state


def render(template: Any, values: dict[str, Any], config: dict[str, Any], *, mask: bool = False) -> Any:
    """Fill ``{name}`` placeholders (``{name|int}`` for numbers, ``{config.key}`` for settings)."""
    if isinstance(template, dict):
        return {k: render(v, values, config, mask=mask) for k, v in template.items()}
    if isinstance(template, list):
        return [render(v, values, config, mask=mask) for v in template]
    if not isinstance(template, str):
        return template

    def value_of(name: str) -> Any:
        if name.startswith("config."):
            raw = config.get(name[7:])
            if mask and signatures_secret(name[7:]):
                return "***"
            return reveal(raw) if raw is not None else ""
        return values.get(name, "")

    whole = _PLACEHOLDER.fullmatch(template)
    if whole:
        value = value_of(whole.group(1))
        if whole.group(2):
            try:
                return int(value)
            except (TypeError, ValueError):
                return value
        return value
    return _PLACEHOLDER.sub(lambda m: str(value_of(m.group(1))), template)


def signatures_secret(name: str) -> bool:
    """True for settings that must be masked in the stored record of what was sent."""
    from hrdd.adapters.config import is_secret_name

    return is_secret_name(name)


def _entity_marker(path: str) -> str:
    # ".../A_SalesOrder('{object_id}')" -> "/a_salesorder(", as it appears in a URL naming that entity.
    return "/" + path.rsplit("/", 1)[-1].split("(", 1)[0].lower() + "("


def url_template(config: dict, system: str, object_type: str) -> tuple[str, str]:
    """The URL template for one record of a system, and the setting it comes from.

    ``urls.<object type>`` first, then ``base_url`` with the system's path for that object type
    (``ENTITY_PATHS``), then ``url``. A ``url`` that names another object type's entity (an SAP sales
    order's URL for a quotation) is refused: the write-back would change another record.
    """
    where = f"writeback.{system}"
    urls = config.get("urls") or {}
    if not isinstance(urls, dict):
        raise HttpError(f"{where}.urls must map object types to URLs", retryable=False)
    if urls.get(object_type):
        return reveal(urls[object_type]), f"{where}.urls.{object_type}"
    paths = ENTITY_PATHS.get(str(config.get("kind") or system), {})
    if config.get("base_url") and object_type in paths:
        return reveal(config["base_url"]).rstrip("/") + paths[object_type], f"{where}.base_url"
    url = reveal(config.get("url")).strip()
    if not url:
        raise HttpError(f"no write-back URL for {object_type} records of {system!r}: set {where}.url"
                        + (f", {where}.base_url" if object_type in paths else "")
                        + f" or {where}.urls.{object_type}", retryable=False)
    lowered = url.lower()
    others = [t for t, path in paths.items() if t != object_type and _entity_marker(path) in lowered]
    own = paths.get(object_type)
    if others and not (own and _entity_marker(own) in lowered):
        raise HttpError(f"{where}.url is the URL of {others[0]} records, and this is a {object_type}: set "
                        f"{where}.urls.{object_type}" + (f" or {where}.base_url" if own else "")
                        + " so its gate is not written to another record", retryable=False)
    return url, f"{where}.url"


def send(services, settings: dict, row, *, timeout: float) -> dict[str, Any]:
    """Render and send one write-back; returns the record of what was sent (secrets masked)."""
    config = (settings.get("writeback") or {}).get(row.system)
    if not config:
        raise HttpError(f"no write-back is configured for system {row.system!r} (writeback.{row.system})",
                        retryable=False)
    template_url, setting = url_template(config, row.system, row.object_type)
    state = state_of(services, row)
    template = config.get("body") or DEFAULT_BODIES.get(config.get("kind", row.system), GENERIC_BODY)
    url = render(template_url, state, config)
    body = render(template, state, config)
    headers = {"Content-Type": "application/json"}
    headers.update(tokens.headers(config, timeout=timeout, where=f"writeback.{row.system}"))
    for name, value in (config.get("headers") or {}).items():
        headers[name] = reveal(value)
    payload = json.dumps(body).encode()
    if config.get("signing_secret"):
        headers.update(signed_headers(config["signing_secret"], payload))
    method = str(config.get("method") or DEFAULT_METHOD.get(config.get("kind", row.system), "PATCH")).upper()
    if config.get("csrf"):
        headers.update(_sap_csrf(url, headers, timeout, setting))
    answer = call(method, url, headers=headers, data=payload, timeout=timeout, setting=setting)
    if isinstance(answer.body, dict) and answer.body.get("error") and "jsonrpc" in answer.body:
        # JSON-RPC (Odoo) reports failures inside a 200 answer.
        message = str((answer.body["error"].get("data") or {}).get("message") or answer.body["error"])[:300]
        raise HttpError(f"{method} {shown_url(url)} answered a JSON-RPC error: {message}", answer.status)
    return {"method": method, "url": shown_url(url), "status": answer.status,
            "gate": state["gate"], "body": render(template, state, config, mask=True), "at": iso(now())}


def signed_headers(secret, payload: bytes, stamp: int | None = None) -> dict[str, str]:
    """``X-HRDD-Timestamp`` and ``X-HRDD-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``.

    The same scheme as the generic adapter's inbound signature. The timestamp is signed with the body, so
    the receiver can refuse a write-back captured and replayed later (an old "release" over a newer hold).
    """
    stamp_text = str(int(time.time()) if stamp is None else stamp)
    return {"X-HRDD-Timestamp": stamp_text, "X-HRDD-Signature": signatures.hrdd_signature(secret, stamp_text, payload)}


def _sap_csrf(url: str, headers: dict[str, str], timeout: float, setting: str) -> dict[str, str]:
    # SAP Gateway (OData v2) rejects changes without a CSRF token fetched in the same session.
    answer = call("GET", url, headers={**headers, "x-csrf-token": "fetch"}, timeout=timeout, setting=setting)
    token = answer.headers.get("x-csrf-token")
    if not token:
        raise HttpError("SAP did not hand out an x-csrf-token", answer.status)
    extra = {"x-csrf-token": token}
    cookie = answer.headers.get("set-cookie")
    if cookie:
        extra["Cookie"] = "; ".join(part.split(";", 1)[0] for part in cookie.split(", ") if "=" in part)
    return extra

