"""Country names and codes to ISO 3166-1 alpha-2, for list files and screening requests."""

from __future__ import annotations

from functools import lru_cache

from hrdd.reference.countries import shipped_codes


@lru_cache(maxsize=4096)
def country_code(value: str | None) -> str | None:
    """The alpha-2 code for a code or country name, or None when it names no country or more than one.

    The same names as screening requests (ISO 3166-1 and data/country_names.yaml), matched exactly: a list
    entry's "Korea" or "Xinjiang" must not silently become a country.
    """
    text = (value or "").strip()
    codes = shipped_codes().resolve(text) if text else set()
    return next(iter(codes)) if len(codes) == 1 else None
