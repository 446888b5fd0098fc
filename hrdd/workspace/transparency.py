"""Step 8 transparency report: yearly aggregates with small-cell suppression (UNGP 21)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import pycountry

from hrdd.workspace.grievance_figures import median_days

DEFAULT_THRESHOLD = 5
COMPLEMENTARY = "suppressed"
UNKNOWN_REGION = "Unknown region"
ACTION_LABELS = {"engage": "engaged the customer", "request_corrective_action": "requested corrective action",
                 "suspend_support": "suspended support and updates", "terminate": "terminated the contract"}


def markers(threshold: int) -> list[dict]:
    """The two ways a hidden figure is printed, with what each means (the report's footnote)."""
    return [
        {"marker": f"<{threshold}", "meaning": f"a count from 1 to {threshold - 1}, hidden so that no customer "
                                               "or person who reported a concern can be identified (UN Guiding "
                                               "Principles, principle 21)"},
        {"marker": COMPLEMENTARY, "meaning": f"a figure hidden only to protect another: a count of {threshold} "
                                             "or more that would let a hidden count be worked out from the "
                                             f"total, or a median of fewer than {threshold} grievances"},
    ]


def suppress(counts: dict[str, int], threshold: int, *, complementary: bool = True) -> list[dict]:
    """Rows ``{"category", "count", "suppressed", "marker"}`` with counts 1..threshold-1 hidden.

    When exactly one cell of a table is hidden, the smallest other non-zero cell is hidden too, so the
    hidden value cannot be worked out from the published total; it is marked ``suppressed``, not
    ``<threshold``, since its count is not small.
    """
    small = f"<{threshold}"
    rows = [{"category": k, "count": v, "suppressed": 0 < v < threshold, "marker": small if 0 < v < threshold
             else None} for k, v in counts.items()]
    hidden = [r for r in rows if r["suppressed"]]
    if complementary and len(hidden) == 1:
        others = sorted((r for r in rows if not r["suppressed"] and r["count"] > 0), key=lambda r: r["count"])
        if others:
            others[0]["suppressed"], others[0]["marker"] = True, COMPLEMENTARY
    for row in rows:
        if row["suppressed"]:
            row["count"] = None
    return rows


def table(name: str, title: str, counts: dict[str, int], threshold: int, total: int | None = None) -> dict:
    """One report table: rows with suppression and a total (itself hidden when under the threshold).

    ``total`` defaults to the sum of the rows; a table whose rows overlap (one transaction under several
    capabilities) gives the number of transactions instead.
    """
    total = sum(counts.values()) if total is None else total
    hidden = 0 < total < threshold
    return {"name": name, "title": title, "column": "Count", "rows": suppress(counts, threshold),
            "total": None if hidden else total, "total_suppressed": hidden,
            "total_marker": f"<{threshold}" if hidden else None}


class RegionLookup:
    """Country code -> region, from the Freedom in the World data file's region column (Freedom House)."""

    def __init__(self, fiw_csv: Path | None):
        self._by_iso3: dict[str, str] = {}
        if fiw_csv and Path(fiw_csv).exists():
            with open(fiw_csv, newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    if row.get("iso3") and row.get("region"):
                        self._by_iso3[row["iso3"]] = row["region"]

    def __call__(self, alpha2: str | None) -> str:
        """The region of a country, or 'Unknown region'."""
        if not alpha2:
            return UNKNOWN_REGION
        country = pycountry.countries.get(alpha_2=alpha2.upper())
        if country is None:
            return UNKNOWN_REGION
        return self._by_iso3.get(country.alpha_3, UNKNOWN_REGION)


def build(year: int, deals: list[dict], decisions: list[dict], grievances: dict, *,
          threshold: int, region_of, process: str, sources: list[str], capability_label=None) -> dict:
    """Assemble the report for ``year``.

    ``deals``: one dict per transaction screened that year with ``country``, ``capabilities`` and the
    latest engine ``decision``; ``decisions``: reviewer decisions made that year (``outcome``);
    ``grievances``: hrdd.workspace.grievance_figures.for_year; ``capability_label``: id -> the taxonomy's
    title.
    """
    label = capability_label or (lambda cap: cap.replace("_", " "))
    by_region = Counter(region_of(d["country"]) for d in deals)
    by_capability: Counter = Counter()
    for deal in deals:
        for cap in set(deal["capabilities"]) or {"none"}:
            by_capability[label(cap)] += 1
    by_engine = Counter(d["decision"].replace("_", " ") for d in deals)
    by_review = Counter({"declined": 0, "approved with conditions": 0, "approved": 0,
                         "information requested": 0})
    for decision in decisions:
        by_review[{"decline": "declined", "approve_with_conditions": "approved with conditions",
                   "approve": "approved", "request_information": "information requested"}[decision["outcome"]]] += 1
    tables = [
        table("screened_by_region", "Transactions screened, by region of the end-user",
              dict(sorted(by_region.items())), threshold),
        table("screened_by_capability", "Transactions screened, by surveillance capability (a transaction "
              "is counted under each of its capabilities; the total counts transactions)",
              dict(sorted(by_capability.items())), threshold, total=len(deals)),
        table("engine_outcomes", "Screening outcomes (latest screening of each transaction)",
              dict(sorted(by_engine.items())), threshold),
        table("reviewer_decisions", "Deals decided by reviewers on human rights grounds",
              dict(by_review), threshold),
        *grievance_tables(grievances, threshold),
    ]
    return {"year": year, "threshold": threshold, "process": process, "sources": sources,
            "markers": markers(threshold), "tables": tables}


def _untotalled(name: str, title: str, rows: list[dict], column: str = "Count") -> dict:
    return {"name": name, "title": title, "column": column, "rows": rows, "total": None,
            "total_suppressed": False, "total_marker": None}


def grievance_tables(figures: dict, threshold: int) -> list[dict]:
    """The grievance tables: counts, the median time to close, and actions taken (no total: rows overlap)."""
    # Each figure counts differently (by receipt, by closing, at year end): none is part of another's total.
    counts = {"received in the year": figures.get("received", 0),
              "received in the year and assessed as credible": figures.get("credible", 0),
              "closed or resolved in the year (whenever received)": figures.get("closed", 0),
              "open at the end of the year (whenever received)": figures.get("open_at_year_end", 0)}
    days = figures.get("days_to_close") or []
    hide_median = 0 < len(days) < threshold
    median_row = {"category": "median days from receipt to closing, for grievances closed in the year",
                  "count": None if hide_median else median_days(days), "suppressed": hide_median,
                  "marker": COMPLEMENTARY if hide_median else None}
    actions = {ACTION_LABELS.get(k, k.replace("_", " ")): v for k, v in (figures.get("actions") or {}).items()}
    return [
        _untotalled("grievances", "Grievances about misuse of products (credibility as assessed by the end "
                    "of the year)", suppress(counts, threshold,
                                                                                  complementary=False)),
        _untotalled("grievance_time_to_close", "Time taken to close grievances", [median_row], column="Days"),
        _untotalled("grievance_actions", "Grievances on which the company took each kind of action in the year "
                    "(a grievance is counted under each action taken)",
                    suppress(actions, threshold, complementary=False)),
    ]


def cell_text(row: dict, empty: str = "\u2013") -> str:
    """A figure as printed: its marker when hidden, ``empty`` when there is none (a median of no
    closings), else the number."""
    if row["suppressed"]:
        return row["marker"]
    return empty if row["count"] is None else str(row["count"])


def to_csv(report: dict) -> str:
    """The report as CSV rows ``year,table,category,count,note``; hidden cells carry their marker, and
    ``notes`` rows at the end say what each marker means (and whether the year had ended)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["year", "table", "category", "count", "note"])
    for tbl in report["tables"]:
        for row in tbl["rows"]:
            writer.writerow([report["year"], tbl["name"], row["category"], cell_text(row, ""), ""])
        if tbl["total"] is not None or tbl["total_suppressed"]:
            writer.writerow([report["year"], tbl["name"], "total",
                             tbl["total_marker"] if tbl["total_suppressed"] else tbl["total"], ""])
    if report.get("period_note"):
        writer.writerow([report["year"], "notes", "period", "", report["period_note"]])
    for marker in report["markers"]:
        writer.writerow([report["year"], "notes", marker["marker"], "", marker["meaning"]])
    return out.getvalue()
