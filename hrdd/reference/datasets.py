"""The three country datasets (FIW, PTS, WGI), read from the files datasets.yaml names and checked line by line."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hrdd.reference.tables import DataFileError, Problems, Row, read_rows, read_yaml

# Used when the data directory has no datasets.yaml, or it does not list the dataset.
DEFAULT_FILES = {"fiw": "freedom_house_fiw_2013_2025.csv", "pts": "political_terror_scale_1976_2023.csv",
                 "wgi": "wgi_governance_1996_2022.csv"}
FIW_STATUSES = ("F", "PF", "NF")
PTS_COLUMNS = ("PTS_A", "PTS_H", "PTS_S")
YEARS = (1900, 2100)


@dataclass(frozen=True)
class DatasetFile:
    """Where a country dataset is and how its columns are named (datasets.yaml ``file`` and ``columns``)."""

    name: str
    path: Path
    columns: dict[str, str] = field(default_factory=dict)


def dataset_files(data_dir: Path) -> dict[str, DatasetFile]:
    """The FIW, PTS and WGI files of a data directory, as its datasets.yaml lists them."""
    listing_path = data_dir / "datasets.yaml"
    entries: dict[str, Any] = {}
    if listing_path.exists():
        listing = read_yaml(listing_path) or {}
        datasets = listing.get("datasets") if isinstance(listing, dict) else None
        if not isinstance(datasets, list) or not all(isinstance(e, dict) and e.get("name") for e in datasets):
            raise DataFileError(f"{listing_path}: expected 'datasets:', a list of entries each with a name and a file")
        entries = {e["name"]: e for e in datasets}
    out = {}
    for name, default in DEFAULT_FILES.items():
        entry = entries.get(name, {})
        file_name, columns = entry.get("file") or default, entry.get("columns") or {}
        if not isinstance(file_name, str) or Path(file_name).name != file_name:
            raise DataFileError(f"{listing_path}: dataset {name}: file must be a file name in the data directory, "
                                f"not {file_name!r}")
        if not isinstance(columns, dict) or not all(isinstance(v, str) for v in columns.values()):
            raise DataFileError(f"{listing_path}: dataset {name}: columns must map hrdd's column names to the "
                                f"file's, e.g. {{status: Status}}")
        path = data_dir / file_name
        if not path.exists():
            raise DataFileError(f"{path}: no such file (the {name} dataset"
                                f"{' that datasets.yaml lists' if name in entries else ''}); put the file there or "
                                f"correct the file name in {listing_path}")
        out[name] = DatasetFile(name, path, {str(k): v for k, v in columns.items()})
    return out


def _alpha2(codes, row: Row, column: str) -> str | None:
    """The alpha-2 code of a row's dataset code; None for a blank or NA code, reported when unknown."""
    code = row.text(column)
    if not code or code.upper() == "NA":
        return None
    mapped = codes.alpha2_from_dataset_code(code)
    if mapped is None and not codes.is_unmapped_on_purpose(code):
        row.problem(column, f"{code!r} is not an ISO 3166-1 alpha-3 code nor one country_codes.yaml maps; add "
                            f"'{code.upper()}: XX' (its alpha-2 code) or '{code.upper()}: ~' (a former country, "
                            f"not screened) to country_codes.yaml")
    return mapped


def _first_time(seen: dict, row: Row, alpha2: str, year: int, column: str) -> bool:
    """True the first time a country and year is given; a second line for them is reported."""
    if (alpha2, year) in seen:
        row.problem(column, f"{alpha2} {year} is already given on line {seen[alpha2, year]}")
        return False
    seen[alpha2, year] = row.line
    return True


def load_fiw(source: DatasetFile, codes, record_type) -> dict[str, Any]:
    """Latest FIW edition per country; territories without a code are skipped, every other line checked."""
    columns = ("country_territory", "iso3", "country_or_territory", "edition", "data_year", "status", "total",
               "d", "e", "f")
    problems, out, seen = None, {}, {}
    for row in read_rows(source.path, columns, source.columns):
        problems = row.problems
        alpha2 = _alpha2(codes, row, "iso3")
        kind = row.choice("country_or_territory", ("c", "t"))
        if alpha2 is None and kind == "c" and not row.text("iso3"):
            row.problem("iso3", f"no code for the country {row.text('country_territory')!r}; give its ISO 3166-1 "
                                f"alpha-3 code")
        edition = row.number("edition", *YEARS, whole=True)
        data_year = row.number("data_year", *YEARS, whole=True)
        status = row.choice("status", FIW_STATUSES)
        total = row.number("total", -4, 100, whole=True)
        d = row.number("d", 0, 16, whole=True)
        e = row.number("e", 0, 12, whole=True)
        f = row.number("f", 0, 16, whole=True)
        if not row.ok or alpha2 is None:
            continue
        if _first_time(seen, row, alpha2, edition, "edition") and (alpha2 not in out or edition > out[alpha2][0]):
            out[alpha2] = (edition, record_type(edition, data_year, status, total, d + e, f))
    _finish(problems)
    return {code: record for code, (_, record) in out.items()}


def load_pts(source: DatasetFile, codes, columns: Iterable[str], record_type) -> dict[str, Any]:
    """Latest PTS year with at least one coded score per country."""
    columns = list(columns)
    problems, out, seen = None, {}, {}
    for row in read_rows(source.path, ["WordBank_Code_A", "Year", *columns], source.columns):
        problems = row.problems
        alpha2 = _alpha2(codes, row, "WordBank_Code_A")
        year = row.number("Year", *YEARS, whole=True)
        scores = {c: row.number(c, 1, 5, whole=True, optional=True) for c in columns}
        if not row.ok or alpha2 is None:
            continue
        coded = {c: v for c, v in scores.items() if v is not None}
        if _first_time(seen, row, alpha2, year, "Year") and coded and (alpha2 not in out or year > out[alpha2][0]):
            out[alpha2] = (year, record_type(year, coded))
    _finish(problems)
    return {code: record for code, (_, record) in out.items()}


def load_wgi(source: DatasetFile, codes, record_type) -> dict[str, Any]:
    """Latest WGI rule-of-law percentile per country."""
    problems, out, seen = None, {}, {}
    for row in read_rows(source.path, ("wb_code", "year", "rule_of_law_percentile_rank"), source.columns):
        problems = row.problems
        alpha2 = _alpha2(codes, row, "wb_code")
        year = row.number("year", *YEARS, whole=True)
        value = row.number("rule_of_law_percentile_rank", 0, 100, optional=True)
        if not row.ok or alpha2 is None:
            continue
        if _first_time(seen, row, alpha2, year, "year") and value is not None and (alpha2 not in out or year > out[alpha2][0]):
            out[alpha2] = (year, record_type(year, value))
    _finish(problems)
    return {code: record for code, (_, record) in out.items()}


def _finish(problems: Problems | None) -> None:
    if problems is not None:
        problems.raise_if_any()
