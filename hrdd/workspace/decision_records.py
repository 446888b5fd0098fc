"""Reviewer decisions as recorded: their outcomes, reading them newest first, and whether one still covers a
screening (the decision in force, a lapse, a request for information, an approval awaiting its second approver)."""

from __future__ import annotations

import json

from sqlalchemy import bindparam, select

from hrdd import material
from hrdd.changes import worst_severities
from hrdd.model import DECISIONS, Transaction, severity_rank
from hrdd.store import memoized
from hrdd.workspace import review
from hrdd.workspace.dual_control import awaiting_second_approval
from hrdd.workspace.tables import case_decisions
from hrdd.workspace.util import keyed_facts

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
APPROVALS = ("approve", "approve_with_conditions")

# Built once: it runs on every screening and gate read, where building a statement costs more than running it.
_DECISIONS = (select(case_decisions).where(case_decisions.c.transaction_id == bindparam("txn"))
              .order_by(case_decisions.c.decided_at.desc(), case_decisions.c.id.desc()))


def material_facts_of(screening: dict) -> dict:
    """The material facts of a screening's transaction (empty when it carries none)."""
    txn = screening.get("transaction")
    if not txn:
        return {}
    return Transaction.from_dict(txn).material_facts()


def canonical(value) -> str:
    """``value`` as JSON with sorted keys and no spaces, for comparing what was decided with what is."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


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


def decision_terms(screening: dict) -> dict:
    """What a decision records of the screening it was made on (its lapse compares with these)."""
    return {"screening_id": screening["id"], "material_facts": canonical(material_facts_of(screening)),
            "flag_ids": json.dumps(sorted({f["id"] for f in screening.get("red_flags") or ()})),
            "engine_decision": screening.get("decision"),
            "flag_severities": json.dumps(worst_severities(screening), sort_keys=True)}


def still_applies(decision: dict, screening: dict, rules: material.Rules = material.DEFAULT_RULES) -> str | None:
    """None when the decision still governs this screening, else why it lapsed.

    It lapses when a material fact changes (under ``rules``, the intended use or a quantity or value grown
    beyond its factor too), a red flag appears, a flag's severity rises (a possible restricted-party match
    confirmed) or the engine's decision gets worse. Names are compared by their end-user keys, as the order
    gate, grievances and answers on record compare them: a spelling variant of the end-user or a party is
    no change.
    """
    facts = json.loads(canonical(material_facts_of(screening)))
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
    why = still_applies(decisions[0], screening, rules)
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
            or still_applies(latest, screening, rules):
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
    return None if still_applies(decisions[0], screening, rules) else decisions[0]


def awaiting_hold(decisions: list[dict], screening: dict | None,
                   rules: material.Rules = material.DEFAULT_RULES) -> dict | None:
    """The hold of a first approval awaiting its second approver, while it covers the screening."""
    latest = decisions[0] if decisions else None
    if not awaiting_second_approval(latest) or screening is None or still_applies(latest, screening, rules):
        return None
    licence = f"; licence or authorisation {latest['licence_reference']}" if latest.get("licence_reference") else ""
    return {"kind": "hold", "decision_id": latest["id"], "reason": (
        f"reviewer decision {latest['id']} ({latest['label'].lower()}) by {latest['decided_by']} awaits a second "
        f"approval by a different reviewer (two approvers needed: {'; '.join(latest['dual_control'])}{licence}); "
        f"held until then")}
