"""The case queue page's filters read from the query, with a message for each value that is not accepted."""

from __future__ import annotations

import math
import re

from hrdd.workspace.cases import STATUSES

STATUS_CHOICES = {"open": "Undecided", "information_requested": "Information requested",
                  "awaiting_second_approval": "Awaiting a second approval", "decided": "Decided",
                  "all": "All"}
assert set(STATUS_CHOICES) == {*STATUSES, "all"}
MAX_AGE_DAYS = 36500
_COUNTRY = re.compile(r"^[A-Za-z]{2}$")


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def read(args, capabilities: list[str]) -> tuple[dict, int, list[str]]:
    """The filters for ``cases.queue``, the page number, and what was not accepted (one sentence each).

    A value not accepted is left out (the default applies) and named, never read as something else:
    ``?status=bogus`` showed "0 cases" and ``?age=abc`` every case, as if filtered.
    """
    problems = []
    status = args.get("status", "open").strip() or "open"
    if status not in STATUS_CHOICES:
        problems.append(f"Status {status[:40]!r} is not accepted; accepted: {', '.join(STATUS_CHOICES)}. "
                        "Showing undecided cases.")
        status = "open"
    country = args.get("country", "").strip()
    if country and not _COUNTRY.match(country):
        problems.append(f"Country {country[:40]!r} is not accepted: give a two-letter ISO code such as EG. "
                        "Showing every country.")
        country = ""
    capability = args.get("capability", "").strip()
    if capability and capabilities and capability.lower() not in capabilities:
        problems.append(f"Capability {capability[:64]!r} is not accepted; accepted: {', '.join(capabilities)}. "
                        "Showing every capability.")
        capability = ""
    age_text = args.get("age", "").strip()
    age = _number(age_text) if age_text else None
    if age_text and (age is None or not 0 <= age <= MAX_AGE_DAYS):
        problems.append(f"Older than {age_text[:40]!r} days is not accepted: give a number of days from 0 to "
                        f"{MAX_AGE_DAYS}. Showing cases of any age.")
        age = None
    page_text = args.get("page", "").strip()
    page = _number(page_text) if page_text else 1
    if page is None or page < 1 or page != int(page) or page > 10**6:
        problems.append(f"Page {page_text[:40]!r} is not accepted: give a whole number from 1. Showing page 1.")
        page = 1
    filters = {"status": status, "country": country.upper() or None, "capability": capability.lower() or None,
               "min_age_days": age}
    return filters, int(page), problems
