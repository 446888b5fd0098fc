"""What the deal's checklist uploads say, for the case page: who gave each answer, when, and their notes."""

from __future__ import annotations

from hrdd.checklists.carry import deal_uploads
from hrdd.store import iso

SHOWN_UPLOADS = 10  # the newest; the page says how many more there are (each keeps its workbook)


def _filled(response: dict) -> bool:
    return any(response.get(k) for k in ("answer", "evidence_notes", "owner", "due_date"))


def uploads_for_case(store, screening: dict | None) -> tuple[list[dict], int]:
    """The deal's newest checklist uploads about the screening's end-user (newest first), and how many in all.

    Each: ``id``, ``uploaded_at``, ``uploaded_by``, ``template``, ``questions`` (rows with an answer, notes,
    owner or due date), ``parties`` (rows with review notes), ``red_flags`` (resolved or annotated) and ``signoff``.
    """
    if not screening:
        return [], 0
    uploads = deal_uploads(store, screening)
    out = []
    for upload in uploads[:SHOWN_UPLOADS]:
        record = upload.record or {}
        meta = record.get("meta") or {}
        out.append({
            "id": upload.id, "uploaded_at": iso(upload.uploaded_at), "uploaded_by": upload.uploaded_by,
            "template": " ".join(str(meta.get(k)) for k in ("template_id", "template_version") if meta.get(k)),
            "questions": [{"id": qid, **response} for qid, response in (record.get("responses") or {}).items()
                          if _filled(response or {})],
            "parties": [p for p in record.get("parties") or () if p.get("review_notes")],
            # The generator fills each flag's mitigation in and marks it Open: only what someone changed shows.
            "red_flags": [f for f in record.get("red_flags") or ()
                          if f.get("resolution") not in (None, "Open") or f.get("notes")],
            "signoff": {role: s for role, s in (record.get("signoff") or {}).items()
                        if s and any(s.values())},
        })
    return out, len(uploads)


def answer_sources(answers: dict, uploads: list[dict]) -> dict[str, dict]:
    """Question id -> the upload behind the screening's answer: the newest upload that answered the question,
    when it gave the same answer (a newer upload saying otherwise leaves the answer unattributed)."""
    sources: dict[str, dict] = {}
    decided: set[str] = set()
    for upload in uploads:
        for row in upload["questions"]:
            qid = row["id"]
            if qid in decided or not row.get("answer"):
                continue
            decided.add(qid)
            if answers.get(qid) == row["answer"]:
                sources[qid] = upload
    return sources
