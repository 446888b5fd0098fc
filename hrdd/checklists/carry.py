"""What a screening's checklist carries over from the deal's earlier uploads about the same end-user."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import sqlalchemy as sa

from hrdd.checklists import meta
from hrdd.checklists.evidence import checklist_uploads, upload_end_user_key
from hrdd.checklists.facts import changed_facts, in_words
from hrdd.checklists.parties import PartyRow, party_rows
from hrdd.checklists.templates import CHOICES, Question, Template
from hrdd.store import iso
from hrdd.tables import screenings

CARRIED_FROM = "Carried from checklist upload"
NOT_CARRIED_FROM = "Not carried from checklist upload"
RECORDED_WITH = "Answer recorded with screening"
# Lines the generator writes into evidence notes; a carried note sheds them so they do not pile up.
_GENERATED = (CARRIED_FROM, NOT_CARRIED_FROM, RECORDED_WITH)
_DISPLAY = {v: k for k, v in CHOICES.items()}

_rendered = screenings.alias("rendered")
_UPLOADS = (
    sa.select(checklist_uploads.c.id, checklist_uploads.c.record, checklist_uploads.c.uploaded_at,
              checklist_uploads.c.uploaded_by, screenings.c.result)
    .join(screenings, screenings.c.id == checklist_uploads.c.new_screening_id)
    .where(checklist_uploads.c.transaction_id == sa.bindparam("txn"),
           checklist_uploads.c.end_user_key == sa.bindparam("end_user"),
           # Uploads made after this screening stay out: an older screening's checklist does not change.
           screenings.c.created_at <= sa.select(_rendered.c.created_at)
           .where(_rendered.c.id == sa.bindparam("sid")).scalar_subquery())
    .order_by(checklist_uploads.c.uploaded_at.desc(), checklist_uploads.c.id.desc()))


@dataclass(frozen=True)
class CarriedRow:
    """A question's row as recorded by the newest upload that had the question (``changed_flag``: not carried)."""

    upload_id: str
    uploaded_on: str
    uploaded_by: str | None
    answer: object = None
    evidence_notes: str | None = None
    owner: str | None = None
    due_date: object = None
    status: str | None = None
    changed_facts: tuple[str, ...] = ()
    changed_flag: str | None = None

    def provenance(self) -> str:
        """Which upload the row comes from, for the evidence notes and the summary."""
        by = f" by {self.uploaded_by}" if self.uploaded_by else ""
        return f"checklist upload {self.upload_id} of {self.uploaded_on}{by}"


def deal_uploads(store, screening: dict) -> list:
    """The deal's uploads for this screening's end-user, not newer than this screening, newest first."""
    txn = screening.get("transaction")
    if not txn or not screening.get("transaction_id"):
        return []
    with store.reading() as conn:
        return conn.execute(_UPLOADS, {"txn": screening["transaction_id"], "sid": screening.get("id"),
                                       "end_user": upload_end_user_key(txn)}).all()


def carried_rows(store, screening: dict, template: Template, uploads: list | None = None) -> dict[str, CarriedRow]:
    """Each template question's row from the deal's newest upload for this end-user that had the question.

    Only uploads whose screening is not newer than ``screening`` count. A question tied to a red flag the
    engine raises from the deal's facts is not carried when that flag reads differently now than in the
    upload's screening: the work was about other facts (the row says so, ``changed_flag``).
    """
    txn = screening.get("transaction")
    if not txn or not screening.get("transaction_id"):
        return {}
    uploads = deal_uploads(store, screening) if uploads is None else uploads
    rows: dict[str, CarriedRow] = {}
    decided: set[str] = set()
    for upload in uploads:
        responses = (upload.record or {}).get("responses") or {}
        changed = None
        for q in template.questions:
            response = responses.get(q.id)
            if q.id in decided or response is None:
                continue
            decided.add(q.id)  # the newest upload with the question decides, even with the row left blank
            if not _has_work(response):
                continue
            if changed is None:
                changed = changed_facts((upload.result or {}).get("transaction"), txn)
            rows[q.id] = _row(q, template, response, upload, changed, screening)
    return rows


def _has_work(response: dict) -> bool:
    """Whether a row holds more than the generator put there (the default status, its own notes)."""
    return bool(response.get("answer") or response.get("owner") or response.get("due_date")
                or _own_notes(response.get("evidence_notes")) or response.get("status") not in (None, "Open"))


def _row(q: Question, template: Template, response: dict, upload, changed: tuple[str, ...],
         screening: dict) -> CarriedRow:
    common = {"upload_id": upload.id, "uploaded_on": iso(upload.uploaded_at)[:10], "uploaded_by": upload.uploaded_by}
    flag = template.red_flags.get(q.red_flag) if q.red_flag else None
    if flag is not None and flag.raised_by == "engine" and \
            _reading(upload.result, flag.id) != _reading(screening, flag.id):
        return CarriedRow(**common, changed_flag=flag.id)
    status = response.get("status")
    return CarriedRow(
        **common, answer=_fitting(q, response.get("answer")), evidence_notes=_own_notes(response.get("evidence_notes")),
        owner=response.get("owner"), due_date=_day(response.get("due_date")),
        status=status if status in meta.STATUSES else None, changed_facts=changed)


def _reading(screening: dict | None, flag_id: str) -> list[str]:
    """How a screening raised a flag: the evidence of each flag with that id (none when not raised)."""
    return sorted(str(f.get("evidence")) for f in (screening or {}).get("red_flags") or () if f.get("id") == flag_id)


def _fitting(q: Question, answer):
    """The recorded answer if it still fits the question's type (a template may have changed it), else None."""
    if answer is None:
        return None
    if q.answer_type == "choice":
        return answer if answer in _DISPLAY else None
    if q.answer_type == "date":
        return _day(answer)
    return str(answer)


def _day(text) -> date | None:
    try:
        value = datetime.fromisoformat(str(text or ""))
    except ValueError:
        return None
    return value.date() if value.time() == datetime.min.time() and value.tzinfo is None else None


def _own_notes(text: str | None) -> str:
    """The user's notes without the lines the generator put above them."""
    lines = str(text or "").split("\n")
    while lines and lines[0].startswith(_GENERATED):
        lines.pop(0)
    return "\n".join(lines).strip()


def notes_cell(row: CarriedRow, shown_answer: str | None, *, set_aside: bool = False) -> tuple[str, bool]:
    """The evidence notes of a carried row, with where they come from; and whether it needs checking again.

    ``set_aside``: the screening does not use the row's answer (given on facts that changed since), so the
    answer is not pre-filled and the note says what it was.
    """
    if row.changed_flag:
        return (f"{NOT_CARRIED_FROM} {row.upload_id} of {row.uploaded_on}: {row.changed_flag} reads differently "
                "in this screening (the facts behind it changed); answer again."), True
    line = f"Carried from {row.provenance()}."
    recheck = bool(row.changed_facts)
    if row.changed_facts:
        line += f" The deal's {in_words(row.changed_facts)} changed since: check that it still holds."
    if set_aside:
        line += (f" That upload answered {_DISPLAY.get(row.answer, row.answer)} on the facts then; this screening "
                 "does not use that answer: answer again.")
        recheck = True
    elif row.answer is not None and shown_answer is not None and row.answer != shown_answer:
        line += (f" That upload answered {_DISPLAY.get(row.answer, row.answer)}; this screening's answer is "
                 f"{_DISPLAY.get(shown_answer, shown_answer)}.")
        recheck = True
    return (line + "\n" + row.evidence_notes) if row.evidence_notes else line, recheck


@dataclass(frozen=True)
class CarriedPartyNotes:
    """The Parties sheet's carried review notes by row, and how many parties each upload gave notes for."""

    cells: dict[int, str]
    parties_by_upload: dict[str, int]


def summary_text(rows: dict[str, CarriedRow], party_notes: CarriedPartyNotes | None = None) -> str | None:
    """One Summary line per upload that questions or party notes were carried from, and the questions not carried."""
    parties = party_notes.parties_by_upload if party_notes else {}
    if not rows and not parties:
        return None
    carried: dict[str, list[str]] = {}
    for qid, row in rows.items():
        if not row.changed_flag:
            carried.setdefault(row.provenance(), []).append(qid)
    lines = []
    for source in list(carried) + [s for s in parties if s not in carried]:
        counts = [_count(len(carried.get(source) or ()), "question", "questions"),
                  _count(parties.get(source, 0), "party's review notes", "parties' review notes")]
        lines.append(f"{source}: " + ", ".join(c for c in counts if c))
    changed = {f for row in rows.values() if not row.changed_flag for f in row.changed_facts}
    if changed:
        lines.append(f"The deal's {in_words(changed)} changed since: carried rows are Open to be checked.")
    dropped = [f"{qid} ({row.changed_flag})" for qid, row in rows.items() if row.changed_flag]
    if dropped:
        lines.append("Not carried, the red flag behind them reads differently now: " + ", ".join(dropped))
    return "\n".join(lines)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}" if n else ""


def carried_party_notes(store, screening: dict, uploads: list | None = None) -> CarriedPartyNotes:
    """The Parties sheet's review notes to pre-fill, by row index of ``party_rows(screening)``.

    For each party still in the deal (role, name and country; the end-user is the end-user), the newest
    upload (as for the questions) whose Parties sheet had the party decides, even with its rows left blank.
    Notes go back to the row with the same restricted-party result; notes written on a result this screening
    no longer shows go to the party's first row, saying which result they were written for. A party no
    longer in the deal gets nothing.
    """
    rows = party_rows(screening)
    if not rows:
        return CarriedPartyNotes({}, {})
    uploads = deal_uploads(store, screening) if uploads is None else uploads
    by_party: dict[tuple, list[int]] = {}
    for index, row in enumerate(rows):
        by_party.setdefault(row.party_key(), []).append(index)
    cells: dict[int, list[str]] = {}
    sources: dict[str, int] = {}
    for key, indexes in by_party.items():
        upload, recorded = _newest_party_record(uploads, key)
        if upload is None:
            continue
        source = (f"checklist upload {upload.id} of {iso(upload.uploaded_at)[:10]}"
                  + (f" by {upload.uploaded_by}" if upload.uploaded_by else ""))
        provenance = f"Carried from {source}"
        results = {rows[i].result_key(): i for i in indexes}
        noted = False
        for old in recorded:
            notes = _party_notes_text(old.get("review_notes"))
            if not notes:
                continue
            noted = True
            was = (str(old.get("restricted_party_result") or ""), str(old.get("matched_entry") or ""),
                   str(old.get("list") or ""))
            index = results.get(was)
            if index is not None:
                cells.setdefault(index, []).append(f"{provenance}.\n{notes}")
            else:
                said = was[0] + (f" ({was[1]}; {was[2]})" if was[1] or was[2] else "")
                cells.setdefault(indexes[0], []).append(
                    f"{provenance}, written when the restricted-party result was {said}, which this screening no "
                    f"longer shows ({rows[indexes[0]].describe()} now): check that it still holds.\n{notes}")
        if noted:
            sources[source] = sources.get(source, 0) + 1
    return CarriedPartyNotes({index: "\n".join(parts) for index, parts in cells.items()}, sources)


def _party_notes_text(text: str | None) -> str:
    """The reviewers' own notes of a Parties row: without the lines the generator wrote, wherever they are
    (a row may hold notes carried from two restricted-party results, each under its own line)."""
    return "\n".join(line for line in str(text or "").split("\n") if not line.startswith(_GENERATED)).strip()


def _newest_party_record(uploads: list, key: tuple) -> tuple[object, list[dict]]:
    """The newest upload that had the party ``key`` on its Parties sheet, and its rows for that party."""
    for upload in uploads:
        recorded = [p for p in (upload.record or {}).get("parties") or ()
                    if _recorded_key(p) == key]
        if recorded:
            return upload, recorded
    return None, []


def _recorded_key(party: dict) -> tuple:
    return PartyRow(str(party.get("role") or ""), str(party.get("name") or ""), party.get("country"),
                    None).party_key()
