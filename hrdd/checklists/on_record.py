"""A deal's uploaded checklist answers, carried to its later screenings that do not answer those questions."""

from __future__ import annotations

import sqlalchemy as sa

from hrdd.checklists.evidence import checklist_uploads
from hrdd.store import iso
from hrdd.tables import screenings, transactions
from hrdd.workspace.util import end_user_key

# Built once: it runs before every screening that has a store (most deals have no upload, one index probe).
_LATEST_UPLOAD = (
    sa.select(checklist_uploads.c.id, checklist_uploads.c.answers, checklist_uploads.c.uploaded_at,
              checklist_uploads.c.uploaded_by, checklist_uploads.c.new_screening_id)
    .join(transactions, transactions.c.id == checklist_uploads.c.transaction_id)
    .where(transactions.c.system == sa.bindparam("system"),
           transactions.c.object_type == sa.bindparam("object_type"),
           transactions.c.object_id == sa.bindparam("object_id"))
    .order_by(checklist_uploads.c.uploaded_at.desc(), checklist_uploads.c.id.desc()).limit(1))
_UPLOAD_END_USER = sa.select(screenings.c.request).where(screenings.c.id == sa.bindparam("sid"))

KNOWN = ("yes", "no", "n/a")


def answers_on_record(store, transaction: dict) -> dict | None:
    """The known answers of the deal's latest checklist upload, while its end-user is the one uploaded for.

    ``{question id: {"answer", "source", "recorded_at", "recorded_by"}}``, or None. An answer about one
    end-user (past misuse, disclosure) says nothing about another, so a changed end-user carries nothing.
    """
    ref = transaction.get("reference") or {}
    with store.reading() as conn:
        upload = conn.execute(_LATEST_UPLOAD, {"system": ref.get("system"), "object_type": ref.get("object_type"),
                                               "object_id": ref.get("object_id")}).first()
        if upload is None:
            return None
        request = conn.execute(_UPLOAD_END_USER, {"sid": upload.new_screening_id}).scalar() or {}
    if _end_user(request) != _end_user(transaction):
        return None
    source = f"checklist upload {upload.id}"
    return {qid: {"answer": answer, "source": source, "recorded_at": iso(upload.uploaded_at),
                  "recorded_by": upload.uploaded_by}
            for qid, answer in (upload.answers or {}).items() if answer in KNOWN}


def _end_user(transaction: dict) -> str:
    end_user = transaction.get("end_user") or {}
    return end_user_key(str(end_user.get("name") or ""), end_user.get("country"))


def conflict_holds(screening: dict) -> list[dict]:
    """Hold factors for answers a request gave that differ from the deal's uploaded checklist."""
    holds = []
    for qid, entry in (screening.get("answers_on_record") or {}).items():
        if entry.get("used") is False:
            holds.append({"kind": "hold", "reason": (
                f"the request answers {qid} '{entry.get('request_answer')}' but the deal's {entry['source']} "
                f"({entry.get('recorded_at')}) answered '{entry['answer']}': upload a checklist with the "
                "current answer, or a reviewer decides")})
    return holds
