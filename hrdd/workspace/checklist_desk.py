"""What the workspace's checklist page shows: deals found by screening, transaction or CRM id, and uploads in words."""

from __future__ import annotations

import re

import sqlalchemy as sa

from hrdd.checklists.templates import CHOICES
from hrdd.tables import transactions
from hrdd.workspace import checklist_record

MAX_FOUND = 20  # deals listed for one reference id (the same id in several CRMs or object types)
_CELL = re.compile(r"^((?:'[^']+'|[A-Za-z0-9_ ]+)![A-Z]{1,3}[0-9]+)(?: \(([^)]*)\))?: (.*)$", re.S)
_SECTIONS = {"answers": "answer", "cells": "cell", "red_flags": "red flag", "parties": "party notes",
             "signoff": "sign-off"}
_SHOWN = {v: k for k, v in CHOICES.items()}  # yes -> Yes, as the workbook shows it


def find_deals(store, text: str) -> list[str]:
    """Transaction ids for what was typed: a screening id, a transaction id, or a deal's reference id in any
    system (exactly as the CRM or ERP shows it); the newest deals first."""
    text = (text or "").strip()
    if not text or len(text) > 128:
        return []
    found: list[str] = []
    screening = store.get_screening(text) if len(text) <= 40 else None
    if screening is not None:
        found.append(screening["transaction_id"])
    if len(text) <= 40 and store.get_transaction(text) is not None:
        found.append(text)
    with store.engine.connect() as conn:
        found += conn.execute(sa.select(transactions.c.id).where(transactions.c.object_id == text)
                              .order_by(transactions.c.updated_at.desc()).limit(MAX_FOUND)).scalars()
    return list(dict.fromkeys(found))[:MAX_FOUND]


def deal(services, transaction_id: str) -> dict | None:
    """A deal as the checklist page shows it: its reference, governing screening, gate now and why, whether the
    checklist is still outstanding, and its checklist uploads (newest first)."""
    latest = services.store.latest_screening(transaction_id)
    if latest is None:
        return None
    standing = services.standing(transaction_id, latest)
    uploads, total = checklist_record.uploads_for_case(services.store, latest)
    transaction = latest.get("transaction") or {}
    return {"transaction_id": transaction_id, "reference": transaction.get("reference") or {},
            "end_user": transaction.get("end_user") or {}, "screening": latest, **standing,
            "checklist_outstanding": "checklist_completed" in standing["outstanding_conditions"],
            "uploads": uploads, "uploads_total": total}


def refusal_rows(errors: dict) -> list[dict]:
    """Every problem of a refused upload, one row each: the cell (``Questions!F12``) when known, what it concerns
    (a question id, red flag, party notes, sign-off) and the problem, in the order the upload found them."""
    rows = []
    for section, value in errors.items():
        if section == "superseded_by":
            continue  # the page links to the screening instead
        if isinstance(value, dict):
            for key, messages in value.items():
                for message in messages if isinstance(messages, list) else [messages]:
                    rows.append(_row(_SECTIONS.get(section, section), str(key), str(message)))
        else:
            for message in value if isinstance(value, list) else [value]:
                rows.append({"cell": "", "item": section.replace("_", " "), "problem": str(message)})
    return rows


def _row(section: str, key: str, message: str) -> dict:
    match = _CELL.match(message)
    if match:  # "Questions!F12: 'Maybe' is not one of …" under an answer or red flag id
        return {"cell": match.group(1), "item": f"{section} {key}", "problem": match.group(3)}
    match = _CELL.match(f"{key}: {message}")
    if match:  # the key is the cell: "Questions!L9 (past_misuse)" or "Summary!B30"
        item = f"{section} {match.group(2)}" if match.group(2) else section
        return {"cell": match.group(1), "item": item, "problem": match.group(3)}
    return {"cell": "", "item": f"{section} {key}", "problem": message}


def answers_in_words(answers: dict, template, before: dict) -> list[dict]:
    """The answers an upload recorded, each with its question's text (when the template still has it) and the
    answer the screening it was made for had (``before``; None when it had none)."""
    rows = []
    for qid, answer in answers.items():
        question = template.question(qid) if template is not None else None
        rows.append({"id": qid, "question": question.text if question else "", "answer": _SHOWN.get(answer, answer),
                     "before": _SHOWN.get(before.get(qid), before.get(qid)), "changed": before.get(qid) != answer})
    return rows


def withdrawn_in_words(entries: list[dict]) -> list[dict]:
    """Answers withdrawn by an upload that had raised serious flags: question, from, to, the flags it had raised."""
    return [{"question": e.get("question"), "from": _SHOWN.get(e.get("from"), e.get("from")),
             "to": _SHOWN.get(e.get("to"), e.get("to")),
             "flags": ", ".join(f"{f['id']} ({f['severity']})" for f in e.get("flags") or ())} for e in entries]
