"""Country names and codes to ISO 3166-1 alpha-2, for list files and screening requests."""

from __future__ import annotations

from functools import lru_cache

import pycountry

# Codes in use on restricted-party lists that ISO 3166-1 does not assign.
EXTRA_CODES = {"XK": "Kosovo"}
# Common English names that pycountry does not resolve on its own.
EXTRA_NAMES = {"turkey": "TR", "burma": "MM", "kosovo": "XK", "macau": "MO", "czech republic": "CZ",
               "ivory coast": "CI", "south korea": "KR", "russia": "RU", "vietnam": "VN", "laos": "LA"}


@lru_cache(maxsize=4096)
def country_code(value: str | None) -> str | None:
    """The alpha-2 code for a code or country name, or None when it is not a country."""
    text = (value or "").strip()
    if not text:
        return None
    if text.upper() in EXTRA_CODES:
        return text.upper()
    if text.lower() in EXTRA_NAMES:
        return EXTRA_NAMES[text.lower()]
    try:
        return pycountry.countries.lookup(text).alpha_2
    except LookupError:
        pass
    try:
        found = pycountry.countries.search_fuzzy(text)
    except LookupError:
        return None
    # Only accept an unambiguous answer; "Korea" must not silently become one of the two Koreas.
    return found[0].alpha_2 if len(found) == 1 else None
