"""A deal's uploaded checklist answers, carried to its later screenings that do not answer those questions."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

import sqlalchemy as sa

from hrdd.checklists.evidence import checklist_uploads, upload_end_user_key
from hrdd.checklists.facts import changed_between, facts_of, in_words
from hrdd.store import iso
from hrdd.tables import screenings, transactions

# Built once: it runs before every screening that has a store (most deals have no upload: one index probe).
# The request of the screening each upload produced comes along (a primary-key join, only for the rows
# found): the facts the answers were given on. Its ``result`` is not read: the request has those facts.
_UPLOADS = (
    sa.select(checklist_uploads.c.id, checklist_uploads.c.answers, checklist_uploads.c.uploaded_at,
              checklist_uploads.c.uploaded_by, screenings.c.request)
    .join(transactions, transactions.c.id == checklist_uploads.c.transaction_id)
    .join(screenings, screenings.c.id == checklist_uploads.c.new_screening_id)
    .where(transactions.c.system == sa.bindparam("system"),
           transactions.c.object_type == sa.bindparam("object_type"),
           transactions.c.object_id == sa.bindparam("object_id"),
           checklist_uploads.c.end_user_key == sa.bindparam("end_user"))
    .order_by(checklist_uploads.c.uploaded_at.desc(), checklist_uploads.c.id.desc()))

KNOWN = ("yes", "no", "n/a")

# The answers the engine's own checks turn into red flags, whatever the loaded templates say about them:
# past_misuse yes (RF-1.1, plugins/step1_capabilities.py), exports_to_abusers yes (RF-2.2, step2_end_user.py),
# end_user_disclosed no (RF-4.1, step4_stakeholders.py), accepts_safeguards no (RF-6.1, step6_safeguards.py).
ENGINE_RISKY_ANSWERS: dict[str, frozenset[str]] = {
    "past_misuse": frozenset({"yes"}), "exports_to_abusers": frozenset({"yes"}),
    "end_user_disclosed": frozenset({"no"}), "accepts_safeguards": frozenset({"no"})}


def risky_answers(templates: Mapping | None = None) -> dict[str, frozenset[str]]:
    """Question id -> the answers that raise a red flag: the engine's, and every template's ``risky_answer``.

    A question that two templates mark differently counts both answers as risky (the cautious reading).
    """
    risky = {qid: set(answers) for qid, answers in ENGINE_RISKY_ANSWERS.items()}
    for template in (templates or {}).values():
        for q in template.questions:
            if q.risky_answer:
                risky.setdefault(q.id, set()).add(q.risky_answer)
    return {qid: frozenset(answers) for qid, answers in risky.items()}


def answers_on_record(store, transaction: dict, *, request_wins: bool = False,
                      risky: Callable[[], Mapping[str, Collection[str]]] = lambda: ENGINE_RISKY_ANSWERS,
                      ) -> dict | None:
    """The known answers the deal's checklist uploads gave about the request's end-user, newest per question.

    ``{question id: {"answer", "source", "recorded_at", "recorded_by"}}``, or None. Every upload counts,
    not only the latest: a second upload with another template (or with a question left Unknown) must not
    drop the first one's Yes. An answer about one end-user (past misuse, disclosure) says nothing about
    another, so only uploads made for the request's end-user count (a deal that returns to an end-user
    finds its answers again). ``request_wins``: the request is itself an upload, whose known answers
    replace the recorded ones without a conflict.

    An answer was given on the deal's material facts as they were in the screening its upload produced.
    Where they differ now (hrdd.checklists.facts, as the checklist download reopens such rows), the entry
    says which (``facts_changed``), and an answer that raises no red flag (not among ``risky()``'s answers
    for the question, asked only then) is not to be used (``not_used_because``): "no past misuse", "the
    end-user is disclosed" or "N/A" were checked for other parties, items or countries, so the question
    counts as unanswered until a checklist of a screening with the current facts is uploaded (the download
    reopens those rows; its answers are then about those facts). A risky answer is still used: it
    keeps raising its red flag (a Yes to past misuse does not become less true because a consignee was
    added), and dropping it would clear a flag nobody cleared. The newest upload with a known answer to a
    question decides, as for the download: an older upload made on today's facts does not stand in for it.
    """
    ref = transaction.get("reference") or {}
    with store.reading() as conn:
        uploads = conn.execute(_UPLOADS, {"system": ref.get("system"), "object_type": ref.get("object_type"),
                                          "object_id": ref.get("object_id"),
                                          "end_user": upload_end_user_key(transaction)}).all()
    recorded: dict[str, dict] = {}
    facts_now = risky_now = None  # read once, and only once an upload gives an answer (resp. on other facts)
    for upload in uploads:
        changed: tuple[str, ...] | None = None
        for qid, answer in (upload.answers or {}).items():
            if answer not in KNOWN or qid in recorded:
                continue
            entry = recorded[qid] = {"answer": answer, "source": f"checklist upload {upload.id}",
                                     "recorded_at": iso(upload.uploaded_at), "recorded_by": upload.uploaded_by}
            if changed is None:
                facts_now = facts_now or facts_of(transaction)
                changed = changed_between(facts_of(upload.request), facts_now)
            if changed:
                entry["facts_changed"] = list(changed)
                risky_now = risky_now or risky()
                if answer not in risky_now.get(qid, ()):
                    entry["not_used_because"] = (
                        f"the deal's {in_words(changed)} changed since checklist upload {upload.id} of "
                        f"{entry['recorded_at'][:10]}: answer it again in this screening's checklist")
            if request_wins:
                entry["request_wins"] = True
    return recorded or None


def conflict_holds(screening: dict) -> list[dict]:
    """Hold factors for answers a request gave that differ from the deal's uploaded checklist."""
    holds = []
    for qid, entry in (screening.get("answers_on_record") or {}).items():
        # An answer not used because the deal's facts changed since (not_used_because) is no conflict: the
        # request's own answer is the only one about the current facts.
        if entry.get("used") is False and not entry.get("not_used_because"):
            holds.append({"kind": "hold", "reason": (
                f"the request answers {qid} '{entry.get('request_answer')}' but the deal's {entry['source']}"
                + (f" ({entry['recorded_at']})" if entry.get("recorded_at") else "")
                + f" answered '{entry['answer']}': upload the deal's checklist with the current answer")})
    return holds
