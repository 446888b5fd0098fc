"""Country names to ISO 3166-1 alpha-2: exact names only (ISO's, their common forms and a curated alias file).

CRMs send "Turkey", "UK", "Democratic Republic of the Congo" or "Korea, Republic of"; each must land on one
code or be refused. Nothing is guessed: a region or city ("Xinjiang", "Donetsk", "Paris") is refused rather
than mapped to a country, because who controls a territory decides which embargo and which figures apply,
and a name that fits two countries ("Congo", "Korea") is refused with both codes named.
"""

from __future__ import annotations

import re
from pathlib import Path

import pycountry
from anyascii import anyascii
from rapidfuzz import fuzz, process

from hrdd.reference.tables import read_yaml

NAMES_FILE = "country_names.yaml"
_NOT_WORD = re.compile(r"[^a-z0-9 ]+")
_PARENTHESIS = re.compile(r"\s*\([^)]*\)")


def fold(name: str) -> str:
    """The form names are compared in: ASCII, lower case, '&' as 'and', 'St' as 'Saint', no 'the' first."""
    text = anyascii(name).lower().replace("&", " and ").replace("-", " ").replace(",", " ")
    words = _NOT_WORD.sub("", text).split()
    words = ["saint" if w == "st" else w for w in words]
    if words and words[0] == "the":
        words = words[1:]
    return " ".join(words)


def _iso_names(country) -> list[str]:
    names = [getattr(country, attr, None) for attr in ("name", "official_name", "common_name")]
    out = []
    for name in filter(None, names):
        out.append(name)
        if ", " in name:  # "Korea, Republic of" is also written "Republic of Korea"
            head, _, tail = name.partition(", ")
            out.append(f"{tail} {head}")
        if "(" in name:  # "Falkland Islands (Malvinas)" is also written "Falkland Islands"
            out.append(_PARENTHESIS.sub("", name))
    return out


class CountryNameIndex:
    """Folded name -> the alpha-2 codes it names (one code, or several for an ambiguous name)."""

    def __init__(self, extra: dict[str, str], aliases: dict[str, str], ambiguous: dict[str, list[str]]):
        self.codes: dict[str, set[str]] = {}
        self.display: dict[str, str] = {}
        for country in pycountry.countries:
            self.display[country.alpha_2] = getattr(country, "common_name", None) or country.name
            for name in _iso_names(country):
                self._add(name, country.alpha_2)
        for code, name in extra.items():
            self.display[code] = name
            self._add(name, code)
        # The curated file wins over what ISO's names generate: it is where a wrong or missing form is fixed.
        for name, code in aliases.items():
            self.codes[fold(name)] = {code}
        for name, codes in ambiguous.items():
            self.codes[fold(name)] = set(codes)

    def _add(self, name: str, code: str) -> None:
        key = fold(name)
        if key:
            self.codes.setdefault(key, set()).add(code)

    def lookup(self, name: str) -> set[str]:
        """The codes a name stands for (empty when it names no country)."""
        return self.codes.get(fold(name), set())

    def suggest(self, name: str) -> list[str]:
        """Up to three codes whose names are spelled closely like ``name`` (for an error message)."""
        found = process.extract(fold(name), list(self.codes), scorer=fuzz.ratio, limit=3, score_cutoff=75)
        return list(dict.fromkeys(code for key, _, _ in found for code in sorted(self.codes[key])))

    def describe(self, code: str) -> str:
        """e.g. "CD (Congo, The Democratic Republic of the)"."""
        return f"{code} ({self.display.get(code, code)})"


def load_name_file(data_dir: Path | None, known_codes: set[str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The aliases and ambiguous names of ``data_dir/country_names.yaml`` (none when the file is absent).

    Raises ValueError naming the entry when a code is not a known alpha-2 code.
    """
    path = Path(data_dir) / NAMES_FILE if data_dir else None
    if path is None or not path.exists():
        return {}, {}
    data = read_yaml(path) or {}
    aliases = {str(k): str(v).upper() for k, v in (data.get("names") or {}).items()}
    ambiguous = {str(k): [str(c).upper() for c in v] for k, v in (data.get("ambiguous") or {}).items()}
    for name, code in aliases.items():
        if code not in known_codes:
            raise ValueError(f"{path}: names: {name!r} maps to {code!r}, which is not an ISO 3166-1 alpha-2 code")
    for name, codes in ambiguous.items():
        unknown = [c for c in codes if c not in known_codes]
        if unknown or len(codes) < 2:
            raise ValueError(f"{path}: ambiguous: {name!r} must list two or more alpha-2 codes (got {codes})")
    return aliases, ambiguous


def region_of(name: str) -> str | None:
    """The alpha-2 code of the country that has a region (province, state, oblast) of exactly this name."""
    found = _subdivision_names().get(fold(name), set())
    return next(iter(found)) if len(found) == 1 else None


_SUBDIVISION_NAMES: dict[str, set[str]] = {}


def _subdivision_names() -> dict[str, set[str]]:
    # Only read on the error path: thousands of entries, not worth folding for names that are accepted.
    if not _SUBDIVISION_NAMES:
        for sub in pycountry.subdivisions:
            _SUBDIVISION_NAMES.setdefault(fold(sub.name), set()).add(sub.country_code)
    return _SUBDIVISION_NAMES
