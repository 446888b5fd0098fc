"""Read an uploaded checklist workbook safely and validate it against its screening and template."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from openpyxl import load_workbook

from hrdd.checklists import meta
from hrdd.checklists.templates import CHOICES, Template
from hrdd.errors import ApiError, validation_error

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
_ZIP_MAGIC = b"PK\x03\x04"
_OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # .xls, and also password-encrypted .xlsx
_MAX_TEXT = 32767
# Only this many rows and columns of a sheet are read (a checklist has a few dozen questions). A tiny
# upload with one cell at XFD1048576 otherwise made the reader walk a billion empty cells (456 s of CPU).
MAX_ROWS = 2000
MAX_COLUMNS = 40
_CHOICE_LOOKUP = {k.casefold(): v for k, v in CHOICES.items()} | {v: v for v in CHOICES.values()}


@dataclass(frozen=True)
class UploadLimits:
    """Bounds on an uploaded workbook: bytes received, bytes once unzipped, and zip entries."""

    max_bytes: int = 5 * 1024 * 1024
    max_uncompressed: int = 50 * 1024 * 1024
    max_entries: int = 1000


@dataclass
class CheckedUpload:
    """A validated upload: the canonical answers it gives and everything else worth keeping as evidence."""

    screening_id: str
    template_id: str
    template_version: str
    answers: dict[str, str]
    record: dict = field(default_factory=dict)


def check_package(data: bytes, limits: UploadLimits) -> None:
    """Refuse oversize bodies, non-xlsx files, macro-enabled workbooks and decompression bombs.

    Runs before any XML is parsed. Python's zipfile never inflates an entry past its declared size
    (a larger stream fails its CRC check), so the declared sizes summed here bound the real work.
    """
    if not data:
        raise ApiError(422, "invalid_checklist", "The upload is empty; send the checklist workbook (.xlsx).")
    if len(data) > limits.max_bytes:
        raise ApiError(413, "upload_too_large",
                       f"The upload is {len(data)} bytes; the limit is {limits.max_bytes} bytes.")
    if data.startswith(_OLE2_MAGIC):
        raise ApiError(415, "unsupported_media_type",
                       "This is an Excel 97-2003 (.xls) or password-protected workbook; save it as an "
                       "unprotected Excel workbook (.xlsx) and upload again.")
    if not data.startswith(_ZIP_MAGIC):
        raise ApiError(415, "unsupported_media_type", "The upload is not an Excel workbook (.xlsx).")
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        entries = archive.infolist()
    except (zipfile.BadZipFile, ValueError) as exc:
        raise ApiError(415, "unsupported_media_type", f"The upload is not a readable .xlsx file ({exc}).") from None
    if len(entries) > limits.max_entries:
        raise ApiError(413, "uncompressed_too_large",
                       f"The workbook has {len(entries)} parts; the limit is {limits.max_entries}.")
    total = sum(info.file_size for info in entries)
    if total > limits.max_uncompressed:
        raise ApiError(413, "uncompressed_too_large",
                       f"The workbook would unpack to {total} bytes; the limit is {limits.max_uncompressed} "
                       "bytes. A checklist is far smaller; this looks like a decompression bomb.")
    for info in entries:
        if info.flag_bits & 0x1:
            raise ApiError(415, "unsupported_media_type",
                           "The workbook is encrypted (password-protected); save it without a password and upload again.")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            # Excel writes stored or deflated parts; anything else made zipfile raise (a 500) further on.
            raise ApiError(415, "unsupported_media_type",
                           f"The workbook part {info.filename[:80]!r} uses a compression method Excel does not write.")
    names = {info.filename for info in entries}
    if any(name.lower().endswith("vbaproject.bin") for name in names):
        raise _macro_error()
    if "[Content_Types].xml" not in names:
        raise ApiError(415, "unsupported_media_type", "The upload is a zip file but not an Excel workbook.")
    try:
        content_types = archive.read("[Content_Types].xml").decode("utf-8", "replace")
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, NotImplementedError, EOFError) as exc:
        raise ApiError(415, "unsupported_media_type", f"The workbook is damaged ({exc}).") from None
    if "macroEnabled" in content_types:
        raise _macro_error()
    if "spreadsheetml.sheet.main+xml" not in content_types:
        raise ApiError(415, "unsupported_media_type",
                       "The upload is an Office file but not an Excel workbook (.xlsx).")


def _macro_error() -> ApiError:
    return ApiError(415, "macro_enabled",
                    "Macro-enabled workbooks (.xlsm) are refused; save the checklist as .xlsx and upload again.")


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
        raise ApiError(422, "invalid_checklist",
                       f"The workbook has no {name!r} sheet; upload the checklist as downloaded from hrdd.")
    return wb[name]


def _read_meta(wb) -> dict[str, str]:
    values = {}
    for row in _sheet(wb, meta.META_SHEET).iter_rows(min_row=1, max_row=len(meta.META_KEYS) + 5, max_col=2,
                                                     values_only=True):
        if row and row[0]:
            values[_text(row[0])] = _text(row[1] if len(row) > 1 else None)
    if values.get("format") != meta.FORMAT:
        raise ApiError(422, "invalid_checklist", "The workbook is not an hrdd checklist (unknown format).")
    return values


def _table(ws, required: tuple[str, ...]) -> tuple[dict[str, int], list[tuple]]:
    rows = ws.iter_rows(values_only=True, max_row=MAX_ROWS, max_col=MAX_COLUMNS)
    header = next(rows, None) or ()
    columns = {_text(v).casefold(): i for i, v in enumerate(header) if v is not None}
    missing = [name for name in required if name.casefold() not in columns]
    if missing:
        raise ApiError(422, "invalid_checklist",
                       f"Sheet {ws.title!r} has no column headed {', '.join(map(repr, missing))}.")
    return columns, [r for r in rows if any(v is not None for v in r)]


def _get(row: tuple, columns: dict[str, int], name: str):
    index = columns.get(name.casefold())
    return row[index] if index is not None and index < len(row) else None


def _answer(question, value, errors: dict) -> str | None:
    if value is None or _text(value) == "":
        return None
    if question.answer_type == "choice":
        canonical = _CHOICE_LOOKUP.get(_text(value).casefold())
        if canonical is None:
            errors[question.id] = [f"{_text(value)[:80]!r} is not one of {', '.join(CHOICES)}"]
        return canonical
    if question.answer_type == "date":
        if isinstance(value, datetime | date):
            return _text(value)
        try:
            return date.fromisoformat(_text(value)).isoformat()
        except ValueError:
            errors[question.id] = [f"{_text(value)[:80]!r} is not a date (YYYY-MM-DD)"]
            return None
    text = _text(value)
    if len(text) > _MAX_TEXT:
        errors[question.id] = [f"longer than {_MAX_TEXT} characters"]
    return text


def _questions(wb, template: Template) -> tuple[dict[str, str], dict[str, dict]]:
    columns, rows = _table(_sheet(wb, meta.QUESTIONS_SHEET), (meta.Q_ID, meta.Q_ANSWER))
    errors: dict[str, list[str]] = {}
    answers: dict[str, str] = {}
    responses: dict[str, dict] = {}
    for row in rows:
        qid = _text(_get(row, columns, meta.Q_ID))
        if not qid:
            continue
        question = template.question(qid)
        if question is None:
            errors[qid[:64]] = [f"not a question of checklist {template.id} {template.version}"]
            continue
        if qid in responses:
            errors[qid] = ["appears more than once"]
            continue
        value = _answer(question, _get(row, columns, meta.Q_ANSWER), errors)
        if value is not None and question.answer_type == "choice":
            answers[qid] = value
        responses[qid] = {
            "answer": value,
            "evidence_notes": _text(_get(row, columns, meta.Q_NOTES))[:_MAX_TEXT] or None,
            "owner": _text(_get(row, columns, meta.Q_OWNER))[:200] or None,
            "due_date": _text(_get(row, columns, meta.Q_DUE))[:40] or None,
            "status": _text(_get(row, columns, meta.Q_STATUS))[:40] or None,
        }
    if errors:
        raise validation_error({"answers": errors},
                               "Invalid checklist answers: " + ", ".join(sorted(errors)))
    return answers, responses


def _red_flag_resolutions(wb) -> tuple[list[dict], dict]:
    columns, rows = _table(_sheet(wb, meta.RED_FLAGS_SHEET), ("ID", "Resolution"))
    out, errors = [], {}
    allowed = {r.casefold(): r for r in meta.RESOLUTIONS}
    for row in rows:
        flag_id = _text(_get(row, columns, "ID"))
        if not flag_id:
            continue
        resolution = _text(_get(row, columns, "Resolution"))
        if resolution and resolution.casefold() not in allowed:
            errors[flag_id[:20]] = [f"resolution {resolution[:80]!r} is not one of {', '.join(meta.RESOLUTIONS)}"]
        out.append({"id": flag_id[:20], "resolution": allowed.get(resolution.casefold()),
                    "mitigation": _text(_get(row, columns, "Mitigation"))[:_MAX_TEXT] or None,
                    "notes": _text(_get(row, columns, "Resolution notes"))[:_MAX_TEXT] or None})
    return out, errors


def _signoff(wb) -> dict:
    signoff = {}
    for row in _sheet(wb, meta.SUMMARY_SHEET).iter_rows(max_row=MAX_ROWS, max_col=4, values_only=True):
        role = _text(row[0] if row else None)
        if role in ("Preparer", "Approver"):
            signoff[role.lower()] = {"name": _text(row[1])[:200] or None, "comment": _text(row[2])[:2000] or None,
                                     "date": _text(row[3])[:40] or None}
    return signoff


def read_checklist(data: bytes, screening: dict, templates: Callable[[str], Template],
                   limits: UploadLimits | None = None) -> CheckedUpload:
    """Check, parse and validate an uploaded checklist for ``screening``; raise ApiError on any problem.

    ``templates`` returns the current template for an id (KeyError when unknown). Answers are read by
    question id from the Questions sheet, never by row position.
    """
    check_package(data, limits or UploadLimits())
    try:
        wb = load_workbook(io.BytesIO(data), read_only=True, data_only=True, keep_links=False)
    except ApiError:
        raise
    except Exception as exc:  # openpyxl raises many types for damaged files; all mean the same to the user
        raise ApiError(422, "invalid_checklist", f"The workbook could not be read: {exc}") from None
    try:
        info = _read_meta(wb)
        if info.get("screening_id") != screening.get("id"):
            raise ApiError(422, "checklist_mismatch",
                           f"This checklist belongs to screening {info.get('screening_id')!r}, not "
                           f"{screening.get('id')!r}; upload it to its own screening.")
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
        answers, responses = _questions(wb, template)
        flags, flag_errors = _red_flag_resolutions(wb)
        if flag_errors:
            raise validation_error({"red_flags": flag_errors})
        record = {"meta": info, "answers": answers, "responses": responses, "red_flags": flags,
                  "signoff": _signoff(wb)}
    except ApiError:
        raise
    except Exception as exc:  # sheets are parsed lazily: damaged or hostile parts fail here, not at load
        raise ApiError(422, "invalid_checklist", f"The workbook could not be read: {exc}") from None
    finally:
        wb.close()
    return CheckedUpload(screening_id=screening["id"], template_id=template.id,
                         template_version=template.version, answers=answers, record=record)
