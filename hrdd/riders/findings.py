"""Schedule 1 of the rider: the screening's summary and every red flag with its evidence."""

from __future__ import annotations

from typing import Any

from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.shared import Cm, Pt

from hrdd.model import SEVERITIES
from hrdd.riders import ooxml
from hrdd.riders.variables import SCREENING_VALUES, clean_text, country_name

NONE = "—"
SUMMARY_WIDTHS = (Cm(5.0), Cm(11.0))
FLAG_WIDTHS = (Cm(1.7), Cm(1.1), Cm(1.7), Cm(8.0), Cm(3.5))


def _humanise(value: str | None) -> str:
    return clean_text(value or "").replace("_", " ")


def summary_rows(screening: dict[str, Any], frame, values) -> list[tuple[str, str]]:
    """(label, value) rows describing the screening."""
    transaction = screening.get("transaction") or {}
    end_user = transaction.get("end_user") or {}
    risk = screening.get("risk") or {}
    items = []
    for item in transaction.get("items") or ():
        capabilities = ", ".join(_humanise(c) for c in item.get("capabilities") or ()) or NONE
        eccn = f"; ECCN {clean_text(item['eccn'])}" if item.get("eccn") else ""
        items.append(f"{clean_text(item.get('name') or '')} ({clean_text(item.get('sku') or '')}): "
                     f"{capabilities}{eccn}")
    versions = screening.get("versions") or {}
    data = versions.get("data") or {}
    data_text = "; ".join(f"{clean_text(k)} {clean_text(v)}" for k, v in data.items())
    if versions.get("ruleset"):
        data_text = f"ruleset {clean_text(versions['ruleset'])}" + (f"; {data_text}" if data_text else "")
    decision = screening.get("decision") or ""
    eu_parts = [clean_text(end_user.get("name") or ""), country_name(end_user.get("country")),
                _humanise(end_user.get("type")), _humanise(end_user.get("sector"))]
    labels = frame.summary_labels
    rows = [
        ("screening", clean_text(screening.get("id") or "")),
        ("date", values.get("screening_date") or _date_of(screening)),
        ("stage", _humanise(screening.get("stage"))),
        ("decision", frame.decision_labels.get(decision, _humanise(decision))),
        ("risk", f"{risk.get('score', NONE)}/100 ({_humanise(risk.get('level'))})" if risk else NONE),
        ("end_user", "; ".join(p for p in eu_parts if p)),
        ("countries", ", ".join(country_name(c) for c in transaction.get("deployment_countries") or ())
         or country_name(end_user.get("country"))),
        ("products", "\n".join(items)),
        ("intended_use", clean_text(transaction.get("intended_use") or "")),
        ("data", data_text),
    ]
    return [(labels[key], value or NONE) for key, value in rows]


def _date_of(screening: dict[str, Any]) -> str:
    return SCREENING_VALUES["screening_date"](screening)


def ordered_flags(screening: dict[str, Any]) -> list[dict[str, Any]]:
    """Red flags, worst first, then by step and id."""
    def key(flag):
        severity = flag.get("severity")
        rank = SEVERITIES.index(severity) if severity in SEVERITIES else -1
        return (-rank, flag.get("step") if isinstance(flag.get("step"), int) else 99, str(flag.get("id")))
    return sorted(screening.get("red_flags") or (), key=key)


def write_findings(writer, heading) -> None:
    """Write the findings schedule after its heading."""
    frame, screening = writer.frame, writer.screening
    writer.para("Normal", frame.texts["findings.intro"])
    summary = writer.document.add_table(rows=0, cols=2)
    summary.style = writer.style["Table Grid"]
    for label, value in summary_rows(screening, frame, writer.values):
        cells = summary.add_row().cells
        cells[0].paragraphs[0].add_run(label).bold = True
        cells[1].paragraphs[0].add_run(value)
    ooxml.set_column_widths(summary, SUMMARY_WIDTHS)
    flags = ordered_flags(screening)
    writer.para("Normal")
    if not flags:
        writer.para("Normal", frame.texts["findings.no_flags"])
        return
    table = writer.document.add_table(rows=1, cols=len(frame.flag_columns))
    table.style = writer.style["Table Grid"]
    for cell, title in zip(table.rows[0].cells, frame.flag_columns, strict=True):
        cell.paragraphs[0].add_run(title).bold = True
    _repeat_header(table)
    for flag in flags:
        cells = table.add_row().cells
        cells[0].paragraphs[0].add_run(clean_text(flag.get("id") or "")).bold = True
        cells[1].paragraphs[0].add_run(clean_text(flag.get("step", "")))
        cells[2].paragraphs[0].add_run(_humanise(flag.get("severity")))
        cells[3].paragraphs[0].add_run(clean_text(flag.get("title") or "")).bold = True
        evidence = cells[3].add_paragraph()
        evidence.add_run(clean_text(flag.get("evidence") or NONE))
        cells[4].paragraphs[0].add_run(clean_text(flag.get("source") or NONE))
    ooxml.set_column_widths(table, FLAG_WIDTHS)
    for row in table.rows:
        for cell in row.cells:
            for paragraph in cell.paragraphs:
                paragraph.paragraph_format.space_after = Pt(2)
                for run in paragraph.runs:
                    run.font.size = Pt(9)


def _repeat_header(table) -> None:
    tr_pr = table.rows[0]._tr.get_or_add_trPr()
    header = OxmlElement("w:tblHeader")
    header.set(qn("w:val"), "true")
    tr_pr.append(header)
