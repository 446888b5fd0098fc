"""Builds the transparency report from the store and the policy, and renders it as a Word document."""

from __future__ import annotations

import io
import logging
import re
from datetime import UTC, date, datetime

from docx import Document
from docx.shared import Pt

from hrdd.workspace import grievance_figures, stats, transparency

logger = logging.getLogger(__name__)

DEFAULT_PROCESS = (
    "Every sale of a product with surveillance capabilities to a government or security-sector customer is "
    "screened against the U.S. State Department's 2020 guidance before a quote and again before an order: "
    "product capabilities, the end-user, the laws and practice of the countries involved, and the parties to "
    "the deal. Deals with serious red flags are held for a human rights reviewer, who may approve them, "
    "approve them on conditions such as contractual safeguards, ask for information, or decline them. "
    "Existing customers are re-screened when reference data, restricted-party lists or policy change, and "
    "anyone may report suspected misuse through a public grievance channel."
)


def report_settings(services) -> dict:
    """The ``reports:`` policy section with defaults (small-cell threshold 5)."""
    section = {}
    try:
        section = services.policy.section("reports") or {}
    except (AttributeError, KeyError):
        section = {}
    threshold = int(section.get("small_cell_threshold", transparency.DEFAULT_THRESHOLD))
    if threshold < 1:
        raise ValueError("reports.small_cell_threshold must be 1 or more")
    return {"threshold": threshold, "process": str(section.get("process_summary") or DEFAULT_PROCESS).strip(),
            "publisher": str(section.get("publisher") or "").strip()}


def _sources(services) -> list[str]:
    from hrdd.engine import ScreeningContext  # noqa: PLC0415 - the engine imports plugins

    out = []
    try:
        # The data plugins read the deployment's data directory through the context's reference data.
        groups = services.pm.hook.hrdd_data_sources(
            context=ScreeningContext(services.reference, services.policy, services.store))
    except Exception:  # a data plugin failing must not stop the report; the list is informative only
        logger.exception("a data plugin failed to list its sources for the transparency report")
        groups = []
    for group in groups:
        for src in group or ():
            version = f" ({src['version']})" if src.get("version") else ""
            out.append(f"{src.get('name')}: {src.get('source')}{version}")
    return sorted(set(out))


FIRST_YEAR = 2000


def parse_year(raw: str, today: date | None = None) -> int:
    """The report year a query gives (default: last year); ValueError naming the accepted range.

    A year after the current one has no figures yet, so it is refused rather than shown as zeros.
    """
    today = today or datetime.now(UTC).date()
    raw = raw.strip()
    if not raw:
        return today.year - 1
    if not re.fullmatch(r"[0-9]{4}", raw) or not FIRST_YEAR <= int(raw) <= today.year:
        raise ValueError(f"year must be a four-digit year from {FIRST_YEAR} to {today.year} (got {raw!r})")
    return int(raw)


def period_note(year: int, today: date) -> str | None:
    """The note a report for a year not yet ended carries; None for a past year."""
    if year < today.year:
        return None
    return f"Year not yet ended: figures to {today.isoformat()}."


def build_for_year(services, year: int) -> dict:
    """The report for one calendar year, suppressed per the policy's threshold."""
    settings = report_settings(services)
    regions = transparency.RegionLookup(services.config["HRDD_DATA_DIR"] / "freedom_house_fiw_2013_2025.csv")
    with services.store.engine.connect() as conn:
        deals = stats.deals_in_year(conn, year)
        decisions = stats.decisions_in_year(conn, year)
        grievance_counts = grievance_figures.for_year(conn, year)
    capabilities = getattr(services.reference, "capabilities", {}) or {}
    report = transparency.build(year, deals, decisions, grievance_counts, threshold=settings["threshold"],
                                region_of=regions, process=settings["process"], sources=_sources(services),
                                capability_label=lambda cap: capabilities[cap].title if cap in capabilities
                                else cap.replace("_", " "))
    now = datetime.now(UTC)
    report["publisher"] = settings["publisher"]
    report["complete"] = year < now.year
    report["period_note"] = period_note(year, now.date())
    report["generated_at"] = now.isoformat(timespec="seconds").replace("+00:00", "Z")
    report["region_source"] = "Regions as classified by Freedom House, Freedom in the World"
    return report


def sentence_case(label: str) -> str:
    """``label`` with its first letter capitalised and the rest as written ("IT infrastructure", "Middle East")."""
    return label[:1].upper() + label[1:]


def render_docx(report: dict) -> bytes:
    """The report as a Word document: headings, the process in brief, one table per aggregate."""
    doc = Document()
    doc.core_properties.title = f"Human rights due diligence transparency report {report['year']}"
    doc.core_properties.subject = "Step 8 of the U.S. State Department 2020 guidance"
    doc.add_heading(f"Transparency report {report['year']}", level=0)
    if report.get("publisher"):
        doc.add_paragraph(report["publisher"])
    doc.add_heading("Our due diligence process in brief", level=1)
    doc.add_paragraph(report["process"])
    doc.add_heading("Figures", level=1)
    if report.get("period_note"):
        doc.add_paragraph().add_run(report["period_note"]).bold = True
    for marker in report["markers"]:
        note = doc.add_paragraph(f"\u201c{marker['marker']}\u201d: {marker['meaning']}.")
        note.runs[0].font.size = Pt(9)
    for tbl in report["tables"]:
        doc.add_heading(tbl["title"], level=2)
        table = doc.add_table(rows=1, cols=2)
        table.style = "Light List Accent 1"
        table.rows[0].cells[0].text = "Category"
        table.rows[0].cells[1].text = tbl.get("column", "Count")
        for row in tbl["rows"]:
            cells = table.add_row().cells
            cells[0].text = sentence_case(row["category"])
            cells[1].text = transparency.cell_text(row)
        if tbl["total"] is not None or tbl["total_suppressed"]:
            cells = table.add_row().cells
            cells[0].text = "Total"
            cells[1].text = tbl["total_marker"] if tbl["total_suppressed"] else str(tbl["total"])
    doc.add_heading("Sources", level=1)
    doc.add_paragraph(report["region_source"], style="List Bullet")
    for source in report["sources"]:
        doc.add_paragraph(source, style="List Bullet")
    doc.add_paragraph(f"Generated {report['generated_at']}.")
    buffer = io.BytesIO()
    doc.save(buffer)
    return buffer.getvalue()
