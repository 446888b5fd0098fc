"""Review cases: opened for escalations, queued for reviewers, and what open cases add to the gate."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar

from sqlalchemy import bindparam, func, insert, or_, select, update

from hrdd import audit, material
from hrdd.model import is_order_stage
from hrdd.store import governing_screening, memoized
from hrdd.workspace import deals, review
from hrdd.workspace.decision_records import (
    awaiting_hold,
    decision_lapse,
    decisions_for_transaction,
    standing_override,
    standing_request,
    still_applies,
)
from hrdd.workspace.dual_control import DualControl, awaiting_second_approval
from hrdd.workspace.tables import case_notes, cases
from hrdd.workspace.util import days_ago_iso, new_id, now_iso

CASE_DECISIONS = ("escalate", "do_not_proceed")
# A first approval awaiting its second approver keeps the case open (in the queue) until then.
OPEN_STATUSES = ("open", "information_requested", "awaiting_second_approval")
STATUSES = OPEN_STATUSES + ("decided",)
MIN_RATIONALE = 10
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
    why = still_applies(decisions[0], screening, rules)
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
        lapsed = still_applies(latest, governing, material_rules) if governing else "the deal has no screening"
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
    awaiting = awaiting_hold(decisions, screening, rules)
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
