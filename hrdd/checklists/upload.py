"""Read an uploaded checklist workbook safely and validate it against its screening and template."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter

from hrdd.checklists import meta
from hrdd.checklists.instructions import INSTRUCTIONS_SHEET
from hrdd.checklists.package import UploadLimits, check_package
from hrdd.checklists.parties import party_rows
from hrdd.checklists.templates import CHOICES, Template
from hrdd.errors import ApiError, validation_error

_MAX_TEXT = 32767
# Only this many rows and columns of a sheet are read (a checklist has a few dozen questions). A tiny
# upload with one cell at XFD1048576 otherwise made the reader walk a billion empty cells (456 s of CPU).
MAX_ROWS = 2000
MAX_COLUMNS = 40
_CHOICE_LOOKUP = {k.casefold(): v for k, v in CHOICES.items()} | {v: v for v in CHOICES.values()}


class _Problems:
    """Every mistake found in an upload, by section (answers, cells, red_flags, parties, signoff), each naming its
    cell: refused together, so one reply lists all that the user must correct before uploading again."""

    def __init__(self):
        self.errors: dict[str, dict[str, list[str]]] = {}
        self.named: list[str] = []

    def add(self, section: str, key: str, message: str, cell: str | None = None) -> None:
        """Note a mistake under ``errors.<section>.<key>``; ``cell`` (when the key is no cell) starts the message."""
        self.errors.setdefault(section, {})[key] = [f"{cell}: {message}" if cell else message]
        self.named.append(f"{key} ({cell})" if cell else key)

    def raise_any(self) -> None:
        """Refuse the upload (422) naming every mistake, if there is one."""
        if self.errors:
            shown = ", ".join(self.named[:_NAMED_IN_MESSAGE])
            if len(self.named) > _NAMED_IN_MESSAGE:
                shown += f" and {len(self.named) - _NAMED_IN_MESSAGE} more (see errors)"
            raise validation_error(self.errors, f"Invalid checklist: {shown}. Correct these cells and upload again.")


_NAMED_IN_MESSAGE = 12


@dataclass
class CheckedUpload:
    """A validated upload: the canonical answers it gives and everything else worth keeping as evidence."""

    screening_id: str
    template_id: str
    template_version: str
    answers: dict[str, str]
    record: dict = field(default_factory=dict)


def _text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return str(value).strip()


def _sheet(wb, name: str):
    if name not in wb.sheetnames:
        ours = {meta.SUMMARY_SHEET, meta.QUESTIONS_SHEET, meta.RED_FLAGS_SHEET, meta.PARTIES_SHEET,
                meta.SOURCES_SHEET, meta.META_SHEET, INSTRUCTIONS_SHEET}
        others = [n[:40] for n in wb.sheetnames if n not in ours][:10]
        found = f" Its other sheets are {others!r}: if one of them is it, rename it back to {name!r}." if others else ""
        raise ApiError(422, "invalid_checklist",
                       f"The workbook has no {name!r} sheet.{found} Upload the checklist as downloaded from hrdd.")
    return wb[name]


def _values(ws, cells: tuple, columns=None) -> tuple:
    """A row's cell values; a formula in any of ``columns`` (indexes; all when None) is refused."""
    for index in range(len(cells)) if columns is None else columns:
        cell = cells[index] if index < len(cells) else None
        if cell is not None and cell.data_type == "f":
            # Its cached value is whatever the file says, not what Excel computes and shows.
            title = f"'{ws.title}'" if not ws.title.isalnum() else ws.title
            raise ApiError(422, "invalid_checklist",
                           f"Cell {title}!{cell.coordinate} holds a formula; checklist cells must hold typed "
                           "values (choose from the dropdown or type the answer), never formulas.",
                           {"cells": {f"{title}!{cell.coordinate}": ["formulas are not accepted"]}})
    return tuple(cell.value for cell in cells)


def _read_meta(wb) -> dict[str, str]:
    values = {}
    ws = _sheet(wb, meta.META_SHEET)
    for cells in ws.iter_rows(min_row=1, max_row=len(meta.META_KEYS) + 5, max_col=2):
        row = _values(ws, cells)
        if row and row[0]:
            values[_text(row[0])] = _text(row[1] if len(row) > 1 else None)
    if values.get("format") != meta.FORMAT:
        raise ApiError(422, "invalid_checklist", "The workbook is not an hrdd checklist (unknown format).")
    return values


def _table(ws, headers: tuple[str, ...], read: tuple[str, ...], numbered: bool = False) \
        -> tuple[dict[str, int], list]:
    """The sheet's columns by header and its non-blank rows; formulas in the ``read`` columns are refused.

    ``numbered``: each row as (its row number in the sheet, its values).
    """
    rows = ws.iter_rows(max_row=MAX_ROWS, max_col=MAX_COLUMNS)
    header = _header(ws, _values(ws, next(rows, None) or ()), headers)
    columns = {name.casefold(): i for i, name in enumerate(header)}
    indexes = [columns[name.casefold()] for name in read]
    values = ((number, _values(ws, cells, indexes)) for number, cells in enumerate(rows, start=2))
    kept = [(number, r) for number, r in values if any(v is not None for v in r)]
    return columns, kept if numbered else [r for _, r in kept]


def _header(ws, row: tuple, expected: tuple[str, ...]) -> list[str]:
    """The header row's names, which must be the template's (a hidden extra or repeated column would be read)."""
    names = [_text(v) for v in row]
    while names and not names[-1]:
        names.pop()
    if [n.casefold() for n in names] != [e.casefold() for e in expected]:
        raise ApiError(422, "invalid_checklist",
                       f"Sheet {ws.title!r} has the header row {[n[:40] for n in names[:MAX_COLUMNS]]!r}, not the checklist's "
                       f"{list(expected)!r} (columns added, repeated, renamed or moved); download a fresh "
                       "checklist and copy your answers into it.")
    return names


def _get(row: tuple, columns: dict[str, int], name: str):
    index = columns.get(name.casefold())
    return row[index] if index is not None and index < len(row) else None


def _answer(question, value, problems: _Problems, cell: str) -> str | None:
    if value is None or _text(value) == "":
        return None
    if question.answer_type == "choice":
        canonical = _CHOICE_LOOKUP.get(_text(value).casefold())
        if canonical is None:
            problems.add("answers", question.id, f"{_text(value)[:80]!r} is not one of {', '.join(CHOICES)}", cell)
        return canonical
    if question.answer_type == "date":
        if isinstance(value, datetime | date):
            return _text(value)
        try:
            return date.fromisoformat(_text(value)).isoformat()
        except ValueError:
            problems.add("answers", question.id, f"{_text(value)[:80]!r} is not a date (YYYY-MM-DD)", cell)
            return None
    text = _text(value)
    if len(text) > _MAX_TEXT:
        problems.add("answers", question.id, f"longer than {_MAX_TEXT} characters", cell)
    return text


def _day(value) -> str | None:
    """A typed date (or YYYY-MM-DD text) as YYYY-MM-DD; None when the value is no date."""
    if isinstance(value, date):  # a datetime too: a time typed with the date is not kept
        return (value.date() if isinstance(value, datetime) else value).isoformat()
    try:
        return date.fromisoformat(_text(value)).isoformat() if isinstance(value, str) else None
    except ValueError:
        return None


def _cell_date(value, section: str, cell: str, what: str, problems: _Problems) -> str | None:
    """A date cell's value as YYYY-MM-DD (None when blank); anything else is noted by cell."""
    if value is None or _text(value) == "":
        return None
    day = _day(value)
    if day is None:
        problems.add(section, cell, f"{what} {_text(value)[:80]!r} is not a date (YYYY-MM-DD)")
    return day


def _questions(wb, template: Template, problems: _Problems) -> tuple[dict[str, str], dict[str, dict]]:
    columns, rows = _table(_sheet(wb, meta.QUESTIONS_SHEET), meta.QUESTION_HEADERS,
                           (meta.Q_ID, meta.Q_ANSWER, meta.Q_NOTES, meta.Q_OWNER, meta.Q_DUE, meta.Q_STATUS),
                           numbered=True)
    answers: dict[str, str] = {}
    responses: dict[str, dict] = {}
    statuses = {s.casefold(): s for s in meta.STATUSES}
    for number, row in rows:
        qid = _text(_get(row, columns, meta.Q_ID))
        if not qid:
            continue
        question = template.question(qid)
        id_cell = f"{meta.QUESTIONS_SHEET}!{_column_letter(columns, meta.Q_ID)}{number}"
        if question is None:
            problems.add("answers", qid[:64], f"not a question of checklist {template.id} {template.version}", id_cell)
            continue
        if qid in responses:
            problems.add("answers", qid, "appears more than once", id_cell)
            continue
        value = _answer(question, _get(row, columns, meta.Q_ANSWER), problems,
                        f"{meta.QUESTIONS_SHEET}!{_column_letter(columns, meta.Q_ANSWER)}{number}")
        if value is not None and question.answer_type == "choice":
            answers[qid] = value
        where = f"{meta.QUESTIONS_SHEET}!{{}}{number} ({qid})"
        status = _text(_get(row, columns, meta.Q_STATUS))
        if status and status.casefold() not in statuses:
            problems.add("cells", where.format(_column_letter(columns, meta.Q_STATUS)),
                         f"status {status[:80]!r} is not one of {', '.join(meta.STATUSES)}")
        responses[qid] = {
            "answer": value,
            "evidence_notes": _text(_get(row, columns, meta.Q_NOTES))[:_MAX_TEXT] or None,
            "owner": _text(_get(row, columns, meta.Q_OWNER))[:200] or None,
            "due_date": _cell_date(_get(row, columns, meta.Q_DUE), "cells",
                                   where.format(_column_letter(columns, meta.Q_DUE)), "due date", problems),
            "status": statuses.get(status.casefold()),
        }
    return answers, responses


def _red_flag_resolutions(wb, problems: _Problems) -> list[dict]:
    columns, rows = _table(_sheet(wb, meta.RED_FLAGS_SHEET), meta.RED_FLAG_HEADERS,
                           ("ID", "Mitigation", "Resolution", "Resolution notes"), numbered=True)
    out = []
    allowed = {r.casefold(): r for r in meta.RESOLUTIONS}
    for number, row in rows:
        flag_id = _text(_get(row, columns, "ID"))
        if not flag_id:
            continue
        resolution = _text(_get(row, columns, "Resolution"))
        if resolution and resolution.casefold() not in allowed:
            problems.add("red_flags", flag_id[:20],
                         f"resolution {resolution[:80]!r} is not one of {', '.join(meta.RESOLUTIONS)}",
                         f"{meta.RED_FLAGS_SHEET}!{_column_letter(columns, 'Resolution')}{number}")
        out.append({"id": flag_id[:20], "resolution": allowed.get(resolution.casefold()),
                    "mitigation": _text(_get(row, columns, "Mitigation"))[:_MAX_TEXT] or None,
                    "notes": _text(_get(row, columns, "Resolution notes"))[:_MAX_TEXT] or None})
    return out


def _party_notes(wb, screening: dict, problems: _Problems) -> list[dict]:
    """Every Parties row of the screening found in the upload, with the review notes typed into it (or None).

    Rows are found by what identifies them (role, name, country and restricted-party result), never by
    position; notes are plain text (a formula is refused like anywhere else) of at most _MAX_TEXT characters.
    Notes in a row that names no party of the screening are refused: they could not be attributed.
    """
    ws = _sheet(wb, meta.PARTIES_SHEET)
    read = (meta.P_ROLE, meta.P_NAME, meta.P_COUNTRY, meta.P_RESULT, meta.P_ENTRY, meta.P_LIST, meta.P_NOTES)
    columns, rows = _table(ws, meta.PARTY_HEADERS, read, numbered=True)
    expected = {party.cells(): party for party in party_rows(screening)}
    found: dict[tuple, dict] = {}
    for number, row in rows:
        notes = _text(_get(row, columns, meta.P_NOTES))
        party = expected.get(tuple(_text(_get(row, columns, name)) for name in read[:-1]))
        cell = f"{meta.PARTIES_SHEET}!{_column_letter(columns, meta.P_NOTES)}{number}"
        if party is None:
            if notes:
                problems.add("parties", cell, "the row names no party of this screening (its role, name, country "
                             "or restricted-party result was changed); type the notes into the party's own row, "
                             "or download a fresh checklist and copy the notes into it")
            continue
        if party.cells() in found:
            if notes:
                problems.add("parties", cell, "the party's row appears more than once; keep the notes in one row")
            continue
        found[party.cells()] = {"role": party.role, "name": party.name, "country": party.country,
                                "restricted_party_result": party.result, "matched_entry": party.entry or None,
                                "list": party.list_name or None, "review_notes": notes[:_MAX_TEXT] or None}
    return list(found.values())


def _column_letter(columns: dict[str, int], name: str) -> str:
    return get_column_letter(columns[name.casefold()] + 1)


def _signoff(wb, problems: _Problems) -> dict:
    """The preparer's and approver's sign-off rows; a date that is no date, or a sign-off without a name, is
    refused naming the cell (a signature vouches for someone)."""
    signoff = {}
    ws = _sheet(wb, meta.SUMMARY_SHEET)
    for number, cells in enumerate(ws.iter_rows(max_row=MAX_ROWS, max_col=4), start=1):
        role = _text(cells[0].value if cells else None)
        if role in ("Preparer", "Approver"):
            row = _values(ws, cells) + (None,) * 3
            name, comment = _text(row[1])[:200] or None, _text(row[2])[:2000] or None
            day = _cell_date(row[3], "signoff", f"{meta.SUMMARY_SHEET}!D{number}",
                             f"{role.lower()}'s sign-off date", problems)
            if name is None and (comment or _text(row[3])):
                problems.add("signoff", f"{meta.SUMMARY_SHEET}!B{number}",
                             f"the {role.lower()}'s sign-off has a date or comment but no name; type the name")
            signoff[role.lower()] = {"name": name, "comment": comment, "date": day}
    return signoff


class _MadeForAnother(Exception):
    """The workbook's metadata names another screening."""

    def __init__(self, screening_id: str):
        super().__init__(screening_id)
        self.screening_id = screening_id


def _other_screening(theirs: str, screening: dict, newest_of) -> ApiError:
    """A checklist made for another screening: say which screening's checklist to fill in instead."""
    newest = newest_of(theirs) if newest_of and theirs else None
    said = f"This checklist was made for screening {theirs[:80]!r}, not {screening.get('id')!r}"
    if newest is None:
        return ApiError(422, "checklist_mismatch",
                        f"{said}; upload it to its own screening or, if it was meant for this one, download "
                        f"this screening's checklist (GET /v1/screenings/{screening.get('id')}/checklist.xlsx), "
                        "copy your answers into it and upload it here.",
                        {"screening_id": [f"the checklist is for {theirs[:80]}"]})
    if newest["id"] == theirs:
        return ApiError(422, "checklist_mismatch",
                        f"{said}; upload it to its own screening (POST /v1/screenings/{theirs}/checklist).",
                        {"screening_id": [f"the checklist is for {theirs}"]})
    # Its own screening would refuse it too (409 checklist_superseded): send the user to the newest one.
    return ApiError(422, "checklist_mismatch",
                    f"{said}. Screening {theirs!r} has been superseded by screening {newest['id']!r}; download "
                    f"that screening's checklist (GET /v1/screenings/{newest['id']}/checklist.xlsx), copy your "
                    "answers into it and upload it to that screening.",
                    {"screening_id": [f"the checklist is for {theirs}, superseded by {newest['id']}"],
                     "superseded_by": [newest["id"]]})


def _open(data: bytes, limits: UploadLimits | None):
    """The workbook, read-only, once the package checks pass (ApiError otherwise)."""
    check_package(data, limits or UploadLimits())
    try:
        # data_only=False: a formula cell's cached value need not be what Excel shows, so formulas are refused.
        return load_workbook(io.BytesIO(data), read_only=True, data_only=False, keep_links=False)
    except ApiError:
        raise
    except Exception as exc:  # openpyxl raises many types for damaged files; all mean the same to the user
        raise ApiError(422, "invalid_checklist", f"The workbook could not be read: {exc}") from None


def screening_of(data: bytes, limits: UploadLimits | None = None) -> str:
    """The screening id a checklist's metadata sheet names, for an upload that does not say (the workspace's
    form); ApiError when the file is no readable hrdd checklist or names none."""
    wb = _open(data, limits)
    try:
        screening_id = _read_meta(wb).get("screening_id") or ""
    except ApiError:
        raise
    except Exception as exc:  # sheets are parsed lazily, as in read_checklist
        raise ApiError(422, "invalid_checklist", f"The workbook could not be read: {exc}") from None
    finally:
        wb.close()
    if not screening_id:
        raise ApiError(422, "invalid_checklist", f"The workbook's {meta.META_SHEET!r} sheet names no screening (it "
                       "was edited); download the checklist again and copy your answers into it.",
                       {"screening_id": ["missing"]})
    return screening_id


def read_checklist(data: bytes, screening: dict, templates: Callable[[str], Template],
                   limits: UploadLimits | None = None,
                   newest_of: Callable[[str], dict | None] | None = None) -> CheckedUpload:
    """Check, parse and validate an uploaded checklist for ``screening``; raise ApiError on any problem.

    ``templates`` returns the current template for an id (KeyError when unknown). Answers are read by
    question id from the Questions sheet, never by row position. ``newest_of`` returns the newest
    screening of a screening's transaction, to say where a checklist made for another screening belongs.
    """
    wb = _open(data, limits)
    try:
        info = _read_meta(wb)
        if info.get("screening_id") != screening.get("id"):
            raise _MadeForAnother(info.get("screening_id") or "")
        try:
            template = templates(info.get("template_id", ""))
        except KeyError as exc:
            raise ApiError(422, "checklist_mismatch", f"The checklist's template is no longer available: {exc}") \
                from None
        if info.get("template_version") != template.version:
            raise ApiError(422, "checklist_mismatch",
                           f"This checklist was made with version {info.get('template_version')!r} of template "
                           f"{template.id!r}; the current version is {template.version!r}. Download a fresh "
                           "checklist and copy your answers into it.")
        if info.get("digest") != meta.checklist_digest(screening, template):
            raise ApiError(422, "checklist_mismatch",
                           "The checklist's metadata does not match its screening (it was altered or made for "
                           "another screening); download a fresh checklist.")
        problems = _Problems()
        answers, responses = _questions(wb, template, problems)
        record = {"meta": info, "answers": answers, "responses": responses,
                  "red_flags": _red_flag_resolutions(wb, problems),
                  "parties": _party_notes(wb, screening, problems), "signoff": _signoff(wb, problems)}
        problems.raise_any()
    except _MadeForAnother as exc:
        # Outside the catch-all below: a store error looking up the newest screening is not a bad workbook.
        raise _other_screening(exc.screening_id, screening, newest_of) from None
    except ApiError:
        raise
    except Exception as exc:  # sheets are parsed lazily: damaged or hostile parts fail here, not at load
        raise ApiError(422, "invalid_checklist", f"The workbook could not be read: {exc}") from None
    finally:
        wb.close()
    return CheckedUpload(screening_id=screening["id"], template_id=template.id,
                         template_version=template.version, answers=answers, record=record)
