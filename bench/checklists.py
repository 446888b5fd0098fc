"""Checklist workbook: generation time against plain unstyled openpyxl writing the same cells, and upload
parse time. Usage: python bench/checklists.py [RUNS]; writes bench/results/checklists.json."""

from __future__ import annotations

import io
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from openpyxl import Workbook, load_workbook  # noqa: E402

from hrdd.checklists.templates import get_template  # noqa: E402
from hrdd.checklists.upload import read_checklist  # noqa: E402
from hrdd.checklists.workbook import build_workbook  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "checklist_screening_eg.json"
TEMPLATES = ROOT / "checklists"


def _cells(data: bytes) -> list[tuple[str, list[tuple[int, int, object]]]]:
    """Every non-empty cell of a workbook, per sheet: what the unstyled baseline writes."""
    wb = load_workbook(io.BytesIO(data))
    return [(ws.title, [(c.row, c.column, c.value) for row in ws.iter_rows() for c in row if c.value is not None])
            for ws in wb.worksheets]


def _plain(cells) -> bytes:
    """The baseline: the same values in the same sheets, no styles, validations or protection."""
    wb = Workbook()
    wb.remove(wb.active)
    for title, values in cells:
        ws = wb.create_sheet(title)
        for row, column, value in values:
            ws.cell(row=row, column=column, value=value)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _interleaved(functions: dict, runs: int) -> dict[str, list[float]]:
    """Run each function once per round, round after round, so load on the machine hits all alike."""
    for fn in functions.values():
        fn()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(runs):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1000)
    return times


def _filled(data: bytes) -> bytes:
    wb = load_workbook(io.BytesIO(data))
    ws = wb["Questions"]
    for row in ws.iter_rows(min_row=2):
        if row[0].value and row[5].value is None and row[0].value != "review_date":
            row[5].value = "No"
            row[6].value = "Checked against the end-user certificate and the registry extract."
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def main(runs: int = 50) -> dict:
    """Median times over ``runs`` interleaved rounds; ratio = median generation / median plain openpyxl."""
    screening = json.loads(FIXTURE.read_text(encoding="utf-8"))
    template = get_template(TEMPLATES, "state-dept-2020")
    data = build_workbook(screening, template)
    cells = _cells(data)
    filled = _filled(data)
    lookup = lambda tid: get_template(TEMPLATES, tid)  # noqa: E731
    times = _interleaved({"generate": lambda: build_workbook(screening, template),
                          "plain": lambda: _plain(cells),
                          "parse": lambda: read_checklist(filled, screening, lookup)}, runs)
    generate, plain, parse = (statistics.median(times[k]) for k in ("generate", "plain", "parse"))
    pair_ratio = statistics.median(g / p for g, p in zip(times["generate"], times["plain"], strict=True))
    result = {
        "runs": runs, "template": f"{template.id} {template.version}", "questions": len(template.questions),
        "cells": sum(len(v) for _, v in cells), "workbook_bytes": len(data),
        "generate_median_ms": round(generate, 1), "plain_openpyxl_median_ms": round(plain, 1),
        "ratio": round(generate / plain, 2), "median_paired_ratio": round(pair_ratio, 2), "target_ratio": 2.0,
        "upload_parse_median_ms": round(parse, 1), "python": sys.version.split()[0],
    }
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results" / "checklists.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 50)
