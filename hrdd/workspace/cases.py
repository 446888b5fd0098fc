"""Review cases: opened for escalations, decided by reviewers, and the gate overrides they produce."""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import bindparam, func, insert, or_, select, update

from hrdd import audit, material
from hrdd.model import DECISIONS, Transaction, is_order_stage, severity_rank
from hrdd.store import memoized
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
OPEN_STATUSES = ("open", "information_requested")
STATUSES = OPEN_STATUSES + ("decided",)
MIN_RATIONALE = 10
# Set by hrdd.rescreen around storing a re-screening: (previous screening, what changed).
_RESCREEN: ContextVar[tuple[dict, str | Callable[[dict], str]] | None] = ContextVar("hrdd_rescreen", default=None)


class CaseError(ValueError):
    """A decision or case action was refused; ``errors`` maps field names to messages."""

    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message)
        self.errors = errors or {}


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


def get_case(conn, case_id: str) -> dict | None:
    """One case with its decisions (newest first) and notes (oldest first)."""
    row = conn.execute(select(cases).where(cases.c.id == case_id)).first()
    if row is None:
        return None
    case = dict(row._mapping)
    case["capability_list"] = [c for c in case["capabilities"].split("|") if c]
    case["decisions"] = decisions_for_transaction(conn, case["transaction_id"])
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
    data["label"] = OUTCOME_LABELS.get(data["outcome"], data["outcome"])
    return data


def decisions_for_transaction(conn, transaction_id: str) -> list[dict]:
    """Every reviewer decision on a transaction, newest first (the first one is in force)."""
    return [_decision_row(r) for r in conn.execute(_DECISIONS, {"txn": transaction_id})]


def decision_cause(case_id: str, outcome) -> str:
    """What a reviewer's decision changed, in words, for ``Services.changing_gates``."""
    label = OUTCOME_LABELS.get(outcome, "a decision") if isinstance(outcome, str) else "a decision"
    return f"reviewer decision on case {case_id}: {label.lower()}"


def decide(conn, case_id: str, *, outcome: str, rationale: str, actor: str, screening: dict,
           conditions: str = "", safeguards: list[str] | None = None) -> dict:
    """Record a reviewer's decision on a case (never edited later; a new decision supersedes it).

    ``screening`` is the transaction's latest stored screening: the decision holds while its material
    facts and red flags stay the same.
    """
    case = conn.execute(select(cases).where(cases.c.id == case_id)).first()
    if case is None:
        raise LookupError(case_id)
    # Lock the deal, then the case, in the order a screening being stored takes them: two instances
    # deciding at once make a linear chain of decisions, and a screening stored meanwhile sees the
    # decision (and opens a new case if it no longer covers it) instead of noting on a decided case.
    conn.execute(_LOCK_TRANSACTION, {"txn": case.transaction_id})
    case = conn.execute(_LOCK_CASE, {"case": case_id}).first()
    errors = {}
    if outcome not in OUTCOMES:
        errors["decision"] = f"must be one of {', '.join(OUTCOMES)}"
    rationale = (rationale or "").strip()
    if len(rationale) < MIN_RATIONALE:
        errors["rationale"] = f"a rationale of at least {MIN_RATIONALE} characters is required"
    conditions = (conditions or "").strip()
    safeguards = [s for s in (safeguards or []) if s]
    if outcome == "approve_with_conditions" and not conditions and not safeguards:
        errors["conditions"] = "approve with conditions needs conditions text or at least one safeguard"
    if screening.get("transaction_id") != case.transaction_id:
        errors["screening"] = "the screening does not belong to this case's transaction"
    if errors:
        raise CaseError("The decision was not recorded: " + "; ".join(f"{k}: {v}" for k, v in errors.items()),
                        errors)
    previous = decisions_for_transaction(conn, case.transaction_id)
    decision_id = new_id("dec")
    row = {
        "id": decision_id, "case_id": case_id, "transaction_id": case.transaction_id,
        "screening_id": screening["id"], "outcome": outcome, "gate": OUTCOMES[outcome],
        "rationale": rationale, "conditions": conditions, "safeguards": json.dumps(safeguards),
        "material_facts": _canon(_facts(screening)),
        "flag_ids": json.dumps(sorted({f["id"] for f in screening.get("red_flags") or ()})),
        "engine_decision": screening.get("decision"),
        "flag_severities": json.dumps(_worst_severities(screening), sort_keys=True),
        "decided_by": actor, "decided_at": now_iso(),
        "supersedes": previous[0]["id"] if previous else None,
    }
    conn.execute(insert(case_decisions).values(**row))
    status = "information_requested" if outcome == "request_information" else "decided"
    conn.execute(update(cases).where(cases.c.id == case_id).values(status=status))
    audit.record(conn, actor, "case.decision", case_id, {
        "decision_id": decision_id, "transaction_id": case.transaction_id, "screening_id": screening["id"],
        "outcome": outcome, "gate": OUTCOMES[outcome], "rationale": rationale, "conditions": conditions,
        "safeguards": safeguards, "supersedes": row["supersedes"]})
    return _decision_row(conn.execute(select(case_decisions).where(case_decisions.c.id == decision_id)).one())


def _worst_severities(screening: dict) -> dict[str, str]:
    worst: dict[str, str] = {}
    for flag in screening.get("red_flags") or ():
        if flag["id"] not in worst or severity_rank(flag["severity"]) > severity_rank(worst[flag["id"]]):
            worst[flag["id"]] = flag["severity"]
    return worst


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
    risen = [f"{flag_id} {severities[flag_id]} -> {severity}" for flag_id, severity in _worst_severities(screening).items()
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
    """The reviewer decision in force for this transaction and screening, as a gate override, or None."""
    decisions = memoized(memo, ("cases.decisions", transaction_id),
                          lambda: decisions_for_transaction(conn, transaction_id))
    if not decisions or screening is None:
        return None
    latest = decisions[0]
    if latest["outcome"] == "request_information" or _still_applies(latest, screening, rules):
        return None
    return {"kind": "override", "gate": latest["gate"],
            "reason": f"reviewer decision {latest['id']} ({latest['label'].lower()}) by "
                      f"{latest['decided_by']}: {latest['rationale']}",
            "at": latest["decided_at"], "decision_id": latest["id"],
            "conditions": latest["conditions"], "safeguards": latest["safeguards"],
            "review": review.review_of(latest, screening)}


def standing_request(conn, transaction_id: str, screening: dict | None, memo: dict | None = None) -> dict | None:
    """The reviewer's request for information in force for this screening (the newest decision), or None."""
    decisions = memoized(memo, ("cases.decisions", transaction_id),
                          lambda: decisions_for_transaction(conn, transaction_id))
    if not decisions or screening is None or decisions[0]["outcome"] != "request_information":
        return None
    return None if _still_applies(decisions[0], screening) else decisions[0]


def gate_factors(conn, transaction_id: str, screening: dict | None, memo: dict | None = None,
                 rules: material.Rules = material.DEFAULT_RULES) -> list[dict]:
    """What reviewers contribute to the gate: a standing decision, or a hold for an undecided case at order,
    renewal or post-sale (saying why an earlier decision no longer applies)."""
    factors = []
    override = standing_override(conn, transaction_id, screening, memo, rules)
    if override:
        factors.append(override)
    request = None if override else standing_request(conn, transaction_id, screening, memo)
    if request:
        # At every stage: the hold says what the reviewer asked for, instead of "a reviewer must decide".
        factors.append(review.information_hold(request, screening))
    pending = memoized(memo, ("cases.open", transaction_id), lambda: open_case_for_transaction(conn, transaction_id))
    if pending and is_order_stage((screening or {}).get("stage")) and not override and not request:
        what = "information requested" if pending["status"] == "information_requested" else "undecided"
        lapse = decision_lapse(conn, transaction_id, screening, memo, rules)
        factors.append({"kind": "hold", "reason": f"escalation {what}: case {pending['id']} awaits a reviewer"
                                                  + (f" ({lapse})" if lapse else "")})
    return factors


def counts_by_status(conn) -> dict[str, int]:
    """How many cases are in each status."""
    rows = conn.execute(select(cases.c.status, func.count()).group_by(cases.c.status))
    return {status: n for status, n in rows}
