"""The checklist workbook's first sheet, "How to fill this in": the template's instructions, filled in."""

from __future__ import annotations

from openpyxl import Workbook

from hrdd.checklists.cells import fit_row_heights, print_setup, protect, put_text
from hrdd.checklists.templates import PLACEHOLDER_RE, Template

INSTRUCTIONS_SHEET = "How to fill this in"


def size_in_words(size: int) -> str:
    """5242880 -> '5 MiB'; sizes that are no whole number of MiB or KiB in bytes."""
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size:,} bytes"


def placeholder_values(screening: dict, template: Template, *, max_upload: int,
                       confirm_severities: tuple[str, ...]) -> dict[str, str]:
    """What each placeholder of the instructions stands for in this screening's workbook."""
    sid = str(screening.get("id") or "")
    return {"screening_id": sid, "template_id": template.id,
            "upload_url": f"/v1/screenings/{sid}/checklist",
            "download_url": f"/v1/screenings/{sid}/checklist.xlsx?template={template.id}",
            "max_upload": size_in_words(max_upload),
            "confirm_severities": " or ".join(confirm_severities) or "no"}


def fill_in(text: str, values: dict[str, str]) -> str:
    """The text with each known {placeholder} replaced (templates are checked for unknown ones on load)."""
    return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), m.group(0)), text)


def add_sheet(wb: Workbook, template: Template, values: dict[str, str]) -> None:
    """Insert the instructions as the first sheet (nothing when the template has none): protected, printable."""
    if not template.instructions:
        return
    ws = wb.create_sheet(INSTRUCTIONS_SHEET, 0)
    put_text(ws, 1, 1, INSTRUCTIONS_SHEET, "hrdd_title")
    put_text(ws, 2, 1, f"{template.title} (checklist {template.id} {template.version})")
    ws.merge_cells("A2:B2")
    for row, item in enumerate(template.instructions, start=4):
        put_text(ws, row, 1, item["heading"], "hrdd_label")
        put_text(ws, row, 2, fill_in(item["text"], values))
    ws.column_dimensions["A"].width = 26
    ws.column_dimensions["B"].width = 100
    fit_row_heights(ws, 3)
    print_setup(ws)
    ws.page_setup.orientation = "portrait"
    ws.print_area = f"A1:B{len(template.instructions) + 3}"
    ws.oddHeader.center.text = template.title
    protect(ws)
