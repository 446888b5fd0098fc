"""Step 8 transparency report: yearly aggregates with small-cell suppression (UNGP 21)."""

from __future__ import annotations

import csv
import io
from collections import Counter
from pathlib import Path

import pycountry

DEFAULT_THRESHOLD = 5
UNKNOWN_REGION = "Unknown region"


def suppress(counts: dict[str, int], threshold: int, *, complementary: bool = True) -> list[dict]:
    """Rows ``{"category", "count", "suppressed"}`` with counts 1..threshold-1 hidden.

    When exactly one cell of a table is hidden, the smallest other non-zero cell is hidden too, so the
    hidden value cannot be worked out from the published total.
    """
    rows = [{"category": k, "count": v, "suppressed": 0 < v < threshold} for k, v in counts.items()]
    hidden = [r for r in rows if r["suppressed"]]
    if complementary and len(hidden) == 1:
        others = sorted((r for r in rows if not r["suppressed"] and r["count"] > 0), key=lambda r: r["count"])
        if others:
            others[0]["suppressed"] = True
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
    return {"name": name, "title": title, "rows": suppress(counts, threshold),
            "total": total if total == 0 or total >= threshold else None,
            "total_suppressed": 0 < total < threshold}


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


def build(year: int, deals: list[dict], decisions: list[dict], grievances: dict[str, int], *,
          threshold: int, region_of, process: str, sources: list[str]) -> dict:
    """Assemble the report for ``year``.

    ``deals``: one dict per transaction screened that year with ``country``, ``capabilities`` and the
    latest engine ``decision``; ``decisions``: reviewer decisions made that year (``outcome``);
    ``grievances``: counts ``received``, ``resolved``.
    """
    by_region = Counter(region_of(d["country"]) for d in deals)
    by_capability: Counter = Counter()
    for deal in deals:
        for cap in set(deal["capabilities"]) or {"none"}:
            by_capability[cap.replace("_", " ")] += 1
    by_engine = Counter(d["decision"].replace("_", " ") for d in deals)
    by_review = Counter({"declined": 0, "approved with conditions": 0, "approved": 0,
                         "information requested": 0})
    for decision in decisions:
        by_review[{"decline": "declined", "approve_with_conditions": "approved with conditions",
                   "approve": "approved", "request_information": "information requested"}[decision["outcome"]]] += 1
    grievance_counts = {"received": grievances.get("received", 0), "resolved or closed": grievances.get("resolved", 0)}
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
    ]
    # Grievance figures are two views of the same reports, not parts of one total.
    grievance_rows = suppress(grievance_counts, threshold, complementary=False)
    tables.append({"name": "grievances", "title": "Grievances about misuse of products", "rows": grievance_rows,
                   "total": None, "total_suppressed": False})
    return {"year": year, "threshold": threshold, "process": process, "sources": sources, "tables": tables}


def to_csv(report: dict) -> str:
    """The report as CSV rows ``table,category,count``; a hidden cell reads ``<threshold``."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["year", "table", "category", "count"])
    hidden = f"<{report['threshold']}"
    for tbl in report["tables"]:
        for row in tbl["rows"]:
            writer.writerow([report["year"], tbl["name"], row["category"],
                             hidden if row["suppressed"] else row["count"]])
        if tbl["total"] is not None or tbl["total_suppressed"]:
            writer.writerow([report["year"], tbl["name"], "total",
                             hidden if tbl["total_suppressed"] else tbl["total"]])
    return out.getvalue()
