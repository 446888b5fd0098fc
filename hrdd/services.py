"""The application's services wired together: plugins, policy, reference data, store and engine."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from flask import current_app
from marshmallow import ValidationError

from hrdd import material
from hrdd.engine import Engine
from hrdd.errors import ApiError, validation_error
from hrdd.gate import effective_gate, outstanding_conditions, standing_review
from hrdd.model import STAGE_RANK, Screening, Transaction, severity_rank
from hrdd.plugins import make_plugin_manager
from hrdd.policy import Policy
from hrdd.recorded_answers import RecordChanged, lay_under, recorded_answers
from hrdd.reference import ReferenceData
from hrdd.schemas import TransactionSchema
from hrdd.store import IdempotencyConflict, Store, iso

# How long the known answer ids are kept: template edits show within this time, as the templates do.
ANSWER_IDS_SECONDS = 1.0
# Screen again when a checklist upload lands between screening and storing; the last attempt stores anyway.
RECORD_ATTEMPTS = 3


@dataclass
class Screened:
    """A request validated and screened with its deal's answers on record, not yet stored (``Services.prescreen``)."""

    data: dict[str, Any]
    source: str
    stored_request: bool
    recorded: dict[str, dict]
    screening: Screening


class Services:
    """Everything a request, a CLI command or a worker needs, built once per app."""

    def __init__(self, config: dict[str, Any], pm=None):
        self.config = config
        self.pm = pm or make_plugin_manager(config.get("HRDD_PLUGINS_DIR"))
        self.policy = Policy.load(config["HRDD_POLICY_FILE"])
        material.rules_of(self.policy)  # a material_changes setting that cannot work stops start-up
        self.reference = ReferenceData(config["HRDD_DATA_DIR"], self.policy)
        self.store = Store(config["HRDD_DATABASE_URL"], self.pm, self.policy)
        self.engine = Engine(self.pm, self.reference, self.policy, self.store)
        self._answer_ids: tuple[float, frozenset[str]] = (float("-inf"), frozenset())
        self.schema = TransactionSchema(capabilities=list(self.reference.capabilities),
                                        country_codes=self.reference.codes, answer_ids=self.answer_ids)

    def answer_ids(self) -> frozenset[str]:
        """The checklist question ids a transaction's ``answers`` may use (plugins' and the policy's).

        Holds ``"*"`` when a plugin cannot say right now (its templates fail to load): nothing is refused.
        Asked again at most once a second, as the checklist plugin looks at its templates.
        """
        checked_at, ids = self._answer_ids
        now = time.monotonic()
        if now - checked_at >= ANSWER_IDS_SECONDS:
            found = set(self.policy.section("conditions").get("checklist_questions", ()))
            for result in self.pm.hook.hrdd_answer_ids():
                found.update(result or ())
            ids = frozenset(found)
            self._answer_ids = (now, ids)
        return ids

    def safeguard_catalogue(self) -> dict[str, str]:
        """Every safeguard the plugins know (``hrdd_safeguard_catalogue``): id -> title, first plugin's title."""
        catalogue: dict[str, str] = {}
        for result in self.pm.hook.hrdd_safeguard_catalogue():
            for safeguard in result or ():
                catalogue.setdefault(safeguard.id, safeguard.title)
        return catalogue

    def engine_reason(self, screening: dict) -> str | None:
        """Why the engine's own decision holds or blocks, naming the flags at the policy's threshold."""
        decision = screening.get("decision")
        if decision not in ("escalate", "do_not_proceed"):
            return None
        rules = self.policy.section("decision")
        threshold = severity_rank(rules.get("do_not_proceed_on" if decision == "do_not_proceed" else "escalate_on",
                                            "critical" if decision == "do_not_proceed" else "high"))
        flags = [f["id"] for f in screening.get("red_flags") or () if severity_rank(f.get("severity")) >= threshold]
        what = ("a human rights reviewer must decide on the review case" if decision == "escalate"
                else "the deal must not go ahead unless a reviewer decides otherwise")
        named = ", ".join(dict.fromkeys(flags))
        return f"decision {decision}: {what}" + (f"; red flags {named}" if named else "")

    def validate(self, body: Any, *, stored: bool = False) -> dict[str, Any]:
        """Validate and normalise a canonical transaction body; ApiError 422 names every bad field.

        ``stored``: the body was accepted earlier (re-screening, a checklist upload on a stored screening),
        so rules added since it was stored are not applied to it.
        """
        if not isinstance(body, dict):
            raise ApiError(422, "validation_error", "The body must be a JSON object (the canonical transaction)")
        try:
            return self.schema.load(body, stored=stored)
        except ValidationError as exc:
            raise validation_error(exc.messages) from exc

    def screen(self, transaction: Transaction) -> Screening:
        """Screen without storing."""
        return self.engine.screen(transaction)

    def screen_request(self, data: dict, source: str, recorded: dict | None = None) -> Screening:
        """Screen a validated request with the answers the plugins have on record for its deal."""
        if recorded is None:
            recorded = self.recorded_answers(data, source)
        if not recorded:
            return self.screen(Transaction.from_dict(data))
        answers, notes = lay_under(data.get("answers") or {}, recorded)
        screening = self.screen(Transaction.from_dict({**data, "answers": answers}))
        screening.answers_on_record = notes
        return screening

    def prescreen(self, body: Any, source: str, *, stored_request: bool = False) -> Screened:
        """Validate and screen a request with its deal's answers on record, for ``screen_and_store(screened=)``.

        The caller can look at the screening first (re-screening compares it with the previous one) and
        then store it without the request being validated and screened again.
        """
        data = self.validate(body, stored=stored_request)
        recorded = self.recorded_answers(data, source)
        return Screened(data, source, stored_request, recorded, self.screen_request(data, source, recorded))

    def recorded_answers(self, data: dict, source: str) -> dict[str, dict]:
        """The answers the plugins have on record for the request's deal (see ``hrdd_answers_on_record``)."""
        return recorded_answers(self.pm, self.store, data, source, self.answer_ids())

    def screen_and_store(self, body: Any, *, idempotency_key: str | None = None, source: str = "api",
                         dry_run: bool = False, idempotency_scope: str | None = None,
                         stored_request: bool = False, precondition=None,
                         screened: Screened | None = None) -> tuple[dict, bool]:
        """Validate, screen and store (unless dry_run); returns (screening dict with gate, created).

        ``idempotency_scope`` (the caller, e.g. its API key id) keeps one caller's Idempotency-Keys apart
        from another's; keys stored before scoping still replay. ``stored_request``: the body is a stored
        request screened again (see ``validate``). ``precondition(connection)`` runs in the storing
        transaction once the deal is locked; what it raises stops the store and reaches the caller.
        ``screened``: ``prescreen(body, source, stored_request=...)``'s result for this body, stored as it
        is unless the deal's answers on record (read under the lock) are no longer the ones it used.
        """
        if screened is not None and (screened.source, screened.stored_request) != (source, stored_request):
            raise ValueError(f"screened as ({screened.source!r}, stored_request={screened.stored_request}), "
                             f"stored as ({source!r}, stored_request={stored_request})")
        # One database connection for the whole request (the checks' look-ups, the write, the gate): on
        # PostgreSQL each further checkout is another liveness ping and reset round trip.
        with self.store.read_scope():
            return self._screen_and_store(body, idempotency_key, source, dry_run, idempotency_scope,
                                          stored_request, precondition, screened)

    def _screen_and_store(self, body: Any, client_key: str | None, source: str, dry_run: bool,
                          scope: str | None, stored_request: bool, precondition,
                          screened: Screened | None) -> tuple[dict, bool]:
        data = screened.data if screened is not None else self.validate(body, stored=stored_request)
        request_hash = _request_hash(data)
        idempotency_key = scoped_idempotency_key(scope, client_key) if client_key and scope else client_key
        if idempotency_key and not dry_run:
            existing = self.store.find_by_idempotency_key(idempotency_key, legacy=client_key if scope else None)
            # A key stored before keys were scoped has no owner on record: it replays only the same body,
            # and a different body from any caller is a new screening under that caller's own key (a 409
            # there would refuse another CRM's deal and name a screening that is not its own).
            if existing is not None and (existing.idempotency_key == idempotency_key
                                         or _hash_matches(existing, request_hash, data)):
                return self._replayed(existing, request_hash, client_key, data)
        # A stored screening reads the deal's answers on record once the deal is locked, and is screened
        # again with them when there are any (most deals have none: one read, one screening); a dry run
        # reads them first. A prescreened request was screened with the answers read then: the same check
        # under the lock screens it again only when they changed meanwhile.
        if screened is not None:
            recorded = screened.recorded
        else:
            recorded = self.recorded_answers(data, source) if dry_run else {}
        for attempt in range(RECORD_ATTEMPTS):
            if attempt == 0 and screened is not None:
                screening = screened.screening
            else:
                screening = self.screen_request(data, source, recorded)
            if dry_run:
                return self.previewed(screening.to_dict()), False
            check = self._unchanged_record(data, source, recorded, precondition,
                                           last=attempt == RECORD_ATTEMPTS - 1)
            try:
                result, created = self.store.save_screening(screening, data, request_hash=request_hash,
                                                            idempotency_key=idempotency_key, source=source,
                                                            precondition=check, key_checked=True)
                break
            except IdempotencyConflict as exc:
                raise _conflict(client_key, exc.screening_id) from exc
            except RecordChanged as changed:
                recorded = changed.recorded
        # Not created: a concurrent request stored this key first, and a newer screening may govern now.
        # Created: it may still not govern (a quote arriving after the order), so the deal's gate answers.
        return self.as_current(result), created

    def _unchanged_record(self, data: dict, source: str, recorded: dict, precondition, *, last: bool):
        """The storing transaction's check that the answers on record are the ones screened.

        Read once the deal is locked, so a checklist upload committed meanwhile (its Yes) cannot be followed
        by a screening stored without it. The last attempt stores regardless.
        """
        def check(connection) -> None:
            found = self.recorded_answers(data, source) if not last else recorded
            if found != recorded:
                raise RecordChanged(found)
            if precondition is not None:
                precondition(connection)
        return check

    def _replayed(self, row, request_hash: str, key: str, data: dict) -> tuple[dict, bool]:
        if not _hash_matches(row, request_hash, data):
            raise _conflict(key, row.id)
        return self.as_current(row.result), False

    def gate_of(self, transaction_id: str, screening: dict) -> tuple[str, list[str]]:
        """The effective gate of a transaction whose latest screening is ``screening``."""
        gate, reasons, _ = self.gate_details(transaction_id, screening)
        return gate, reasons

    def gate_details(self, transaction_id: str, screening: dict) -> tuple[str, list[str], list[dict]]:
        """``gate_of`` with the plugins' factors it was worked out from (a reviewer's conditions, say)."""
        with self.store.read_scope():  # the plugins' look-ups share one connection and one snapshot
            factors = [f for result in self.pm.hook.hrdd_gate_factors(
                transaction_id=transaction_id, screening=screening, store=self.store, policy=self.policy)
                for f in (result or ())]
        gate, reasons = effective_gate(screening["gate"], factors, self.engine_reason(screening))
        return gate, reasons, factors

    def current_gate(self, transaction_id: str) -> tuple[dict, str, list[str]] | None:
        """A stored deal's newest screening, its gate now and why; None when it has no screening."""
        latest = self.store.latest_screening(transaction_id)
        if latest is None:
            return None
        gate, reasons = self.gate_of(transaction_id, latest)
        return latest, gate, reasons

    @contextmanager
    def changing_gates(self, deals: Iterable[str] | Callable[[Any], Iterable[str]], *, cause: str,
                       tell_unchanged: bool = False):
        """A write transaction (its connection is yielded) that tells the plugins whose gate it changed.

        For a change that is not a new screening but may move deals' gates: a reviewer's decision, a
        grievance's triage or link, an executed rider. ``deals`` are the ids of the stored deals it may
        concern, or a function of the connection returning them (read in the transaction, before the
        change). Their gates are worked out once they are locked and again after the block, on the same
        connection; for each deal whose gate moved, ``hrdd_gate_changed`` runs before commit (the CRM
        write-back is queued there, atomically with the change). ``cause`` says what changed, in words.
        ``tell_unchanged``: call the hook for each deal even when its gate stays where it was (a reviewer's
        request for information: the gate stays ``hold``, but the CRM must show what was asked).
        """
        store = self.store
        with store.read_scope(), store.writing() as conn:
            ids = sorted(set(deals(conn) if callable(deals) else deals))
            store.lock_transactions(conn, ids)
            before = {t: self.current_gate(t) for t in ids}
            yield conn
            memo = store.scope_memo()
            if memo is not None:
                memo.clear()  # what the plugins looked up before the change is stale now
            for transaction_id in ids:
                now = self.current_gate(transaction_id)
                if now is None or before[transaction_id] is None or (
                        now[1] == before[transaction_id][1] and not tell_unchanged):
                    continue
                latest, gate, reasons = now
                self.pm.hook.hrdd_gate_changed(
                    transaction_id=transaction_id, reference=latest["transaction"]["reference"], gate=gate,
                    previous_gate=before[transaction_id][1], reasons=reasons, screening=latest, cause=cause,
                    connection=conn, store=store)

    def previewed(self, result: dict) -> dict:
        """A dry run's screening with the gate the deal would get if it were stored now, and why.

        The plugins judge it as the deal's newest screening: a reviewer's decision that still applies, an
        order's rider and material changes since the quote, open grievances, conflicting answers on record.
        """
        ref = result["transaction"]["reference"]
        transaction_id = self.store.find_transaction(ref["system"], ref["object_type"], ref["object_id"])
        # Stored now, it would be newer than every event received so far.
        candidate = {**result, "dry_run": True, "created_at": iso(datetime.now(UTC))}
        return {**result, "dry_run": True, "engine_gate": result["gate"], **self.standing(transaction_id, candidate)}

    def standing(self, transaction_id: str | None, screening: dict) -> dict:
        """Where a deal whose governing screening is ``screening`` stands now, as the API answers it.

        ``gate`` and ``hold_reasons``, the reviewer's decision in force (``review``, or None) and the
        screening's conditions not met yet (``outstanding_conditions``).
        """
        gate, reasons, factors = self.gate_details(transaction_id, screening)
        return {"gate": gate, "hold_reasons": reasons, "review": standing_review(factors),
                "outstanding_conditions": outstanding_conditions(screening, factors)}

    def with_gate(self, screening: dict) -> dict:
        """A copy of a screening dict whose gate is the transaction's effective gate, with reasons."""
        return {**screening, "engine_gate": screening["gate"], **self.standing(screening["transaction_id"], screening)}


    def as_current(self, screening: dict) -> dict:
        """A stored screening with its transaction's gate now; ``superseded_by`` names the screening governing it.

        The transaction's gate follows its governing screening (``Store.latest_screening``: the newest at
        the most advanced stage), so an older one read back (or replayed), or one at an earlier stage than the
        deal has reached, answers with that gate and says which screening governs it and why.
        """
        with self.store.read_scope():
            governing = self.store.governing_screening_id(screening["transaction_id"])
            # Nearly always the screening itself (just stored, or read back as the newest): no second read.
            latest = screening if governing in (None, screening["id"]) else (
                self.store.get_screening(governing) or screening)
            now = self.standing(screening["transaction_id"], latest)
        current = {**screening, "engine_gate": screening["gate"], **now}
        if latest["id"] != screening["id"]:
            current["superseded_by"] = latest["id"]
            if STAGE_RANK.get(latest["stage"], 0) > STAGE_RANK.get(screening["stage"], 0):
                current["superseded_because"] = (
                    f"the deal is already at {latest['stage']} (screening {latest['id']}): this {screening['stage']}"
                    f"-stage screening is kept on record but does not take the deal back, and the gate is the "
                    f"{latest['stage']}'s")
        return current


def scoped_idempotency_key(scope: str, key: str) -> str:
    """The stored form of a caller's Idempotency-Key: its scope first (hashed when it would not fit)."""
    scoped = f"key:{scope}:{key}"
    return scoped if len(scoped) <= 255 else f"key:{scope}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def _request_hash(data: dict) -> str:
    return hashlib.sha256(orjson.dumps(data, default=str, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _hash_matches(row, request_hash: str, data: dict) -> bool:
    return row.request_hash == request_hash or row.request_hash == _legacy_request_hash(data)


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
