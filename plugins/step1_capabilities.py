"""Step 1: the product's capabilities and how they could be misused (RF-1.1 to RF-1.4)."""

from __future__ import annotations

from hrdd.flags import make_flag
from hrdd.hookspecs import hookimpl
from hrdd.model import tier_rank


def _destinations(transaction) -> list[str]:
    return list(dict.fromkeys([transaction.end_user.country, *transaction.deployment_countries]))


@hookimpl
def hrdd_answer_ids():
    """The checklist answer this check reads."""
    return ("past_misuse",)


@hookimpl
def hrdd_check(transaction, context):
    """Raise step-1 flags from capability tiers, destinations and the past-misuse answer."""
    ref = context.reference
    flags = []
    eu = transaction.end_user
    if transaction.answer("past_misuse") == "yes":
        flags.append(make_flag(context, "RF-1.1",
                               f"Checklist answer past_misuse = yes for end-user {eu.name} ({eu.country}).",
                               answer="past_misuse"))

    profiles = [ref.country(c) for c in _destinations(transaction)]
    high_countries = [p for p in profiles if p.tier == "high"]
    elevated_eu = ref.country(eu.country).tier == "elevated" and eu.is_security_sector
    for item in transaction.items:
        for cap_id in item.capabilities:
            cap = ref.capability(cap_id)
            if tier_rank(cap.tier) >= tier_rank("high") and (high_countries or elevated_eu):
                where = "; ".join(p.figures() + f" (tier {p.tier})" for p in high_countries) if high_countries else (
                    f"security-sector end-user ({eu.sector}) in {ref.country(eu.country).figures()} (tier elevated)")
                flags.append(make_flag(context, "RF-1.2",
                                       f"{item.name} ({item.sku}) carries {cap.title} (tier {cap.tier}) to {where}.",
                                       items=[item.sku], capabilities=[cap_id],
                                       countries=[p.code for p in high_countries] or [eu.country]))
            if cap.tier == "critical":
                flags.append(make_flag(context, "RF-1.4",
                                       f"{item.name} ({item.sku}) carries {cap.title}, a critical-tier capability; "
                                       f"typical controls: {', '.join(cap.control_codes)}.",
                                       items=[item.sku], capabilities=[cap_id]))
        item_tier = max((ref.capability(c).tier for c in item.capabilities), key=tier_rank, default="low")
        if item.component_of_surveillance_system:
            flags.append(make_flag(context, "RF-1.3",
                                   f"{item.name} ({item.sku}) is declared a critical component of a surveillance system.",
                                   items=[item.sku], capabilities=list(item.capabilities)))
        elif eu.is_security_sector and tier_rank(item_tier) <= tier_rank("medium"):
            flags.append(make_flag(context, "RF-1.3",
                                   f"{item.name} ({item.sku}, tier {item_tier}) goes to a security-sector end-user "
                                   f"({eu.sector}); it may be used for surveillance it was not designed for.",
                                   items=[item.sku], capabilities=[c for c in item.capabilities if c != "none"]))
    return flags
