"""Review cases: opened for escalations, decided by reviewers, and the gate overrides they produce."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from sqlalchemy import bindparam, func, insert, or_, select, update

from hrdd import audit, material
from hrdd.changes import flag_changes, material_changes, worst_severities
from hrdd.model import DECISIONS, SEVERITIES, Transaction, is_order_stage, severity_rank
from hrdd.store import governing_screening, memoized, screening_by_id
from hrdd.tables import transactions
from hrdd.workspace import deals, review
from hrdd.workspace.tables import case_decisions, case_notes, cases
from hrdd.workspace.util import days_ago_iso, keyed_facts, new_id, now_iso

CASE_DECISIONS = ("escalate", "do_not_proceed")
OUTCOMES = {
    "approve": "release",
    "approve_with_conditions": "release_with_conditions",
    "decline": "block",
    "request_information": "hold",
}
OUTCOME_LABELS = {
    "approve": "Approve",
    "approve_with_conditions": "Approve with conditions",
    "decline": "Decline",
    "request_information": "Request information",
}
# A first approval awaiting its second approver keeps the case open (in the queue) until then.
OPEN_STATUSES = ("open", "information_requested", "awaiting_second_approval")
STATUSES = OPEN_STATUSES + ("decided",)
MIN_RATIONALE = 10
APPROVALS = ("approve", "approve_with_conditions")
MAX_LICENCE_REFERENCE = 300
# Set by hrdd.rescreen around storing a re-screening: (previous screening, what changed).
_RESCREEN: ContextVar[tuple[dict, str | Callable[[dict], str]] | None] = ContextVar("hrdd_rescreen", default=None)


class CaseError(ValueError):
    """A decision or case action was refused; ``errors`` maps field names to messages.

    ``status`` is the HTTP status it answers with: 422 for what the request itself gets wrong, 409 when the
    case or the deal has moved on (a newer screening, a decision no longer awaiting approval), 403 when
    the caller may not do it (a second approval by the first approver).
    """

    def __init__(self, message: str, errors: dict | None = None, status: int = 422):
        super().__init__(message)
        self.errors = errors or {}
        self.status = status


# ---- two-person approval (policy section reviewer_decisions.dual_control) ----

DEFAULT_DUAL_CONTROL = {
    "red_flags": [{"id": "RF-4.4"}, {"id": "RF-4.3", "match": "confirmed"}],
    "engine_decisions": ["do_not_proceed"],
}
MATCH_STATUSES = ("confirmed", "possible")


@dataclass(frozen=True)
class FlagRule:
    """A red flag that puts an approval under dual control, optionally only at a severity or match status."""

    id: str
    severity_at_least: str | None = None
    match: str | None = None

    def applies(self, flag: dict) -> bool:
        """True when a screening's flag (its JSON form) is one this rule names."""
        if flag.get("id") != self.id:
            return False
        if self.severity_at_least and severity_rank(flag.get("severity") or "low") < severity_rank(self.severity_at_least):
            return False
        if self.match:
            matches = (flag.get("data") or {}).get("matches") or ()
            return any(isinstance(m, dict) and m.get("status") == self.match for m in matches)
        return True


@dataclass(frozen=True)
class DualControl:
    """Which screenings need two approvers, a licence reference and at most approve with conditions."""

    red_flags: tuple[FlagRule, ...] = ()
    engine_decisions: tuple[str, ...] = ()

    def reasons(self, screening: dict | None) -> list[str]:
        """Why approving this screening needs two approvers (empty: one reviewer may approve it)."""
        if not screening:
            return []
        out: dict[str, None] = {}
        for flag in screening.get("red_flags") or ():
            for rule in self.red_flags:
                if rule.applies(flag):
                    match = " confirmed match" if rule.match == "confirmed" else (
                        " possible match" if rule.match else "")
                    out.setdefault(f"{flag['id']} ({flag.get('severity')}{match}): {flag.get('title') or ''}".rstrip(": "))
        if screening.get("decision") in self.engine_decisions:
            out.setdefault(f"engine decision {screening['decision']}")
        return list(out)

    def as_dict(self) -> dict:
        """The rules in force, as the policy would state them (for the audit trail's configuration record)."""
        return {"red_flags": [{k: v for k, v in vars(r).items() if v} for r in self.red_flags],
                "engine_decisions": list(self.engine_decisions)}


def dual_control_rules(policy, known_flags: Iterable[str] | None = None) -> DualControl:
    """The policy's ``reviewer_decisions.dual_control`` (the defaults when the section is absent).

    ValueError names what is wrong: an unknown key, flag id (when ``known_flags`` is given), severity,
    match status or engine decision.
    """
    section = (policy.section("reviewer_decisions") if policy is not None else {}).get("dual_control")
    if section is None:
        section = DEFAULT_DUAL_CONTROL
    if not isinstance(section, dict):
        raise ValueError("reviewer_decisions.dual_control must be a mapping (red_flags, engine_decisions)")
    unknown = sorted(set(section) - {"red_flags", "engine_decisions"})
    if unknown:
        raise ValueError(f"reviewer_decisions.dual_control: unknown key(s) {', '.join(unknown)} "
                         "(known: red_flags, engine_decisions)")
    known = set(known_flags) if known_flags is not None else None
    rules = []
    for n, entry in enumerate(section.get("red_flags") or ()):
        where = f"reviewer_decisions.dual_control.red_flags[{n}]"
        if isinstance(entry, str):
            entry = {"id": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise ValueError(f"{where}: must be a red flag id or a mapping with an id")
        extra = sorted(set(entry) - {"id", "severity_at_least", "match"})
        if extra:
            raise ValueError(f"{where}: unknown key(s) {', '.join(extra)} (known: id, severity_at_least, match)")
        if known is not None and entry["id"] not in known:
            raise ValueError(f"{where}: {entry['id']!r} is not a red flag of data/red_flags.yaml")
        if entry.get("severity_at_least") is not None and entry["severity_at_least"] not in SEVERITIES:
            raise ValueError(f"{where}: severity_at_least must be one of {', '.join(SEVERITIES)}")
        if entry.get("match") is not None and entry["match"] not in MATCH_STATUSES:
            raise ValueError(f"{where}: match must be one of {', '.join(MATCH_STATUSES)}")
        rules.append(FlagRule(entry["id"], entry.get("severity_at_least"), entry.get("match")))
    decisions = section.get("engine_decisions") or ()
    if isinstance(decisions, str) or not all(d in DECISIONS for d in decisions):
        raise ValueError(f"reviewer_decisions.dual_control.engine_decisions must list engine decisions "
                         f"({', '.join(DECISIONS)})")
    return DualControl(tuple(rules), tuple(decisions))


def awaiting_second_approval(decision: dict | None) -> bool:
    """True for a first approval under dual control (its second approval is another, later row)."""
    return bool(decision and decision.get("dual_control") and not decision.get("second_approval_of"))


def _person(actor: str) -> str:
    # "user:alice" and "key:alice" are taken as one person: a key named after a reviewer is theirs.
    return actor.split(":", 1)[-1].strip().casefold()


# ---- the screening a decision is made on ----

def screening_changes(shown: dict, now: dict) -> list[str]:
    """What differs between the screening a reviewer saw and the deal's screening now (empty: nothing).

    Material facts compare as a reviewer's decision compares them (names by their end-user keys: a
    spelling variant is no change); red flags by id and worst severity, and the engine's decision.
    """
    changes = []
    if shown.get("transaction") and now.get("transaction") and \
            keyed_facts(_facts(shown)) != keyed_facts(_facts(now)):
        changes = material_changes(shown, now) or [
            "material facts changed (party, end-user, item, country or deployment country)"]
    return changes + flag_changes(shown, now)


def _decision_screening(conn, case, screening_id: str | None) -> dict:
    """The deal's governing screening, read under the deal's lock; refused when it is not the one shown.

    ``screening_id`` is the screening the reviewer was shown (None: the governing one, whatever it is).
    A newer screening with the same material facts and flags takes the decision; one that differs is a 409
    naming what changed.
    """
    current = governing_screening(conn, case.transaction_id)
    if current is None:
        raise CaseError("The decision was not recorded: the deal has no stored screening",
                        {"screening_id": "the deal has no stored screening"}, status=409)
    if not screening_id or screening_id == current["id"]:
        return current
    shown = screening_by_id(conn, screening_id)
    if shown is None or shown.get("transaction_id") != case.transaction_id:
        message = f"{screening_id!r} is not a screening of this case's transaction {case.transaction_id}"
        raise CaseError(f"The decision was not recorded: screening_id: {message}", {"screening_id": message})
    changes = screening_changes(shown, current)
    if changes:
        message = (f"The deal was screened again after screening {shown['id']} was shown: the screening "
                   f"that governs it now is {current['id']} ({current.get('stage')}, "
                   f"{str(current.get('created_at') or '')[:19].replace('T', ' ')}), which differs: "
                   f"{'; '.join(changes)}. Review the case again and record the decision on what it shows now.")
        raise CaseError(message, {"screening_id": message}, status=409)
    return current


def known_safeguards(screening: dict, catalogue: dict[str, str] | None) -> tuple[list[str], list[str]]:
    """The safeguard ids a decision may name: the screening's own, then the rest of the catalogue."""
    own = list(dict.fromkeys(s.get("id") for s in screening.get("safeguards") or () if s.get("id")))
    return own, [i for i in (catalogue or {}) if i not in own]


def _facts(screening: dict) -> dict:
    txn = screening.get("transaction")
    if not txn:
        return {}
    return Transaction.from_dict(txn).material_facts()


def _canon(value) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _capabilities(screening: dict) -> list[str]:
    seen: dict[str, None] = {}
    for item in (screening.get("transaction") or {}).get("items") or ():
        for cap in item.get("capabilities") or ():
            seen.setdefault(cap, None)
    return list(seen)


def open_case(conn, screening: dict, reason: str, actor: str = "system", memo: dict | None = None) -> str:
    """Open a case for a stored screening, or add a note to the transaction's open case; return its id.

    ``memo`` (the store's ``scope_memo()``) keeps the open case looked up, for the gate read after.
    """
    txn = screening["transaction_id"]
    existing = memoized(memo, ("cases.open", txn), lambda: open_case_for_transaction(conn, txn))
    if existing:
        add_note(conn, existing["id"], actor, f"Screening {screening['id']} ({screening.get('stage')}): "
                                              f"{screening.get('decision')}. {reason}")
        return existing["id"]
    if memo is not None:
        memo.pop(("cases.open", txn), None)  # the case opened here: the gate reads it afresh
    end_user = (screening.get("transaction") or {}).get("end_user") or {}
    case_id = new_id("case")
    caps = _capabilities(screening)
    conn.execute(insert(cases).values(
        id=case_id, transaction_id=screening["transaction_id"], screening_id=screening["id"],
        opened_at=now_iso(), status="open", reason=reason,
        engine_decision=screening.get("decision") or "", stage=screening.get("stage") or "",
        end_user_name=end_user.get("name") or "", country=(end_user.get("country") or "")[:2],
        capabilities="|" + "|".join(caps) + "|" if caps else "",
        risk_score=int((screening.get("risk") or {}).get("score") or 0),
    ))
    audit.record(conn, actor, "case.open", case_id,
                 {"transaction_id": screening["transaction_id"], "screening_id": screening["id"],
                  "decision": screening.get("decision"), "reason": reason})
    return case_id


@contextmanager
def rescreen_context(previous: dict, reason: str | Callable[[dict], str]):
    """While re-screening a transaction, make a changed decision open a case that says what changed.

    ``reason`` may be a function of the screening stored (called once it is stored).
    """
    token = _RESCREEN.set((previous, reason))
    try:
        yield
    finally:
        _RESCREEN.reset(token)


def on_screening_stored(conn, screening: dict, memo: dict | None = None,
                        rules: material.Rules = material.DEFAULT_RULES) -> str | None:
    """Open a case for an escalated or blocked screening unless a standing decision already covers it.

    During a re-screening, any change of decision opens a case (whatever the new decision), with the
    description of what changed as its reason. ``memo`` as for ``open_case``; ``rules`` what is material
    beyond parties, end-user, items and countries (the policy's).
    """
    _reopen_if_approval_lapsed(conn, screening, memo, rules)
    context = _RESCREEN.get()
    if context and context[0]["transaction_id"] == screening["transaction_id"]:
        previous, reason = context
        reason = reason(screening) if callable(reason) else reason
        if previous["decision"] != screening["decision"]:
            return open_case(conn, screening, reason, actor="rescreen", memo=memo)
    else:
        reason = None
    if screening.get("decision") not in CASE_DECISIONS:
        return None
    if standing_override(conn, screening["transaction_id"], screening, memo, rules):
        return None
    counted: dict[tuple[str, str], int] = {}
    for f in screening.get("red_flags") or ():
        counted[(f["id"], f["severity"])] = counted.get((f["id"], f["severity"]), 0) + 1
    # One entry per flag and severity: a deal touching sixty countries notes "RF-3.1 (high) x59" once.
    flags = ", ".join(f"{flag_id} ({severity})" + (f" x{n}" if n > 1 else "")
                      for (flag_id, severity), n in counted.items())
    if reason is None:
        lapse = decision_lapse(conn, screening["transaction_id"], screening, memo, rules)
        reason = f"Engine decision {screening['decision']}: {flags or 'no flags listed'}" + (f"; {lapse}" if lapse else "")
    return open_case(conn, screening, reason, memo=memo)


def _reopen_if_approval_lapsed(conn, screening: dict, memo: dict | None, rules: material.Rules) -> None:
    """A first approval awaiting its second approver that no longer covers the deal (under the policy's
    ``rules``, as the gate judges it): the case is open again."""
    txn = screening["transaction_id"]
    decisions = memoized(memo, ("cases.decisions", txn), lambda: decisions_for_transaction(conn, txn))
    if not decisions or not awaiting_second_approval(decisions[0]):
        return
    why = _still_applies(decisions[0], screening, rules)
    if not why:
        return
    reopened = conn.execute(update(cases).where(cases.c.id == decisions[0]["case_id"],
                                                cases.c.status == "awaiting_second_approval").values(status="open"))
    if reopened.rowcount:
        add_note(conn, decisions[0]["case_id"], "system",
                 f"Screening {screening['id']} ({screening.get('stage')}): the approval {decisions[0]['id']} awaiting "
                 f"a second approval no longer covers the deal ({why}); the case is open for a new decision.")
        if memo is not None:
            memo.pop(("cases.open", txn), None)


def add_note(conn, case_id: str, author: str, text: str) -> None:
    """Append a note to a case's history."""
    conn.execute(_ADD_NOTE, {"case_id": case_id, "at": now_iso(), "author": author, "text": text})


# Built once: these run on every screening and gate read, where building a statement costs more than
# running it.
_ADD_NOTE = insert(case_notes)
_OPEN_CASE = (select(cases).where(cases.c.transaction_id == bindparam("txn"),
                                  or_(*(cases.c.status == s for s in OPEN_STATUSES)))
              .order_by(cases.c.opened_at.desc()).limit(1))
_DECISIONS = (select(case_decisions).where(case_decisions.c.transaction_id == bindparam("txn"))
              .order_by(case_decisions.c.decided_at.desc(), case_decisions.c.id.desc()))


_LOCK_TRANSACTION = (select(transactions.c.id).where(transactions.c.id == bindparam("txn"))
                     .with_for_update(key_share=True))
_LOCK_CASE = select(cases).where(cases.c.id == bindparam("case")).with_for_update(key_share=True)


def open_case_for_transaction(conn, transaction_id: str) -> dict | None:
    """The transaction's undecided case, if any."""
    row = conn.execute(_OPEN_CASE, {"txn": transaction_id}).first()
    return dict(row._mapping) if row else None


def get_case(conn, case_id: str, rules: DualControl | None = None,
             material_rules: material.Rules = material.DEFAULT_RULES) -> dict | None:
    """One case with its decisions (newest first) and notes (oldest first).

    Also ``awaiting_second_approval``: the first approval awaiting a second approver (the decision, with
    ``lapsed``: why it no longer covers the deal's screening under ``material_rules``, the policy's, or
    None), or None. With ``rules`` (the policy's dual control), ``dual_control``: what approving the deal's
    governing screening now takes (``{"screening_id", "required", "reasons"}``).
    """
    row = conn.execute(select(cases).where(cases.c.id == case_id)).first()
    if row is None:
        return None
    case = dict(row._mapping)
    case["capability_list"] = [c for c in case["capabilities"].split("|") if c]
    case["decisions"] = decisions_for_transaction(conn, case["transaction_id"])
    latest = case["decisions"][0] if case["decisions"] else None
    governing = None
    if awaiting_second_approval(latest) or rules is not None:
        governing = governing_screening(conn, case["transaction_id"])
    case["awaiting_second_approval"] = None
    if awaiting_second_approval(latest) and latest["case_id"] == case_id:
        lapsed = _still_applies(latest, governing, material_rules) if governing else "the deal has no screening"
        case["awaiting_second_approval"] = {**latest, "lapsed": lapsed}
    if rules is not None:
        reasons = rules.reasons(governing)
        case["dual_control"] = {"screening_id": (governing or {}).get("id"), "required": bool(reasons),
                                "reasons": reasons}
    case["notes"] = [dict(r._mapping) for r in conn.execute(
        select(case_notes).where(case_notes.c.case_id == case_id).order_by(case_notes.c.id))]
    return case


def queue(conn, *, status: str | None = "open", country: str | None = None, capability: str | None = None,
          min_age_days: float | None = None, limit: int = 100, offset: int = 0) -> tuple[list[dict], int]:
    """Cases matching the filters, oldest first, and how many match in all.

    ``status`` is a status, ``"open"`` (meaning every undecided status) or None/``"all"``.
    """
    query = select(cases)
    if status == "open":
        query = query.where(cases.c.status.in_(OPEN_STATUSES))
    elif status and status != "all":
        query = query.where(cases.c.status == status)
    if country:
        query = query.where(cases.c.country == country.upper())
    if capability:
        # Capability ids are lower case; LIKE ignores case on SQLite only, and % or _ must match themselves.
        needle = capability.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(cases.c.capabilities.like(f"%|{needle}|%", escape="\\"))
    if min_age_days:
        query = query.where(cases.c.opened_at <= days_ago_iso(min_age_days))
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(query.order_by(cases.c.opened_at, cases.c.id).limit(limit).offset(offset))
    out = []
    for row in rows:
        case = dict(row._mapping)
        case["capability_list"] = [c for c in case["capabilities"].split("|") if c]
        out.append(case)
    deals.describe(conn, out)
    return out, total


def _decision_row(row) -> dict:
    data = dict(row._mapping)
    data["safeguards"] = json.loads(data["safeguards"] or "[]")
    data["flag_ids"] = json.loads(data["flag_ids"] or "[]")
    data["material_facts"] = json.loads(data["material_facts"] or "{}")
    data["flag_severities"] = json.loads(data.get("flag_severities") or "{}")
    data["dual_control"] = json.loads(data.get("dual_control") or "[]")
    data["label"] = OUTCOME_LABELS.get(data["outcome"], data["outcome"])
    return data


def _with_approval_state(decisions: list[dict]) -> list[dict]:
    """Add ``second_approval`` to each decision (newest first): None when one approver sufficed, else
    ``{"status": "awaiting" | "given" | "not_given", "first_approval", "first_approver", "second_approval_id",
    "second_approver", "reasons"}`` (``not_given``: superseded by a later decision before a second approval).
    """
    by_id = {d["id"]: d for d in decisions}
    confirmed = {d["second_approval_of"]: d for d in decisions if d.get("second_approval_of")}
    for n, decision in enumerate(decisions):
        if decision.get("second_approval_of"):
            first = by_id.get(decision["second_approval_of"]) or {}
            decision["second_approval"] = {
                "status": "given", "first_approval": decision["second_approval_of"],
                "first_approver": first.get("decided_by"), "second_approval_id": decision["id"],
                "second_approver": decision["decided_by"], "reasons": decision["dual_control"]}
        elif decision["dual_control"]:
            second = confirmed.get(decision["id"])
            decision["second_approval"] = {
                "status": "given" if second else ("awaiting" if n == 0 else "not_given"),
                "first_approval": decision["id"], "first_approver": decision["decided_by"],
                "second_approval_id": second["id"] if second else None,
                "second_approver": second["decided_by"] if second else None, "reasons": decision["dual_control"]}
        else:
            decision["second_approval"] = None
    return decisions


def decisions_for_transaction(conn, transaction_id: str) -> list[dict]:
    """Every reviewer decision on a transaction, newest first (the first one is in force, unless it is a
    first approval awaiting its second approver)."""
    return _with_approval_state([_decision_row(r) for r in conn.execute(_DECISIONS, {"txn": transaction_id})])


def decision_cause(case_id: str, outcome) -> str:
    """What a reviewer's decision changed, in words, for ``Services.changing_gates``."""
    if outcome == "second_approval":
        return f"reviewer decision on case {case_id}: second approval"
    label = OUTCOME_LABELS.get(outcome, "a decision") if isinstance(outcome, str) else "a decision"
    return f"reviewer decision on case {case_id}: {label.lower()}"


def written_back_always(outcome) -> bool:
    """True for a decision the CRM is told of even when the gate stays where it was: a request for
    information (the gate stays ``hold``; the write-back's reason quotes what the reviewer asked)."""
    return outcome == "request_information"


def _lock_case(conn, case_id: str):
    case = conn.execute(select(cases).where(cases.c.id == case_id)).first()
    if case is None:
        raise LookupError(case_id)
    # Lock the deal, then the case, in the order a screening being stored takes them: two instances
    # deciding at once make a linear chain of decisions, and a screening stored meanwhile sees the
    # decision (and opens a new case if it no longer covers it) instead of noting on a decided case.
    conn.execute(_LOCK_TRANSACTION, {"txn": case.transaction_id})
    return conn.execute(_LOCK_CASE, {"case": case_id}).first()


def _refused(errors: dict, status: int = 422) -> CaseError:
    return CaseError("The decision was not recorded: " + "; ".join(f"{k}: {v}" for k, v in errors.items()),
                     errors, status)


def _terms(screening: dict) -> dict:
    """What a decision records of the screening it was made on (its lapse compares with these)."""
    return {"screening_id": screening["id"], "material_facts": _canon(_facts(screening)),
            "flag_ids": json.dumps(sorted({f["id"] for f in screening.get("red_flags") or ()})),
            "engine_decision": screening.get("decision"),
            "flag_severities": json.dumps(worst_severities(screening), sort_keys=True)}


def decide(conn, case_id: str, *, outcome: str, rationale: str, actor: str, screening_id: str | None = None,
           conditions: str = "", safeguards: list[str] | None = None, licence_reference: str = "",
           rules: DualControl | None = None, catalogue: dict[str, str] | None = None) -> dict:
    """Record a reviewer's decision on a case (never edited later; a new decision supersedes it).

    The decision is made on the deal's governing screening, read once the deal and the case are locked.
    ``screening_id`` is the screening the reviewer was shown: when another one governs now and differs in
    material facts or red flags, the decision is refused (CaseError, status 409, naming what changed); when
    it differs in nothing material, the decision is made on the newer one. None: the governing one.
    ``rules`` (the policy's dual control; None: the defaults) may put an approval under two-person control: it then needs
    ``licence_reference``, at most approve with conditions, and is recorded as awaiting a second approval
    (``second_approve``). ``safeguards`` must be the screening's safeguards or ids of ``catalogue``
    (id -> title, every safeguard the plugins know). The decision holds while the material facts and red
    flags of the screening it was made on stay the same.
    """
    case = _lock_case(conn, case_id)
    screening = _decision_screening(conn, case, screening_id)
    errors = {}
    if outcome not in OUTCOMES:
        errors["decision"] = f"must be one of {', '.join(OUTCOMES)}"
    rationale = (rationale or "").strip()
    if len(rationale) < MIN_RATIONALE:
        errors["rationale"] = f"a rationale of at least {MIN_RATIONALE} characters is required"
    conditions = (conditions or "").strip()
    safeguards = list(dict.fromkeys(s for s in (safeguards or []) if s))
    own, others = known_safeguards(screening, catalogue)
    unknown = [s for s in safeguards if s not in own and s not in others]
    if unknown:
        errors["safeguards"] = (
            f"unknown safeguard id(s): {', '.join(unknown)}; accepted: the screening's safeguards "
            f"({', '.join(own) or 'none'})" + (f" or the safeguard catalogue ({', '.join(others)})" if others else ""))
    elif outcome == "approve_with_conditions" and not conditions and not safeguards:
        errors["conditions"] = "approve with conditions needs conditions text or at least one safeguard"
    licence_reference = " ".join((licence_reference or "").split())
    if len(licence_reference) > MAX_LICENCE_REFERENCE:
        errors["licence_reference"] = f"at most {MAX_LICENCE_REFERENCE} characters"
    reasons = (rules or dual_control_rules(None)).reasons(screening) if outcome in APPROVALS else []
    if reasons:
        why = "; ".join(reasons)
        if outcome == "approve":
            errors["decision"] = (
                f"a plain approve is not available for this screening ({why}): approve with conditions "
                "(conditions or a safeguard), with a licence or authorisation reference, and a second "
                "approval by a different reviewer")
        if not licence_reference and "licence_reference" not in errors:
            errors["licence_reference"] = (f"a licence or authorisation reference is required to approve this "
                                           f"screening ({why})")
    if errors:
        raise _refused(errors)
    previous = decisions_for_transaction(conn, case.transaction_id)
    decision_id = new_id("dec")
    row = {
        "id": decision_id, "case_id": case_id, "transaction_id": case.transaction_id,
        "outcome": outcome, "gate": OUTCOMES[outcome],
        "rationale": rationale, "conditions": conditions, "safeguards": json.dumps(safeguards),
        **_terms(screening),
        "decided_by": actor, "decided_at": now_iso(),
        "supersedes": previous[0]["id"] if previous else None,
        "licence_reference": licence_reference or None,
        "dual_control": json.dumps(reasons) if reasons else None,
    }
    conn.execute(insert(case_decisions).values(**row))
    status = ("information_requested" if outcome == "request_information"
              else "awaiting_second_approval" if reasons else "decided")
    conn.execute(update(cases).where(cases.c.id == case_id).values(status=status))
    audit.record(conn, actor, "case.decision", case_id, {
        "decision_id": decision_id, "transaction_id": case.transaction_id, "screening_id": screening["id"],
        "screening_shown": screening_id, "outcome": outcome, "gate": OUTCOMES[outcome], "rationale": rationale,
        "conditions": conditions, "safeguards": safeguards, "licence_reference": licence_reference or None,
        "awaiting_second_approval": bool(reasons), "dual_control": reasons, "supersedes": row["supersedes"]})
    return _one_decision(conn, case.transaction_id, decision_id)


def _one_decision(conn, transaction_id: str, decision_id: str) -> dict:
    return next(d for d in decisions_for_transaction(conn, transaction_id) if d["id"] == decision_id)


def second_approve(conn, case_id: str, *, decision_id: str, rationale: str, actor: str,
                   screening_id: str | None = None, rules: material.Rules = material.DEFAULT_RULES) -> dict:
    """Record a second reviewer's approval of a first approval awaiting it; the approval is then in force.

    A new immutable row naming the first (``second_approval_of``) with the same outcome, conditions,
    safeguards and licence reference, made on the deal's governing screening (read under the locks, and
    compared with ``screening_id`` as ``decide`` does). Refused (CaseError) when ``decision_id`` is not the
    decision awaiting a second approval (409), when the first approval no longer covers the deal (409:
    judged under ``rules``, the policy's ``material_changes``, as the gate and the first approval's hold
    judge it), or when ``actor`` is its first approver (403).
    """
    case = _lock_case(conn, case_id)
    screening = _decision_screening(conn, case, screening_id)
    decisions = decisions_for_transaction(conn, case.transaction_id)
    first = next((d for d in decisions if d["id"] == decision_id and d["case_id"] == case_id), None)
    rationale = (rationale or "").strip()
    if first is None:
        raise _refused({"decision_id": f"{decision_id!r} is not a decision of case {case_id}"})
    if not awaiting_second_approval(first) or decisions[0]["id"] != first["id"]:
        state = ("it was given a second approval already" if (first.get("second_approval") or {}).get("status") == "given"
                 else "it needs none" if not first["dual_control"]
                 else f"a later decision ({decisions[0]['id']}, {decisions[0]['label'].lower()}) superseded it")
        raise _refused({"decision_id": f"decision {decision_id} is not awaiting a second approval: {state}"}, 409)
    if _person(first["decided_by"]) == _person(actor):
        raise _refused({"decision_id": f"the second approval must come from a different reviewer than the first "
                                       f"approver ({first['decided_by']}): another workspace user or API key"}, 403)
    lapsed = _still_applies(first, screening, rules)
    if lapsed:
        raise _refused({"decision_id": f"the first approval no longer covers the deal's screening {screening['id']} "
                                       f"({lapsed}): review the case again and record a new decision"}, 409)
    if len(rationale) < MIN_RATIONALE:
        raise _refused({"rationale": f"a rationale of at least {MIN_RATIONALE} characters is required"})
    row = {
        "id": new_id("dec"), "case_id": case_id, "transaction_id": case.transaction_id,
        "outcome": first["outcome"], "gate": first["gate"], "rationale": rationale,
        "conditions": first["conditions"], "safeguards": json.dumps(first["safeguards"]),
        **_terms(screening), "decided_by": actor, "decided_at": now_iso(), "supersedes": first["id"],
        "licence_reference": first["licence_reference"], "dual_control": json.dumps(first["dual_control"]),
        "second_approval_of": first["id"],
    }
    conn.execute(insert(case_decisions).values(**row))
    conn.execute(update(cases).where(cases.c.id == case_id).values(status="decided"))
    audit.record(conn, actor, "case.second_approval", case_id, {
        "decision_id": row["id"], "second_approval_of": first["id"], "first_approver": first["decided_by"],
        "transaction_id": case.transaction_id, "screening_id": screening["id"], "screening_shown": screening_id,
        "outcome": row["outcome"], "gate": row["gate"], "rationale": rationale,
        "licence_reference": first["licence_reference"], "dual_control": first["dual_control"]})
    return _one_decision(conn, case.transaction_id, row["id"])


def _still_applies(decision: dict, screening: dict, rules: material.Rules = material.DEFAULT_RULES) -> str | None:
    """None when the decision still governs this screening, else why it lapsed.

    It lapses when a material fact changes (under ``rules``, the intended use or a quantity or value grown
    beyond its factor too), a red flag appears, a flag's severity rises (a possible restricted-party match
    confirmed) or the engine's decision gets worse. Names are compared by their end-user keys, as the order
    gate, grievances and answers on record compare them: a spelling variant of the end-user or a party is
    no change.
    """
    facts = json.loads(_canon(_facts(screening)))
    if decision["material_facts"] and "deployment" not in decision["material_facts"]:
        facts.pop("deployment", None)  # decided before deployment countries were recorded apart
    if keyed_facts(decision["material_facts"]) != keyed_facts(facts):
        return "material facts changed (party, end-user, item, country or deployment country)"
    # Decided before the intended use and scale were recorded (and not filled in): those are not compared.
    changed = material.changes(decision["material_facts"], facts, rules)
    if changed:
        return "; ".join(changed)
    new_flags = {f["id"] for f in screening.get("red_flags") or ()} - set(decision["flag_ids"])
    if new_flags:
        return "new red flags since the decision: " + ", ".join(sorted(new_flags))
    before = decision.get("engine_decision")
    if before in DECISIONS and DECISIONS.index(screening.get("decision", before)) > DECISIONS.index(before):
        return f"the engine's decision rose from {before} to {screening['decision']}"
    severities = decision.get("flag_severities") or {}
    risen = [f"{flag_id} {severities[flag_id]} -> {severity}" for flag_id, severity in worst_severities(screening).items()
             if flag_id in severities and severity_rank(severity) > severity_rank(severities[flag_id])]
    if risen:
        return "red flags more severe since the decision: " + ", ".join(risen)
    return None


def decision_lapse(conn, transaction_id: str, screening: dict | None, memo: dict | None = None,
                   rules: material.Rules = material.DEFAULT_RULES) -> str | None:
    """Why the transaction's latest reviewer decision no longer governs this screening, in words; None when
    it does (or there is none to lapse)."""
    decisions = memoized(memo, ("cases.decisions", transaction_id),
                          lambda: decisions_for_transaction(conn, transaction_id))
    if not decisions or screening is None or decisions[0]["outcome"] == "request_information":
        return None
    why = _still_applies(decisions[0], screening, rules)
    return f"reviewer decision {decisions[0]['id']} no longer applies: {why}" if why else None


def standing_override(conn, transaction_id: str, screening: dict | None, memo: dict | None = None,
                      rules: material.Rules = material.DEFAULT_RULES) -> dict | None:
    """The reviewer decision in force for this transaction and screening, as a gate override, or None.

    A first approval awaiting its second approver is not in force (``gate_factors`` holds the gate for it);
    one given its second approval carries ``dual_control``, why two reviewers were needed (else empty).
    """
    decisions = memoized(memo, ("cases.decisions", transaction_id),
                          lambda: decisions_for_transaction(conn, transaction_id))
    if not decisions or screening is None:
        return None
    latest = decisions[0]
    if latest["outcome"] == "request_information" or awaiting_second_approval(latest) \
            or _still_applies(latest, screening, rules):
        return None
    approval = latest.get("second_approval")
    if approval:
        who = (f"{approval['first_approver']} (decision {approval['first_approval']}) and {latest['decided_by']} "
               f"(second approval)")
    else:
        who = latest["decided_by"]
    licence = f", licence or authorisation {latest['licence_reference']}" if latest.get("licence_reference") else ""
    return {"kind": "override", "gate": latest["gate"],
            "reason": f"reviewer decision {latest['id']} ({latest['label'].lower()}) by {who}{licence}: "
                      f"{latest['rationale']}",
            "at": latest["decided_at"], "decision_id": latest["id"],
            "conditions": latest["conditions"], "safeguards": latest["safeguards"],
            # Why two reviewers had to approve (empty when one sufficed): the order gate then wants the rider.
            "dual_control": latest["dual_control"] if approval else [],
            "review": review.review_of(latest, screening)}


def standing_request(conn, transaction_id: str, screening: dict | None, memo: dict | None = None,
                     rules: material.Rules = material.DEFAULT_RULES) -> dict | None:
    """The reviewer's request for information in force for this screening (the newest decision), or None."""
    decisions = memoized(memo, ("cases.decisions", transaction_id),
                          lambda: decisions_for_transaction(conn, transaction_id))
    if not decisions or screening is None or decisions[0]["outcome"] != "request_information":
        return None
    return None if _still_applies(decisions[0], screening, rules) else decisions[0]


def _awaiting_hold(decisions: list[dict], screening: dict | None,
                   rules: material.Rules = material.DEFAULT_RULES) -> dict | None:
    """The hold of a first approval awaiting its second approver, while it covers the screening."""
    latest = decisions[0] if decisions else None
    if not awaiting_second_approval(latest) or screening is None or _still_applies(latest, screening, rules):
        return None
    licence = f"; licence or authorisation {latest['licence_reference']}" if latest.get("licence_reference") else ""
    return {"kind": "hold", "decision_id": latest["id"], "reason": (
        f"reviewer decision {latest['id']} ({latest['label'].lower()}) by {latest['decided_by']} awaits a second "
        f"approval by a different reviewer (two approvers needed: {'; '.join(latest['dual_control'])}{licence}); "
        f"held until then")}


def gate_factors(conn, transaction_id: str, screening: dict | None, memo: dict | None = None,
                 rules: material.Rules = material.DEFAULT_RULES) -> list[dict]:
    """What reviewers contribute to the gate: a standing decision, a first approval awaiting its second
    approver (a hold), a request for information (a hold at every stage), or a hold for an undecided case
    at order, renewal or post-sale (saying why an earlier decision no longer applies)."""
    memo = {} if memo is None else memo  # the decisions are read once even outside a request's scope
    factors = []
    override = standing_override(conn, transaction_id, screening, memo, rules)
    if override:
        factors.append(override)
    decisions = memoized(memo, ("cases.decisions", transaction_id),
                         lambda: decisions_for_transaction(conn, transaction_id))
    awaiting = _awaiting_hold(decisions, screening, rules)
    if awaiting:
        factors.append(awaiting)
    request = None if override or awaiting else standing_request(conn, transaction_id, screening, memo, rules)
    if request:
        # At every stage: the hold says what the reviewer asked for, instead of "a reviewer must decide".
        factors.append(review.information_hold(request, screening))
    pending = memoized(memo, ("cases.open", transaction_id), lambda: open_case_for_transaction(conn, transaction_id))
    if pending and is_order_stage((screening or {}).get("stage")) and not override and not awaiting \
            and not request:
        what = {"information_requested": "information requested",
                "awaiting_second_approval": "its approval lapsed before a second approval"}.get(
                    pending["status"], "undecided")
        lapse = decision_lapse(conn, transaction_id, screening, memo, rules)
        factors.append({"kind": "hold", "reason": f"escalation {what}: case {pending['id']} awaits a reviewer"
                                                  + (f" ({lapse})" if lapse else "")})
    return factors


def counts_by_status(conn) -> dict[str, int]:
    """How many cases are in each status."""
    rows = conn.execute(select(cases.c.status, func.count()).group_by(cases.c.status))
    return {status: n for status, n in rows}
