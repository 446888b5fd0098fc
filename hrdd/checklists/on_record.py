"""A deal's uploaded checklist answers, carried to its later screenings that do not answer those questions."""

from __future__ import annotations

import sqlalchemy as sa

from hrdd.checklists.evidence import checklist_uploads, upload_end_user_key
from hrdd.store import iso
from hrdd.tables import transactions

# Built once: it runs before every screening that has a store (most deals have no upload: one index probe).
_UPLOADS = (
    sa.select(checklist_uploads.c.id, checklist_uploads.c.answers, checklist_uploads.c.uploaded_at,
              checklist_uploads.c.uploaded_by)
    .join(transactions, transactions.c.id == checklist_uploads.c.transaction_id)
    .where(transactions.c.system == sa.bindparam("system"),
           transactions.c.object_type == sa.bindparam("object_type"),
           transactions.c.object_id == sa.bindparam("object_id"),
           checklist_uploads.c.end_user_key == sa.bindparam("end_user"))
    .order_by(checklist_uploads.c.uploaded_at.desc(), checklist_uploads.c.id.desc()))

KNOWN = ("yes", "no", "n/a")


def answers_on_record(store, transaction: dict, *, request_wins: bool = False) -> dict | None:
    """The known answers the deal's checklist uploads gave about the request's end-user, newest per question.

    ``{question id: {"answer", "source", "recorded_at", "recorded_by"}}``, or None. Every upload counts,
    not only the latest: a second upload with another template (or with a question left Unknown) must not
    drop the first one's Yes. An answer about one end-user (past misuse, disclosure) says nothing about
    another, so only uploads made for the request's end-user count (a deal that returns to an end-user
    finds its answers again). ``request_wins``: the request is itself an upload, whose known answers
    replace the recorded ones without a conflict.
    """
    ref = transaction.get("reference") or {}
    with store.reading() as conn:
        uploads = conn.execute(_UPLOADS, {"system": ref.get("system"), "object_type": ref.get("object_type"),
                                          "object_id": ref.get("object_id"),
                                          "end_user": upload_end_user_key(transaction)}).all()
    recorded: dict[str, dict] = {}
    for upload in uploads:
        for qid, answer in (upload.answers or {}).items():
            if answer in KNOWN and qid not in recorded:
                recorded[qid] = {"answer": answer, "source": f"checklist upload {upload.id}",
                                 "recorded_at": iso(upload.uploaded_at), "recorded_by": upload.uploaded_by}
                if request_wins:
                    recorded[qid]["request_wins"] = True
    return recorded or None


def conflict_holds(screening: dict) -> list[dict]:
    """Hold factors for answers a request gave that differ from the deal's uploaded checklist."""
    holds = []
    for qid, entry in (screening.get("answers_on_record") or {}).items():
        if entry.get("used") is False:
            holds.append({"kind": "hold", "reason": (
                f"the request answers {qid} '{entry.get('request_answer')}' but the deal's {entry['source']}"
                + (f" ({entry['recorded_at']})" if entry.get("recorded_at") else "")
                + f" answered '{entry['answer']}': upload the deal's checklist with the current answer")})
    return holds
