"""The application's services wired together: plugins, policy, reference data, store and engine."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import orjson
from flask import current_app
from marshmallow import ValidationError

from hrdd.engine import Engine
from hrdd.errors import ApiError, validation_error
from hrdd.gate import effective_gate
from hrdd.model import Screening, Transaction
from hrdd.plugins import make_plugin_manager
from hrdd.policy import Policy
from hrdd.reference import ReferenceData
from hrdd.schemas import TransactionSchema
from hrdd.store import IdempotencyConflict, Store


class Services:
    """Everything a request, a CLI command or a worker needs, built once per app."""

    def __init__(self, config: dict[str, Any], pm=None):
        self.config = config
        self.pm = pm or make_plugin_manager(config.get("HRDD_PLUGINS_DIR"))
        self.policy = Policy.load(config["HRDD_POLICY_FILE"])
        self.reference = ReferenceData(config["HRDD_DATA_DIR"], self.policy)
        self.store = Store(config["HRDD_DATABASE_URL"], self.pm)
        self.engine = Engine(self.pm, self.reference, self.policy, self.store)
        self.schema = TransactionSchema(capabilities=list(self.reference.capabilities),
                                        country_codes=self.reference.codes)

    def validate(self, body: Any) -> dict[str, Any]:
        """Validate and normalise a canonical transaction body; ApiError 422 names every bad field."""
        if not isinstance(body, dict):
            raise ApiError(422, "validation_error", "The body must be a JSON object (the canonical transaction)")
        try:
            return self.schema.load(body)
        except ValidationError as exc:
            raise validation_error(exc.messages) from exc

    def screen(self, transaction: Transaction) -> Screening:
        """Screen without storing."""
        return self.engine.screen(transaction)

    def screen_and_store(self, body: Any, *, idempotency_key: str | None = None, source: str = "api",
                         dry_run: bool = False) -> tuple[dict, bool]:
        """Validate, screen and store (unless dry_run); returns (screening dict with gate, created)."""
        # One database connection for the whole request (the checks' look-ups, the write, the gate): on
        # PostgreSQL each further checkout is another liveness ping and reset round trip.
        with self.store.read_scope():
            return self._screen_and_store(body, idempotency_key, source, dry_run)

    def _screen_and_store(self, body: Any, idempotency_key: str | None, source: str,
                          dry_run: bool) -> tuple[dict, bool]:
        data = self.validate(body)
        request_hash = _request_hash(data)
        if idempotency_key and not dry_run:
            existing = self.store.find_by_idempotency_key(idempotency_key)
            if existing is not None:
                return self._replayed(existing, request_hash, idempotency_key, data)
        screening = self.screen(Transaction.from_dict(data))
        if dry_run:
            result = screening.to_dict()
            result["dry_run"] = True
            result["hold_reasons"] = []
            return result, False
        try:
            result, created = self.store.save_screening(screening, data, request_hash=request_hash,
                                                        idempotency_key=idempotency_key, source=source)
        except IdempotencyConflict as exc:
            raise _conflict(idempotency_key, exc.screening_id) from exc
        return self.with_gate(result), created

    def _replayed(self, row, request_hash: str, key: str, data: dict) -> tuple[dict, bool]:
        if row.request_hash != request_hash and row.request_hash != _legacy_request_hash(data):
            raise _conflict(key, row.id)
        return self.with_gate(row.result), False

    def gate_of(self, transaction_id: str, screening: dict) -> tuple[str, list[str]]:
        """The effective gate of a transaction whose latest screening is ``screening``."""
        with self.store.read_scope():  # the plugins' look-ups share one connection and one snapshot
            factors = [f for result in self.pm.hook.hrdd_gate_factors(
                transaction_id=transaction_id, screening=screening, store=self.store) for f in (result or ())]
        return effective_gate(screening["gate"], factors)

    def with_gate(self, screening: dict) -> dict:
        """A copy of a screening dict whose gate is the transaction's effective gate, with reasons."""
        gate, reasons = self.gate_of(screening["transaction_id"], screening)
        return {**screening, "engine_gate": screening["gate"], "gate": gate, "hold_reasons": reasons}


def _request_hash(data: dict) -> str:
    return hashlib.sha256(orjson.dumps(data, default=str, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _legacy_request_hash(data: dict) -> str:
    # Screenings stored before the hash moved to orjson hashed the standard library's JSON; an
    # Idempotency-Key first used then still replays rather than reporting a conflict.
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _conflict(key: str, screening_id: str) -> ApiError:
    return ApiError(409, "idempotency_conflict",
                    f"Idempotency-Key {key!r} was already used for a different request (screening {screening_id})",
                    {"Idempotency-Key": ["reused with a different body"]})


def current_services() -> Services:
    """The Services of the current Flask app."""
    return current_app.extensions["hrdd"]
