"""Step 2: the government end-user's human rights record (RF-2.1 to RF-2.3)."""

from __future__ import annotations

from hrdd.flags import make_flag, name_skus
from hrdd.hookspecs import hookimpl
from hrdd.model import tier_rank


@hookimpl
def hrdd_answer_ids():
    """The checklist answer this check reads."""
    return ("exports_to_abusers",)


@hookimpl
def hrdd_check(transaction, context):
    """Raise step-2 flags from the end-user's type, sector and country, and the exports answer."""
    ref = context.reference
    eu = transaction.end_user
    profile = ref.country(eu.country)
    answer = transaction.answer("exports_to_abusers")
    # RF-2.1 and RF-2.2 do not look at the items: the tailoring re-runs reuse them.
    flags = list(context.memo(("step2", eu.name, eu.country, eu.type, answer),
                              lambda: _record_flags(eu, profile, answer, context)))
    if eu.is_security_sector:
        risky = [(item, ref.capability(c)) for item in transaction.items for c in item.capabilities
                 if tier_rank(ref.capability(c).tier) >= tier_rank("high")]
        if risky:
            key = "RF-2.3-high-country" if profile.tier == "high" else "RF-2.3"
            by_capability: dict = {}
            for item, cap in risky:
                by_capability.setdefault(cap, []).append(item.sku)
            what = ", ".join(f"{cap.title} ({name_skus(skus)})" for cap, skus in by_capability.items())
            flags.append(make_flag(context, "RF-2.3",
                                   f"{eu.name} ({eu.sector.replace('_', ' ')}) would receive {what}. "
                                   f"{profile.figures()} (country tier {profile.tier}).",
                                   severity_key=key, default_severity="high" if profile.tier == "high" else "medium",
                                   items=sorted({i.sku for i, _ in risky}),
                                   capabilities=sorted({c.id for _, c in risky})))
    return flags


def _record_flags(eu, profile, answer: str | None, context) -> list:
    flags = []
    if eu.is_government and profile.tier in ("high", "elevated"):
        key = "RF-2.1" if profile.tier == "high" else "RF-2.1-elevated"
        flags.append(make_flag(context, "RF-2.1",
                               f"{eu.name} is a {eu.type.replace('_', '-')} end-user. {profile.figures()} "
                               f"(country tier {profile.tier}: {', '.join(profile.tier_reasons)}).",
                               severity_key=key, default_severity="high" if profile.tier == "high" else "medium",
                               country=profile.to_dict()))
    if answer == "yes":
        flags.append(make_flag(context, "RF-2.2", f"Checklist answer exports_to_abusers = yes for {eu.name}.",
                               answer="exports_to_abusers"))
    return flags
