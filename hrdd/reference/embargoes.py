"""The dated, sourced list of embargoed destinations: each entry applies from its date, until it is lifted."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import pycountry

from hrdd.reference.tables import DataFileError, read_yaml

SCOPES = ("all", "surveillance")
REQUIRED = ("country", "scope", "since", "authority", "source")
OPTIONAL = ("until", "lifted_by", "note")
# Kosovo has no ISO 3166-1 entry; XK is the code the rest of hrdd uses for it.
_KNOWN = {c.alpha_2 for c in pycountry.countries} | {"XK"}


@dataclass(frozen=True)
class Embargo:
    """One embargoed country with its scope, dates and authority (``until``: the day it was lifted)."""

    country: str
    scope: str  # all | surveillance
    since: str
    authority: str
    source: str
    until: str | None = None
    lifted_by: str | None = None

    def in_force(self, on: dt.date) -> bool:
        """True on the days from ``since`` up to, not including, ``until``."""
        return self.since <= on.isoformat() and (self.until is None or on.isoformat() < self.until)


def _date(path: Path, n: int, key: str, value) -> str:
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value)).isoformat()
    except ValueError:
        raise DataFileError(f"{path}: entry {n}: {key} {value!r} is not a date (YYYY-MM-DD)") from None


def load_embargoes(path: Path) -> tuple[dict[str, tuple[Embargo, ...]], str]:
    """Load the embargo file: each country's entries, oldest first; errors name the file, entry and key."""
    data = read_yaml(path) or {}
    out: dict[str, list[Embargo]] = {}
    for n, entry in enumerate(data.get("entries") or (), start=1):
        if not isinstance(entry, dict):
            raise DataFileError(f"{path}: entry {n} must be a mapping with {', '.join(REQUIRED)}")
        unknown = sorted(set(entry) - set(REQUIRED) - set(OPTIONAL))
        if unknown:
            raise DataFileError(f"{path}: entry {n}: unknown key(s) {', '.join(unknown)}; the keys are "
                                f"{', '.join(REQUIRED + OPTIONAL)}")
        missing = [k for k in REQUIRED if not entry.get(k)]
        if missing:
            raise DataFileError(f"{path}: entry {n} is missing {', '.join(missing)}")
        if entry["scope"] not in SCOPES:
            raise DataFileError(f"{path}: entry {n}: scope {entry['scope']!r} is not one of {', '.join(SCOPES)}")
        country = str(entry["country"]).strip().upper()
        if country not in _KNOWN:
            raise DataFileError(f"{path}: entry {n}: country {entry['country']!r} is not an ISO 3166-1 alpha-2 "
                                f"code (e.g. IR; quote NO as 'NO')")
        since = _date(path, n, "since", entry["since"])
        until = _date(path, n, "until", entry["until"]) if entry.get("until") else None
        if until is not None and until <= since:
            raise DataFileError(f"{path}: entry {n}: until {until} is not after since {since}")
        embargo = Embargo(country, entry["scope"], since, str(entry["authority"]), str(entry["source"]), until,
                          entry.get("lifted_by"))
        for other in out.get(country, ()):
            if other.since < (until or "9999") and since < (other.until or "9999"):
                raise DataFileError(f"{path}: entry {n}: {country} from {since} overlaps the entry from "
                                    f"{other.since}; give the earlier one an until date")
        out.setdefault(country, []).append(embargo)
    return ({c: tuple(sorted(v, key=lambda e: e.since)) for c, v in out.items()},
            str(data.get("version", "unversioned")))
