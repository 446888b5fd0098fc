"""Read restricted-party list files: the official CSL CSV, the shipped compiled list, simple lists."""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from hrdd.parties.countries import country_code
from hrdd.parties.entries import ListEntry
from hrdd.parties.normalize import default_normaliser

FORMATS = ("csl", "compiled", "simple")

CSL_COLUMNS = (
    "_id,source,entity_number,type,programs,name,title,addresses,federal_register_notice,start_date,"
    "end_date,standard_order,license_requirement,license_policy,call_sign,vessel_type,gross_tonnage,"
    "gross_registered_tonnage,vessel_flag,vessel_owner,remarks,source_list_url,alt_names,citizenships,"
    "dates_of_birth,nationalities,places_of_birth,source_information_url,ids"
).split(",")
CSL_REQUIRED = ("source", "name", "alt_names", "addresses")
COMPILED_COLUMNS = ("list_id", "list_name", "authority", "jurisdiction", "name", "name_native", "aliases",
                    "countries_iso2", "listing_code", "source_file", "source_row", "record_id")
SIMPLE_COLUMNS = ("name", "aliases", "country")

_TWO_LETTERS = re.compile(r"^[A-Z]{2}$")


class ListFormatError(ValueError):
    """A list file that cannot be loaded; the message names the line and the problem."""


@dataclass(frozen=True)
class LoadedList:
    """The entries read from one file, with its format and SHA-256."""

    format: str
    entries: tuple[ListEntry, ...]
    sha256: str
    source_file: str


def load_file(path: str | Path, fmt: str | None = None, list_name: str | None = None) -> LoadedList:
    """Read a list file (format detected from the header when not given); all or nothing."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ListFormatError(f"{path}: cannot be read ({exc.strerror})") from exc
    return load_bytes(raw, fmt, source_file=path.name, list_name=list_name or path.stem)


def load_bytes(raw: bytes, fmt: str | None = None, source_file: str = "<upload>",
               list_name: str | None = None) -> LoadedList:
    """Parse list content; raises ListFormatError naming the line of the first problem.

    ``list_name`` names the list in matches when the format carries no list name of its own (simple).
    """
    text = _decode(raw, source_file)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ListFormatError(f"{source_file}: the file is empty") from None
    except csv.Error as exc:
        raise ListFormatError(f"{source_file}: line 1: {exc}") from None
    header = [h.strip().lstrip("\ufeff") for h in header]
    fmt = fmt or detect_format(header)
    if fmt not in FORMATS:
        raise ListFormatError(
            f"{source_file}: line 1: header not recognised as any list format ({', '.join(FORMATS)}); "
            f"the simple format needs the columns {','.join(SIMPLE_COLUMNS)}")
    required = {"csl": CSL_REQUIRED, "compiled": COMPILED_COLUMNS, "simple": ("name",)}[fmt]
    missing = [c for c in required if c not in header]
    if missing:
        raise ListFormatError(f"{source_file}: line 1: missing column(s) {', '.join(missing)} for format {fmt}")
    parse = {"csl": _csl_entry, "compiled": _compiled_entry,
             "simple": lambda r: _simple_entry(r, list_name or source_file)}[fmt]
    entries = list(_parse_rows(reader, header, parse, source_file))
    if not entries:
        raise ListFormatError(f"{source_file}: no entries after the header")
    return LoadedList(fmt, tuple(_unique_ids(entries)), hashlib.sha256(raw).hexdigest(), source_file)


def detect_format(header: list[str]) -> str | None:
    """Which list format a header row belongs to, or None."""
    columns = set(header)
    if {"source", "name", "alt_names"} <= columns:
        return "csl"
    if {"list_id", "record_id", "name"} <= columns:
        return "compiled"
    if "name" in columns and columns <= set(SIMPLE_COLUMNS):
        return "simple"
    return None


def _decode(raw: bytes, source_file: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ListFormatError(f"{source_file}: line {line}: not valid UTF-8 (byte {exc.start})") from None


def _parse_rows(reader, header: list[str], parse: Callable[[dict[str, str]], ListEntry],
                source_file: str) -> Iterator[ListEntry]:
    line = reader.line_num + 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ListFormatError(f"{source_file}: line {line}: {exc}") from None
        if not any(cell.strip() for cell in row):
            line = reader.line_num + 1
            continue
        if len(row) != len(header):
            raise ListFormatError(
                f"{source_file}: line {line}: expected {len(header)} fields, found {len(row)}")
        record = {k: v.strip() for k, v in zip(header, row, strict=True)}
        if not record.get("name"):
            raise ListFormatError(f"{source_file}: line {line}: the name is empty")
        try:
            yield parse(record)
        except ValueError as exc:
            raise ListFormatError(f"{source_file}: line {line}: {exc}") from None
        line = reader.line_num + 1


def _split(value: str | None, sep: str = ";") -> tuple[str, ...]:
    return tuple(dict.fromkeys(p.strip() for p in (value or "").split(sep) if p.strip()))


def _codes(values, strict: bool) -> tuple[str, ...]:
    out: dict[str, None] = {}
    for value in values:
        code = country_code(value)
        if code:
            out.setdefault(code, None)
        elif strict:
            raise ValueError(f"unknown country {value!r}")
    return tuple(out)


def _csl_entry(r: dict[str, str]) -> ListEntry:
    # The country is the last comma-separated part of each address (an ISO code in the official file).
    address_countries = [a.rsplit(",", 1)[-1] for a in _split(r.get("addresses"))]
    countries = _codes([*address_countries, *_split(r.get("nationalities")), *_split(r.get("citizenships"))],
                       strict=False)
    entry_id = r.get("_id") or (f"{r['source']}:{r['entity_number']}" if r.get("entity_number") else "")
    extra = {k: r[k] for k in ("license_requirement", "license_policy", "end_date", "title") if r.get(k)}
    if r.get("addresses"):
        extra["addresses"] = list(_split(r["addresses"]))
    return ListEntry(
        entry_id=entry_id or _derived_id("csl", r["source"], r["name"]),
        list=r.get("source") or "Consolidated Screening List", name=r["name"],
        aliases=_split(r.get("alt_names")), countries=countries, type=r.get("type") or None,
        programs=r.get("programs") or None, federal_register_notice=r.get("federal_register_notice") or None,
        source=None, source_url=r.get("source_information_url") or r.get("source_list_url") or None,
        start_date=r.get("start_date") or None, remarks=r.get("remarks") or None, extra=extra)


def _compiled_entry(r: dict[str, str]) -> ListEntry:
    codes = _split(r["countries_iso2"])
    bad = [c for c in codes if not _TWO_LETTERS.match(c)]
    if bad:
        raise ValueError(f"countries_iso2 {bad[0]!r} is not a two-letter code")
    source = f"{r['authority']}, {r['source_file']} row {r['source_row']}".strip(", ")
    extra = {"list_id": r["list_id"], "jurisdiction": r["jurisdiction"]}
    if r.get("listing_code"):
        extra["listing_code"] = r["listing_code"]
    return ListEntry(
        entry_id=r["record_id"] or _derived_id("compiled", r["list_id"], r["name"]), list=r["list_name"],
        name=r["name"], aliases=_split(r["aliases"]), native_names=_split(r["name_native"]),
        countries=codes, source=source, extra=extra)


def _simple_entry(r: dict[str, str], list_name: str) -> ListEntry:
    countries = _codes(_split(r.get("country")), strict=True)
    return ListEntry(entry_id=_derived_id("own", default_normaliser().normalise(r["name"]).key or r["name"],
                                          ";".join(countries)),
                     list=list_name, name=r["name"], aliases=_split(r.get("aliases")), countries=countries)


def _derived_id(*parts: str) -> str:
    """A stable id for lists without one, so false-positive decisions survive a reload."""
    return f"{parts[0]}-" + hashlib.sha1("\x1f".join(parts).encode("utf-8")).hexdigest()[:16]


def _unique_ids(entries: list[ListEntry]) -> Iterator[ListEntry]:
    # The compiled list repeats a few record ids (same name, separate rows); keep each row distinct.
    seen: dict[str, int] = {}
    for entry in entries:
        count = seen.get(entry.entry_id, 0) + 1
        seen[entry.entry_id] = count
        if count == 1:
            yield entry
        else:
            yield ListEntry.from_dict({**entry.to_dict(), "entry_id": f"{entry.entry_id}~{count}"})
