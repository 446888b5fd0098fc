"""RF-0.1: information needed to screen is missing (country data gaps, unknown end-user type)."""

from __future__ import annotations

from hrdd.flags import make_flag
from hrdd.hookspecs import hookimpl


@hookimpl
def hrdd_check(transaction, context):
    """Never treat a gap as low risk: ask for the missing information instead."""
    eu = transaction.end_user
    # The end-user and the countries only: the tailoring re-runs reuse the flag.
    return context.memo(("RF-0.1", eu.name, eu.country, eu.type, transaction.deployment_countries),
                        lambda: _gap_flags(transaction, context))


def _gap_flags(transaction, context) -> list:
    gaps = []
    eu = transaction.end_user
    for code in dict.fromkeys([eu.country, *transaction.deployment_countries]):
        profile = context.reference.country(code)
        if profile.gaps:
            gaps.append(f"{profile.name} ({code}) has no {', no '.join(profile.gaps)} data in the shipped datasets")
    if eu.type == "unknown":
        gaps.append(f"end-user type of {eu.name!r} is unknown")
    if not gaps:
        return []
    return [make_flag(context, "RF-0.1", "Missing: " + "; ".join(gaps) + ". Provide the information or an "
                      "alternative source before relying on this screening.", gaps=gaps)]
