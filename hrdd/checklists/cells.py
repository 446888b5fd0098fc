"""Cell writing for checklist workbooks: text that never becomes a formula, styles, table set-up."""

from __future__ import annotations

from copy import copy
from datetime import date

from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.formatting.rule import CellIsRule
from openpyxl.styles import Alignment, Border, Font, NamedStyle, PatternFill, Protection, Side
from openpyxl.utils import column_index_from_string, get_column_letter
from openpyxl.workbook import Workbook
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

MAX_CELL_CHARS = 32767
# Leading characters that spreadsheet programs may read as the start of a formula or a DDE command, and
# "#", with which every error value starts (#N/A, #REF!, #DIV/0!, #VALUE!, #NAME?, #NUM!, #NULL!, #SPILL!):
# re-entered without the quote prefix, Excel turns such a string into an error value.
_FORMULA_LEAD = ("=", "+", "-", "@", "\t", "\r", "|", "#")

RED = PatternFill("solid", fgColor="F4B6B6")
DARK_RED = PatternFill("solid", fgColor="C00000")
AMBER = PatternFill("solid", fgColor="FFD966")
YELLOW = PatternFill("solid", fgColor="FFF2CC")
GREEN = PatternFill("solid", fgColor="C6EFCE")
WHITE_BOLD = Font(bold=True, color="FFFFFF")
_thin = Side(style="thin", color="BFBFBF")

STYLES = {
    "hrdd_header": NamedStyle(
        name="hrdd_header", font=Font(bold=True, color="FFFFFF"), fill=PatternFill("solid", fgColor="1F3864"),
        alignment=Alignment(wrap_text=True, vertical="center"), border=Border(bottom=_thin)),
    "hrdd_text": NamedStyle(
        name="hrdd_text", alignment=Alignment(wrap_text=True, vertical="top"), border=Border(bottom=_thin)),
    "hrdd_label": NamedStyle(
        name="hrdd_label", font=Font(bold=True), alignment=Alignment(wrap_text=True, vertical="top"),
        border=Border(bottom=_thin)),
    "hrdd_input": NamedStyle(
        name="hrdd_input", fill=YELLOW, alignment=Alignment(wrap_text=True, vertical="top"),
        border=Border(left=_thin, right=_thin, top=_thin, bottom=_thin), protection=Protection(locked=False)),
    "hrdd_input_date": NamedStyle(
        name="hrdd_input_date", fill=YELLOW, number_format="yyyy-mm-dd",
        alignment=Alignment(vertical="top"),
        border=Border(left=_thin, right=_thin, top=_thin, bottom=_thin), protection=Protection(locked=False)),
    "hrdd_title": NamedStyle(name="hrdd_title", font=Font(bold=True, size=14)),
}


def register_styles(wb: Workbook) -> None:
    """Add the named styles once per workbook, and remember each one's resolved style array so that
    styling a cell is a copy rather than a look-up (most of the cost of styling in openpyxl)."""
    wb._hrdd_styles = {}
    scratch = wb.create_sheet("_scratch")
    for name, style in STYLES.items():
        wb.add_named_style(style)
        cell = scratch.cell(row=1, column=1)
        cell.style = name
        wb._hrdd_styles[name] = copy(cell._style)
    wb.remove(scratch)


def _apply_style(cell, style: str) -> None:
    cached = getattr(cell.parent.parent, "_hrdd_styles", {}).get(style)
    if cached is None:
        cell.style = style
    else:
        cell._style = copy(cached)


def clean_text(value) -> str:
    """The value as a string Excel can hold: no XML-illegal control characters, at most 32,767 chars."""
    text = "" if value is None else str(value)
    text = ILLEGAL_CHARACTERS_RE.sub("\ufffd", text)
    if len(text) > MAX_CELL_CHARS:
        text = text[: MAX_CELL_CHARS - 1] + "…"
    return text


def put_text(ws: Worksheet, row: int, column: int, value, style: str = "hrdd_text"):
    """Write a value as a plain string cell, never a formula, error code or number, whatever it contains."""
    cell = ws.cell(row=row, column=column)
    text = clean_text(value)
    if text:
        # Bypass openpyxl's type guessing, which turns "=..." into a formula and "#N/A" into an error
        # code: the value is already a clean string and is stored as one.
        cell._value = text
        cell.data_type = "s"
    _apply_style(cell, style)
    if text.startswith(_FORMULA_LEAD):
        # quotePrefix keeps it text even if the user re-enters the cell in Excel or LibreOffice.
        cell.quotePrefix = True
    return cell


def put_value(ws: Worksheet, row: int, column: int, value, style: str = "hrdd_text"):
    """Write a number or date as such; anything else goes through put_text, so it can never be a formula."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float | date)):
        return put_text(ws, row, column, value, style)
    cell = ws.cell(row=row, column=column, value=value)
    _apply_style(cell, style)
    return cell


def header_row(ws: Worksheet, headers: list[tuple[str, int]], row: int = 1) -> None:
    """Write the header row with column widths, freeze it, filter on it and repeat it on printed pages."""
    for col, (title, width) in enumerate(headers, start=1):
        put_text(ws, row, col, title, "hrdd_header")
        ws.column_dimensions[get_column_letter(col)].width = width
    ws.freeze_panes = ws.cell(row=row + 1, column=1)
    ws.print_title_rows = f"{row}:{row}"


def fit_row_heights(ws: Worksheet, first_row: int = 1, line_height: float = 15.0) -> None:
    """Set each row's height from its longest wrapped text, since neither Excel nor LibreOffice reliably
    grows rows of generated files when they open them."""
    widths = {column_index_from_string(key): dim.width for key, dim in ws.column_dimensions.items() if dim.width}
    lines: dict[int, int] = {}
    # ws._cells holds only written cells; iter_rows() would create every blank cell in the range.
    for (row, column), cell in ws._cells.items():
        if row >= first_row and isinstance(cell._value, str):
            width = int(max(widths.get(column, 10) - 1, 4))
            need = sum(-(-len(part) // width) or 1 for part in cell._value.split("\n"))
            if need > lines.get(row, 1):
                lines[row] = need
    for row, count in lines.items():
        ws.row_dimensions[row].height = min(line_height * count, 409)


def finish_table(ws: Worksheet, columns: int, last_row: int, header_row_no: int = 1) -> None:
    """Autofilter over the table, landscape fit-to-width printing, and protection of locked cells."""
    last = max(last_row, header_row_no + 1)
    ws.auto_filter.ref = f"A{header_row_no}:{get_column_letter(columns)}{last}"
    fit_row_heights(ws, header_row_no)
    print_setup(ws)
    protect(ws)


def print_setup(ws: Worksheet) -> None:
    """Landscape, one page wide, as many pages tall as needed, with a page footer."""
    ws.page_setup.orientation = "landscape"
    ws.page_setup.fitToWidth = 1
    ws.page_setup.fitToHeight = 0
    ws.sheet_properties.pageSetUpPr.fitToPage = True
    ws.print_options.gridLines = False
    ws.oddFooter.left.text = "&A"
    ws.oddFooter.right.text = "Page &P of &N"


def protect(ws: Worksheet) -> None:
    """Lock every cell except those styled as input; still allow filtering, sorting and resizing."""
    prot = ws.protection
    prot.sheet = True
    prot.autoFilter = False
    prot.sort = False
    prot.formatColumns = False
    prot.formatRows = False


def dropdown(ws: Worksheet, values: tuple[str, ...], cells: list[str], prompt: str) -> None:
    """A list validation (dropdown) on the given cells that rejects anything else."""
    if not cells:
        return
    dv = DataValidation(type="list", formula1='"' + ",".join(values) + '"', allow_blank=True,
                        showErrorMessage=True, errorTitle="Choose from the list",
                        error=f"Choose one of: {', '.join(values)}", promptTitle="Answer", prompt=prompt,
                        showInputMessage=True)
    for ref in cells:
        dv.add(ref)
    ws.add_data_validation(dv)


def date_validation(ws: Worksheet, cells: list[str]) -> None:
    """Accept only dates (from 2000 on) in the given cells."""
    if not cells:
        return
    dv = DataValidation(type="date", operator="greaterThanOrEqual", formula1="36526", allow_blank=True,
                        showErrorMessage=True, errorTitle="Date expected", error="Enter a date (YYYY-MM-DD).")
    for ref in cells:
        dv.add(ref)
    ws.add_data_validation(dv)


def colour_when_equal(ws: Worksheet, cells: list[str], value: str, fill: PatternFill,
                      font: Font | None = None) -> None:
    """Conditional formatting: fill the cells whose value equals ``value`` (case-insensitive in Excel)."""
    if not cells:
        return
    escaped = value.replace('"', '""')
    ws.conditional_formatting.add(" ".join(cells),
                                  CellIsRule(operator="equal", formula=[f'"{escaped}"'], fill=fill, font=font))
