"""Reading a country dataset (CSV) strictly: every problem names the file, the line and the column."""

from __future__ import annotations

import csv
import difflib
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import yaml

from hrdd.errors import StartupError
from hrdd.yamltext import load_yaml

# A spreadsheet export names its missing values these ways; anything else that is not a number is an error.
MISSING = frozenset({"", "NA", "N/A", ".."})
PROBLEMS_SHOWN = 5


class DataFileError(StartupError, ValueError):
    """A reference data file that cannot be used; the message names the file, the line and the column."""


def read_yaml(path: Path):
    """The data of a YAML data file; DataFileError naming the file, line and column of a syntax error."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataFileError(f"{path}: cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise DataFileError(f"{path}: not valid YAML: {where}"
                            f"{getattr(exc, 'problem', None) or ' '.join(str(exc).split())}") from None


class Problems:
    """The problems found in one file, raised together as one DataFileError naming the file."""

    def __init__(self, path: Path):
        self.path = path
        # The same problem on many lines (a code used every year) is said once, with its lines.
        self.found: dict[tuple[str | None, str], list[int]] = {}

    def add(self, line: int, column: str | None, message: str) -> None:
        """Record a problem at a line (and column)."""
        self.found.setdefault((column, message), []).append(line)

    def raise_if_any(self) -> None:
        """Raise one DataFileError listing the first problems, with their lines, and how many more there are."""
        if not self.found:
            return
        said = []
        for (column, message), lines in list(self.found.items())[:PROBLEMS_SHOWN]:
            where = f"line {lines[0]}" if len(lines) == 1 else (
                f"lines {', '.join(map(str, lines[:3]))}" + (f" and {len(lines) - 3} more" if len(lines) > 3 else ""))
            said.append(where + (f", column {column!r}" if column else "") + f": {message}")
        more = len(self.found) - PROBLEMS_SHOWN
        raise DataFileError(f"{self.path}: " + "; ".join(said) + (f"; and {more} more problems" if more > 0 else ""))


class Row:
    """One data line of a dataset, whose values are read with the checks their column needs."""

    def __init__(self, line: int, values: dict[str, str], problems: Problems):
        self.line = line
        self.values = values
        self.problems = problems
        self.ok = True

    def text(self, column: str) -> str:
        """The value of a column, without surrounding spaces."""
        return (self.values.get(column) or "").strip()

    def _fail(self, column: str, message: str) -> None:
        self.ok = False
        self.problems.add(self.line, column, message)

    def number(self, column: str, low: float, high: float, *, whole: bool = False,
               optional: bool = False) -> float | int | None:
        """A number from low to high; None when missing and optional (an error otherwise)."""
        raw = self.text(column)
        kind = "a whole number" if whole else "a number"
        if raw.upper() in MISSING:
            if not optional:
                self._fail(column, f"no value; expected {kind} from {low:g} to {high:g}")
            return None
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or (whole and not value.is_integer()) or not low <= value <= high:
            hint = " (use '.' as the decimal mark)" if "," in raw else ""
            self._fail(column, f"{raw!r} is not {kind} from {low:g} to {high:g}{hint}")
            return None
        return int(value) if whole else value

    def choice(self, column: str, accepted: Sequence[str]) -> str | None:
        """One of the accepted values (an error otherwise)."""
        raw = self.text(column)
        if raw not in accepted:
            self._fail(column, f"{raw!r} is not one of {', '.join(accepted)}")
            return None
        return raw

    def problem(self, column: str, message: str) -> None:
        """Report a problem the loader found with a value of this row."""
        self._fail(column, message)


def read_rows(path: Path, required: Sequence[str], renamed: Mapping[str, str] | None = None) -> Iterator[Row]:
    """The data lines of a CSV file with the required columns, as Rows; DataFileError for an unusable file.

    ``renamed`` maps hrdd's column names to the file's (datasets.yaml ``columns``), so a release that
    renames a column can be used as published. Problems in values are collected in the Rows' Problems;
    the caller raises them once the file is read.
    """
    text = _decode(path)
    problems = Problems(path)
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise DataFileError(f"{path}: the file is empty; expected a header line naming the columns "
                            f"{', '.join(required)}, then one line per country and year")
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [h.strip() for h in next(reader)]
    to_ours = {theirs: ours for ours, theirs in (renamed or {}).items()}
    header = [to_ours.get(h, h) for h in header]
    _check_header(path, header, required, renamed or {})
    rows_seen = 0
    for fields in reader:
        if not any(f.strip() for f in fields):
            continue
        rows_seen += 1
        if len(fields) != len(header):
            problems.add(reader.line_num, None, f"{len(fields)} values where the header names {len(header)} columns")
            continue
        row = Row(reader.line_num, dict(zip(header, fields, strict=True)), problems)
        yield row
    if not rows_seen:
        raise DataFileError(f"{path}: the file has a header but no data lines")


def _decode(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFileError(f"{path}: cannot be read ({exc.strerror})") from exc
    try:
        # A UTF-8 byte order mark (Excel's "CSV UTF-8") is not part of the first column's name.
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise DataFileError(f"{path}: line {line}: byte 0x{raw[exc.start]:02x} is not UTF-8 text; save the file "
                            f"as UTF-8 (in Excel: CSV UTF-8)") from None


def _check_header(path: Path, header: list[str], required: Sequence[str], renamed: Mapping[str, str]) -> None:
    doubled = sorted({h for h in header if header.count(h) > 1})
    if doubled:
        raise DataFileError(f"{path}: line 1: column(s) {', '.join(map(repr, doubled))} appear more than once")
    missing = [c for c in required if c not in header]
    if not missing:
        return
    if len(header) == 1:
        for sep in (";", "\t", "|"):
            if sep in header[0] and set(required) <= {h.strip() for h in header[0].split(sep)}:
                shown = "tab" if sep == "\t" else repr(sep)
                raise DataFileError(f"{path}: line 1: the columns are separated by {shown}, not ','; save the file as "
                                    f"comma-separated CSV (in Excel: CSV UTF-8 (Comma delimited))")
    described = []
    for column in missing:
        file_name = renamed.get(column, column)
        close = difflib.get_close_matches(file_name, header, n=1, cutoff=0.6) or [
            h for h in header if h.lower() == file_name.lower()]
        described.append(repr(file_name) + (f" (the file has {close[0]!r})" if close else ""))
    raise DataFileError(f"{path}: line 1: no column {', '.join(described)}; the file's columns are "
                        f"{', '.join(header[:12])}{' …' if len(header) > 12 else ''}. Rename the column in the "
                        f"file, or map it in datasets.yaml (columns: {{{missing[0]}: NAME IN THE FILE}})")
