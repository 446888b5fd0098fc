"""Rider build for an escalated screening vs plain python-docx writing the same paragraphs, in one run.

The baseline writes exactly the rider's body (each paragraph's text in its style, each table's cells, the
footer text) with python-docx's public API and saves it; the rider build also selects clauses, resolves
variables, numbers the clauses, writes bookmarks, REF/SEQ/PAGE fields and the custom properties. Both are
measured interleaved, warm, with the clause library already loaded (loading it is reported separately).
Target: median ratio <= 1.5. Results go to bench/results/riders.json.
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from docx import Document  # noqa: E402
from docx.table import Table  # noqa: E402
from docx.text.paragraph import Paragraph  # noqa: E402

from hrdd.riders import DEFAULT_CLAUSES_DIR, build_document, build_rider  # noqa: E402
from hrdd.riders.library import load_library_uncached  # noqa: E402

OPTIONS = {
    "seller_name": "Acme Vision Ltd", "buyer_name": "Nile Integrated Systems LLC",
    "agreement_reference": "AV-2026-0147", "governing_law": "the laws of England and Wales",
    "grievance_contact": "https://acme-vision.example/grievance", "cure_period": "30",
}


def content_of(document) -> tuple[list, str]:
    """The rider's body in order: ("p", style, text) and ("t", rows of cell texts); and the footer text."""
    blocks = []
    for child in document.element.body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            paragraph = Paragraph(child, document)
            blocks.append(("p", paragraph.style.name, paragraph.text))
        elif tag == "tbl":
            table = Table(child, document)
            blocks.append(("t", [[cell.text for cell in row.cells] for row in table.rows]))
    footer = document.sections[0].footer.paragraphs[0].text
    return blocks, footer


def plain_python_docx(blocks: list, footer: str, style_ids: bool = False) -> bytes:
    """The baseline: the same paragraphs, styles and tables written with python-docx alone.

    ``style_ids`` sets each paragraph's style id directly, as the rider does, instead of python-docx's
    style setter (which scans every style on each call): the stricter baseline.
    """
    document = Document()
    styles = {name: document.styles[name] for name in {b[1] for b in blocks if b[0] == "p"}}
    for block in blocks:
        if block[0] == "p" and style_ids:
            paragraph = document.add_paragraph(block[2])
            if block[1] != "Normal":
                paragraph._p.get_or_add_pPr().style = styles[block[1]].style_id
        elif block[0] == "p":
            document.add_paragraph(block[2], style=styles[block[1]])
        else:
            rows = block[1]
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for r, row in enumerate(rows):
                cells = table.rows[r].cells
                for c, text in enumerate(row):
                    cells[c].text = text
    document.sections[0].footer.paragraphs[0].text = footer
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def main(runs: int = 40) -> dict:
    """Measure and print medians; returns the figures."""
    screening = json.loads((ROOT / "tests" / "fixtures" / "screening_escalated_eg.json").read_text())
    start = time.perf_counter()
    library = load_library_uncached(DEFAULT_CLAUSES_DIR)
    load_ms = (time.perf_counter() - start) * 1000
    document, selection = build_document(screening, OPTIONS, library)
    blocks, footer = content_of(document)
    build_rider(screening, OPTIONS, library)
    plain_python_docx(blocks, footer)
    plain_python_docx(blocks, footer, style_ids=True)
    timings: dict[str, list[float]] = {"rider": [], "plain": [], "plain_ids": []}
    for _ in range(runs):
        for name, call in (("rider", lambda: build_rider(screening, OPTIONS, library)),
                           ("plain", lambda: plain_python_docx(blocks, footer)),
                           ("plain_ids", lambda: plain_python_docx(blocks, footer, style_ids=True))):
            start = time.perf_counter()
            call()
            timings[name].append((time.perf_counter() - start) * 1000)
    median = {name: statistics.median(values) for name, values in timings.items()}
    result = {
        "paragraphs": sum(1 for b in blocks if b[0] == "p"), "tables": sum(1 for b in blocks if b[0] == "t"),
        "clauses": len(selection.clauses), "technical_parts": len(selection.technical), "runs": runs,
        "rider_median_ms": round(median["rider"], 1),
        "plain_median_ms": round(median["plain"], 1),
        "plain_style_ids_median_ms": round(median["plain_ids"], 1),
        "ratio_vs_plain": round(median["rider"] / median["plain"], 2),
        "ratio_vs_plain_style_ids": round(median["rider"] / median["plain_ids"], 2),
        "library_load_ms": round(load_ms, 1),
    }
    print(f"escalated rider: {result['clauses']} clauses, {result['technical_parts']} technical part(s), "
          f"{result['paragraphs']} paragraphs, {result['tables']} tables; {runs} interleaved runs")
    print(f"  rider build (select + assemble + save):           median {result['rider_median_ms']} ms")
    print(f"  python-docx, same paragraphs (public API):        median {result['plain_median_ms']} ms"
          f"  -> ratio {result['ratio_vs_plain']}x")
    print(f"  python-docx, same paragraphs, style ids set:      median {result['plain_style_ids_median_ms']} ms"
          f"  -> ratio {result['ratio_vs_plain_style_ids']}x (target <= 1.5x against both)")
    print(f"  clause library load and validation (once per process or on change): {result['library_load_ms']} ms")
    out = ROOT / "bench" / "results" / "riders.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
