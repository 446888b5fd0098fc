"""Answers an upload withdrew that had raised a serious red flag: the gate holds until a reviewer confirms."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime

import sqlalchemy as sa

from hrdd.checklists.evidence import checklist_uploads
from hrdd.checklists.templates import CHOICES
from hrdd.model import severity_rank
from hrdd.workspace.cases import open_case_for_transaction
from hrdd.workspace.decision_records import decisions_for_transaction

# Used when the policy file has no `checklists.confirm_withdrawn_severities`: the cautious reading.
DEFAULT_SEVERITIES = ("critical", "high")
# The red flags the engine's own checks raise from an answer (plugins step1, step2, step4, step6).
ENGINE_FLAGS = {"past_misuse": "RF-1.1", "exports_to_abusers": "RF-2.2", "end_user_disclosed": "RF-4.1",
                "accepts_safeguards": "RF-6.1"}
_DISPLAY = {v: k for k, v in CHOICES.items()}
_UPLOADS = (sa.select(checklist_uploads.c.id, checklist_uploads.c.uploaded_at, checklist_uploads.c.uploaded_by,
                      checklist_uploads.c.record)
            .where(checklist_uploads.c.transaction_id == sa.bindparam("txn"))
            .order_by(checklist_uploads.c.uploaded_at, checklist_uploads.c.id))


def confirm_severities(policy) -> tuple[str, ...]:
    """The severities whose flags a withdrawn answer may not lift alone (policy `checklists` section)."""
    value = policy.section("checklists").get("confirm_withdrawn_severities") if policy is not None else None
    return tuple(value) if isinstance(value, list | tuple) else DEFAULT_SEVERITIES


def flags_by_question(templates: Mapping) -> dict[str, set[str]]:
    """Question id -> the red flags its risky answer raises (the engine's, and every template's)."""
    flags = {qid: {flag} for qid, flag in ENGINE_FLAGS.items()}
    for template in templates.values():
        for q in template.questions:
            if q.red_flag:
                flags.setdefault(q.id, set()).add(q.red_flag)
    return flags


def withdrawn_answers(previous: dict, new: dict, upload_answers: Mapping[str, str],
                      flags: Mapping[str, Collection[str]], risky: Mapping[str, Collection[str]],
                      severities: Collection[str]) -> list[dict]:
    """The upload's answers that replaced a risky answer of ``previous`` and so lifted one of its flags of
    a listed severity in ``new``: ``[{"question", "from", "to", "flags": [{"id", "severity"}]}]``."""
    before = (previous.get("transaction") or {}).get("answers") or {}
    after = (new.get("transaction") or {}).get("answers") or {}
    raised: dict[str, str] = {}
    for flag in previous.get("red_flags") or ():
        if flag["id"] not in raised or severity_rank(flag["severity"]) > severity_rank(raised[flag["id"]]):
            raised[flag["id"]] = flag["severity"]
    still = {f["id"] for f in new.get("red_flags") or ()}
    out = []
    for qid in upload_answers:
        was, now = before.get(qid), after.get(qid, "unknown")
        if was not in risky.get(qid, ()) or now in risky.get(qid, ()):
            continue
        lifted = [{"id": f, "severity": raised[f]} for f in sorted(flags.get(qid, ()))
                  if f in raised and f not in still and raised[f] in severities]
        if lifted:
            out.append({"question": qid, "from": was, "to": now, "flags": lifted})
    return out


def in_words(upload_id: str, entry: dict) -> str:
    """'checklist upload chk_… changed past_misuse from Yes to No, which had raised RF-1.1 (critical)'."""
    flags = ", ".join(f"{f['id']} ({f['severity']})" for f in entry["flags"])
    return (f"checklist upload {upload_id} changed {entry['question']} from {_DISPLAY.get(entry['from'], entry['from'])}"
            f" to {_DISPLAY.get(entry['to'], entry['to'])}, which had raised {flags}")


def pending_holds(conn, transaction_id: str, screening: dict | None,
                  decisions: Callable | None = None) -> list[dict]:
    """A hold for each withdrawn answer no reviewer has decided on since (a decision other than a request
    for information, made after the upload), unless the deal answers the question riskily again."""
    found = [(row, entry) for row in conn.execute(_UPLOADS, {"txn": transaction_id})
             for entry in (row.record or {}).get("withdrawn") or ()]
    if not found:
        return []
    decided = [d for d in (decisions or decisions_for_transaction)(conn, transaction_id)
               if d["outcome"] != "request_information"]
    last = datetime.fromisoformat(decided[0]["decided_at"]) if decided else None
    answers = ((screening or {}).get("transaction") or {}).get("answers") or {}
    case = None
    holds = []
    for row, entry in found:
        if (last is not None and last > row.uploaded_at) or answers.get(entry["question"]) == entry["from"]:
            continue
        case = case or open_case_for_transaction(conn, transaction_id) or {}
        where = f" (case {case['id']})" if case.get("id") else ""
        holds.append({"kind": "hold", "reason": (
            f"{in_words(row.id, entry)}"
            + (f" (by {row.uploaded_by})" if row.uploaded_by else "")
            + f": a human rights reviewer must confirm the changed answer{where}")})
    return holds
