"""Build the due diligence checklist workbook (xlsx) for a screening and a template."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from openpyxl import Workbook
from openpyxl.workbook.protection import WorkbookProtection

from hrdd.checklists import instructions, meta
from hrdd.checklists.carry import RECORDED_WITH, CarriedPartyNotes, CarriedRow, notes_cell, summary_text
from hrdd.checklists.cells import (
    AMBER,
    DARK_RED,
    GREEN,
    RED,
    WHITE_BOLD,
    YELLOW,
    colour_when_equal,
    date_validation,
    dropdown,
    finish_table,
    fit_row_heights,
    header_row,
    print_setup,
    protect,
    put_text,
    put_value,
    register_styles,
)
from hrdd.checklists.package import UploadLimits
from hrdd.checklists.parties import party_rows
from hrdd.checklists.templates import CHOICES, Template
from hrdd.checklists.withdrawals import DEFAULT_SEVERITIES
from hrdd.model import quantity_text

DISPLAY = {v: k for k, v in CHOICES.items()}
DECISION_FILLS = {"do_not_proceed": RED, "escalate": AMBER, "proceed_with_safeguards": YELLOW, "proceed": GREEN}
SEVERITY_FILLS = {"critical": (DARK_RED, WHITE_BOLD), "high": (RED, None), "medium": (AMBER, None),
                  "low": (YELLOW, None)}


def cell_ranges(column: str, rows: list[int]) -> list[str]:
    """Compress rows of one column into ranges: [2,3,4,7] -> ["F2:F4", "F7"]."""
    out, start, prev = [], None, None
    for row in sorted(rows):
        if start is None:
            start = prev = row
        elif row == prev + 1:
            prev = row
        else:
            out.append(f"{column}{start}" if start == prev else f"{column}{start}:{column}{prev}")
            start = prev = row
    if start is not None:
        out.append(f"{column}{start}" if start == prev else f"{column}{start}:{column}{prev}")
    return out


def _join(values, sep: str = "; ") -> str:
    return sep.join(str(v) for v in values if v not in (None, ""))


def _summary(wb: Workbook, screening: dict, template: Template, generated_at: str,
             carried: dict[str, CarriedRow], party_notes: CarriedPartyNotes | None) -> None:
    ws = wb.active
    ws.title = meta.SUMMARY_SHEET
    txn = screening.get("transaction") or {}
    ref = txn.get("reference") or {}
    end_user = txn.get("end_user") or {}
    risk = screening.get("risk") or {}
    versions = screening.get("versions") or {}
    put_text(ws, 1, 1, template.title, "hrdd_title")
    put_text(ws, 2, 1, template.framework)
    ws.merge_cells("A2:D2")
    items = [
        f"{i.get('sku', '')} {i.get('name', '')} (capabilities: {_join(i.get('capabilities') or [], ', ') or 'none'}"
        f"; ECCN {i.get('eccn') or 'not given'}; quantity {quantity_text(i.get('quantity'))})"
        for i in txn.get("items") or ()
    ]
    parties = [f"{p.get('role', '')}: {p.get('name', '')} ({p.get('country') or 'country not given'})"
               for p in txn.get("parties") or ()]
    tailoring = [f"{t.get('item') or ', '.join(t.get('items') or ())}: without {t.get('remove_capability')} "
                 "the decision would be "
                 f"{t.get('decision_without')}" for t in screening.get("tailoring") or ()]
    rows = [
        ("Checklist template", f"{template.id} version {template.version}"),
        ("Screening", screening.get("id")),
        ("Screened at", screening.get("created_at")),
        ("Transaction", screening.get("transaction_id")),
        ("CRM/ERP reference", _join([ref.get("system"), ref.get("object_type"), ref.get("object_id")], " / ")),
        ("Stage", screening.get("stage") or txn.get("stage")),
        ("End-user", end_user.get("name")),
        ("End-user country", end_user.get("country")),
        ("End-user type and sector", _join([end_user.get("type"), end_user.get("sector")], ", ")),
        ("Parties", _join(parties, "\n")),
        ("Items", _join(items, "\n")),
        ("Deployment countries", _join(txn.get("deployment_countries") or [], ", ")),
        ("Intended use", txn.get("intended_use")),
        ("Decision", screening.get("decision")),
        ("Gate", screening.get("gate")),
        ("Risk score and level", f"{risk.get('score')} ({risk.get('level')})" if risk else None),
        ("Conditions", _join(screening.get("conditions") or [], "\n")),
        ("Safeguards", _join([s.get("title") for s in screening.get("safeguards") or ()], "\n")),
        ("Tailoring options", _join(tailoring, "\n")),
        ("Ruleset version", versions.get("ruleset")),
        ("Data versions", _join([f"{k} {v}" for k, v in sorted((versions.get("data") or {}).items())], ", ")),
        ("Workbook generated", generated_at),
    ]
    carried_text = summary_text(carried, party_notes)
    if carried_text:
        rows.append(("Carried from earlier checklists", carried_text))
    row = 4
    decision_row = None
    for label, value in rows:
        put_text(ws, row, 1, label, "hrdd_label")
        put_text(ws, row, 2, value)
        if label == "Decision":
            decision_row = row
        row += 1
    for decision, fill in DECISION_FILLS.items():
        for value in (decision, gate_for(decision)):
            colour_when_equal(ws, [f"B{decision_row}:B{decision_row + 1}"], value, fill)
    row += 1
    put_text(ws, row, 1, "Sign-off", "hrdd_title")
    row += 1
    for col, title in enumerate(("Role", "Name", "Comment", "Date"), start=1):
        put_text(ws, row, col, title, "hrdd_header")
    signoff_dates = []
    for role in ("Preparer", "Approver"):
        row += 1
        put_text(ws, row, 1, role, "hrdd_label")
        put_text(ws, row, 2, None, "hrdd_input")
        put_text(ws, row, 3, None, "hrdd_input")
        put_value(ws, row, 4, None, "hrdd_input_date")
        signoff_dates.append(f"D{row}")
    date_validation(ws, signoff_dates)
    for col, width in zip("ABCD", (26, 80, 40, 14), strict=True):
        ws.column_dimensions[col].width = width
    fit_row_heights(ws, 3)
    ws.row_dimensions[2].height = 15 * (len(template.framework) // 150 + 1)
    print_setup(ws)
    ws.page_setup.orientation = "portrait"
    protect(ws)


def gate_for(decision: str) -> str:
    """The CRM gate that goes with a decision (DESIGN.md)."""
    return {"do_not_proceed": "block", "escalate": "hold", "proceed_with_safeguards": "release_with_conditions",
            "proceed": "release"}[decision]


def _questions(wb: Workbook, screening: dict, template: Template, carried: dict[str, CarriedRow]) -> None:
    ws = wb.create_sheet(meta.QUESTIONS_SHEET)
    header_row(ws, list(zip(meta.QUESTION_HEADERS, (22, 6, 18, 50, 40, 10, 34, 13, 22, 14, 11, 11), strict=True)))
    answers = (screening.get("transaction") or {}).get("answers") or {}
    source = template.sources[0]
    choice_rows, date_rows, risky = [], [], {"yes": [], "no": []}
    for row, q in enumerate(template.questions, start=2):
        put_text(ws, row, 1, q.id)
        put_value(ws, row, 2, q.step)
        put_text(ws, row, 3, template.steps.get(q.step))
        put_text(ws, row, 4, q.text)
        put_text(ws, row, 5, q.guidance)
        known = answers.get(q.id) if q.answer_type == "choice" else None
        row_carried = carried.get(q.id)
        kept = row_carried if row_carried and not row_carried.changed_flag else None
        # The screening set this upload's answer aside (given on other facts): pre-filling it would let an
        # unchanged upload record it again without anyone answering for the facts now.
        set_aside = bool(kept and kept.answer is not None
                         and ((screening.get("answers_on_record") or {}).get(q.id) or {}).get("not_used_because"))
        shown = known if known is not None or kept is None or set_aside else kept.answer
        if q.answer_type == "date":
            put_value(ws, row, 6, shown, "hrdd_input_date")
            date_rows.append(row)
        else:
            put_text(ws, row, 6, DISPLAY.get(shown, shown) if q.answer_type == "choice" else shown, "hrdd_input")
        if q.answer_type == "choice":
            choice_rows.append(row)
            if q.risky_answer:
                risky[q.risky_answer].append(row)
        note, recheck = notes_cell(row_carried, known, set_aside=set_aside) if row_carried else (None, False)
        if known and (note is None or row_carried.changed_flag):
            note = f"{RECORDED_WITH} {screening.get('id')}." + (f"\n{note}" if note else "")
        put_text(ws, row, 7, note, "hrdd_input")
        flag = template.red_flags.get(q.red_flag) if q.red_flag else None
        put_text(ws, row, 8, f"{flag.id} ({flag.severity})" if flag else None)
        link = put_text(ws, row, 9, source.get("label") or source["title"])
        link.hyperlink = source["url"]
        put_text(ws, row, 10, kept.owner if kept else None, "hrdd_input")
        put_value(ws, row, 11, kept.due_date if kept else None, "hrdd_input_date")
        # Unknown is no answer yet: the row stays Open until someone finds out.
        status = (kept.status if kept else None) or ("Done" if known and known != "unknown" else "Open")
        put_text(ws, row, 12, "Open" if recheck else status, "hrdd_input")
    last = len(template.questions) + 1
    dropdown(ws, tuple(CHOICES), cell_ranges("F", choice_rows), "Yes, No, Unknown or N/A")
    date_validation(ws, cell_ranges("F", date_rows) + [f"K2:K{last}"])
    dropdown(ws, meta.STATUSES, [f"L2:L{last}"], "Open, In progress or Done")
    colour_when_equal(ws, cell_ranges("F", risky["yes"]), "Yes", RED)
    colour_when_equal(ws, cell_ranges("F", risky["no"]), "No", RED)
    colour_when_equal(ws, cell_ranges("F", choice_rows), "Unknown", AMBER)
    ws.oddHeader.center.text = template.title
    finish_table(ws, 12, last)


def _red_flags(wb: Workbook, screening: dict, template: Template) -> None:
    ws = wb.create_sheet(meta.RED_FLAGS_SHEET)
    header_row(ws, list(zip(meta.RED_FLAG_HEADERS, (9, 6, 10, 35, 60, 28, 45, 18, 35), strict=True)))
    flags = screening.get("red_flags") or []
    row = 1
    for row, flag in enumerate(flags, start=2):
        info = template.red_flags.get(flag.get("id"))
        put_text(ws, row, 1, flag.get("id"))
        put_value(ws, row, 2, flag.get("step"))
        put_text(ws, row, 3, flag.get("severity"))
        put_text(ws, row, 4, flag.get("title"))
        put_text(ws, row, 5, flag.get("evidence"))
        put_text(ws, row, 6, flag.get("source"))
        put_text(ws, row, 7, info.mitigation if info else None, "hrdd_input")
        put_text(ws, row, 8, "Open", "hrdd_input")
        put_text(ws, row, 9, None, "hrdd_input")
    if not flags:
        row = 2
        put_text(ws, row, 4, "The screening raised no red flags.")
    else:
        dropdown(ws, meta.RESOLUTIONS, [f"H2:H{row}"], "How was this red flag resolved?")
        for severity, (fill, font) in SEVERITY_FILLS.items():
            colour_when_equal(ws, [f"C2:C{row}"], severity, fill, font)
        colour_when_equal(ws, [f"H2:H{row}"], "Open", AMBER)
    finish_table(ws, 9, row)


def _parties(wb: Workbook, screening: dict, carried: dict[int, str]) -> None:
    ws = wb.create_sheet(meta.PARTIES_SHEET)
    header_row(ws, list(zip(meta.PARTY_HEADERS, (14, 32, 9, 12, 18, 32, 28, 8, 40), strict=True)))
    row = 1
    for index, party in enumerate(party_rows(screening)):
        row += 1
        put_text(ws, row, 1, party.role)
        put_text(ws, row, 2, party.name)
        put_text(ws, row, 3, party.country)
        if party.attributed:
            put_text(ws, row, 4, {True: "Yes", False: "No"}.get(party.government_linked, "Not stated"))
        put_text(ws, row, 5, party.result)
        if party.match is not None:
            put_text(ws, row, 6, party.entry)
            put_text(ws, row, 7, party.match.get("list"))
            put_value(ws, row, 8, party.match.get("score"))
        # The reviewers' notes on the party and its match: read back on upload, carried to the next checklist.
        put_text(ws, row, 9, carried.get(index), "hrdd_input")
    colour_when_equal(ws, [f"E2:E{row}"], "confirmed match", RED)
    colour_when_equal(ws, [f"E2:E{row}"], "possible match", AMBER)
    finish_table(ws, len(meta.PARTY_HEADERS), row)


def _sources(wb: Workbook, screening: dict, template: Template, data_sources: list[dict]) -> None:
    ws = wb.create_sheet(meta.SOURCES_SHEET)
    header_row(ws, [("Dataset or document", 34), ("Version or year", 16), ("Source", 55), ("Terms", 55)])
    row = 1
    listed = set()
    for ds in data_sources:
        row += 1
        listed.add(str(ds.get("name")))
        put_text(ws, row, 1, ds.get("name"))
        put_text(ws, row, 2, ds.get("version"))
        put_text(ws, row, 3, ds.get("source"))
        put_text(ws, row, 4, ds.get("terms"))
    for name, version in sorted(((screening.get("versions") or {}).get("data") or {}).items()):
        if name not in listed:
            row += 1
            put_text(ws, row, 1, name)
            put_text(ws, row, 2, version)
            put_text(ws, row, 3, "Dataset version recorded with the screening")
    for src in template.sources:
        row += 1
        put_text(ws, row, 1, src["title"])
        put_text(ws, row, 2, f"checklist {template.version}")
        cell = put_text(ws, row, 3, src["url"])
        cell.hyperlink = src["url"]
        put_text(ws, row, 4, "Public guidance or legislation; question wording in this checklist is hrdd's own.")
    finish_table(ws, 4, row)


def _metadata(wb: Workbook, screening: dict, template: Template, generated_at: str) -> None:
    ws = wb.create_sheet(meta.META_SHEET)
    values = {"format": meta.FORMAT, "screening_id": screening.get("id"),
              "transaction_id": screening.get("transaction_id"), "template_id": template.id,
              "template_version": template.version, "digest": meta.checklist_digest(screening, template),
              "generated_at": generated_at}
    for row, key in enumerate(meta.META_KEYS, start=1):
        put_text(ws, row, 1, key)
        put_text(ws, row, 2, values[key])
    ws.sheet_state = "veryHidden"
    protect(ws)


def build_workbook(screening: dict, template: Template, *, data_sources: list[dict] | None = None,
                   generated_at: str | None = None, carried: dict[str, CarriedRow] | None = None,
                   party_notes: CarriedPartyNotes | None = None, max_upload: int = UploadLimits().max_bytes,
                   confirm_severities: tuple[str, ...] = DEFAULT_SEVERITIES) -> bytes:
    """The checklist workbook for a stored screening dict (the screening response body), as xlsx bytes.

    ``carried``: rows from the deal's earlier uploads (hrdd.checklists.carry.carried_rows) to pre-fill;
    ``party_notes``: the Parties sheet's review notes they carry (hrdd.checklists.carry.carried_party_notes).
    ``max_upload`` and ``confirm_severities`` are named in the instructions sheet (the upload's size limit,
    the severities whose withdrawn answers wait for a reviewer).
    """
    generated_at = generated_at or datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    wb = Workbook()
    register_styles(wb)
    _summary(wb, screening, template, generated_at, carried or {}, party_notes)
    _questions(wb, screening, template, carried or {})
    _red_flags(wb, screening, template)
    _parties(wb, screening, party_notes.cells if party_notes else {})
    _sources(wb, screening, template, data_sources or [])
    _metadata(wb, screening, template, generated_at)
    instructions.add_sheet(wb, template, instructions.placeholder_values(
        screening, template, max_upload=max_upload, confirm_severities=confirm_severities))
    # Open on the instructions (the first sheet) if there are any, else on the questions; one tab selected,
    # or Excel opens the sheets grouped and typing goes into both.
    wb.active = 0 if template.instructions else 1
    # Each printed page says whose it is: a licence application's attachment gets separated and photocopied.
    footer = (f"Screening {screening.get('id')}, checklist {template.id} {template.version}").replace("&", "&&")
    for index, ws in enumerate(wb.worksheets):
        ws.sheet_view.tabSelected = index == wb.index(wb.active)
        if ws.sheet_state == "visible":
            ws.oddFooter.center.text = footer
    wb.security = WorkbookProtection(lockStructure=True)  # no unhiding, renaming or deleting sheets
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
