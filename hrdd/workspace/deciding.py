"""Recording reviewer decisions on a case: the decision, the second approval under dual control, and the
checks that the screening a reviewer saw is still the one that governs the deal."""

from __future__ import annotations

import json

from sqlalchemy import bindparam, insert, select, update

from hrdd import audit, material
from hrdd.changes import flag_changes, material_changes
from hrdd.store import governing_screening, screening_by_id
from hrdd.tables import transactions
from hrdd.workspace.cases import MAX_LICENCE_REFERENCE, MIN_RATIONALE, CaseError
from hrdd.workspace.decision_records import (
    APPROVALS,
    OUTCOME_LABELS,
    OUTCOMES,
    decision_terms,
    decisions_for_transaction,
    material_facts_of,
    still_applies,
)
from hrdd.workspace.dual_control import (
    DualControl,
    awaiting_second_approval,
    dual_control_rules,
    reviewer_identity,
)
from hrdd.workspace.tables import case_decisions, cases
from hrdd.workspace.util import keyed_facts, new_id, now_iso

_LOCK_TRANSACTION = (select(transactions.c.id).where(transactions.c.id == bindparam("txn"))
                     .with_for_update(key_share=True))
_LOCK_CASE = select(cases).where(cases.c.id == bindparam("case")).with_for_update(key_share=True)


def screening_changes(shown: dict, now: dict) -> list[str]:
    """What differs between the screening a reviewer saw and the deal's screening now (empty: nothing).

    Material facts compare as a reviewer's decision compares them (names by their end-user keys: a
    spelling variant is no change); red flags by id and worst severity, and the engine's decision.
    """
    changes = []
    if shown.get("transaction") and now.get("transaction") and \
            keyed_facts(material_facts_of(shown)) != keyed_facts(material_facts_of(now)):
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
        **decision_terms(screening),
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
    if reviewer_identity(first["decided_by"]) == reviewer_identity(actor):
        raise _refused({"decision_id": f"the second approval must come from a different reviewer than the first "
                                       f"approver ({first['decided_by']}): another workspace user or API key"}, 403)
    lapsed = still_applies(first, screening, rules)
    if lapsed:
        raise _refused({"decision_id": f"the first approval no longer covers the deal's screening {screening['id']} "
                                       f"({lapsed}): review the case again and record a new decision"}, 409)
    if len(rationale) < MIN_RATIONALE:
        raise _refused({"rationale": f"a rationale of at least {MIN_RATIONALE} characters is required"})
    row = {
        "id": new_id("dec"), "case_id": case_id, "transaction_id": case.transaction_id,
        "outcome": first["outcome"], "gate": first["gate"], "rationale": rationale,
        "conditions": first["conditions"], "safeguards": json.dumps(first["safeguards"]),
        **decision_terms(screening), "decided_by": actor, "decided_at": now_iso(), "supersedes": first["id"],
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
