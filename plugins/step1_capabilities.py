"""Step 1: the product's capabilities and how they could be misused (RF-1.1 to RF-1.4)."""

from __future__ import annotations

from hrdd.flags import ITEMS_NAMED, make_flag, name_items
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
    """Raise step-1 flags from capability tiers, destinations and the past-misuse answer.

    RF-1.2 and RF-1.4 are raised once per capability and RF-1.3 once per reason, each naming every item
    concerned, so a bill of materials repeating one capability adds SKUs to a flag rather than flags.
    """
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
    carriers: dict[str, list] = {}
    components, unintended = [], []
    for item in transaction.items:
        for cap_id in item.capabilities:
            carriers.setdefault(cap_id, []).append(item)
        if item.component_of_surveillance_system:
            components.append(item)
        elif eu.is_security_sector:
            item_tier = max((ref.capability(c).tier for c in item.capabilities), key=tier_rank, default="low")
            if tier_rank(item_tier) <= tier_rank("medium"):
                unintended.append((item, item_tier))

    where = None
    for cap_id, cap_items in carriers.items():
        cap = ref.capability(cap_id)
        skus = _skus(cap_items)
        if tier_rank(cap.tier) >= tier_rank("high") and (high_countries or elevated_eu):
            if where is None:
                where = _figures(high_countries) if high_countries else (
                    f"security-sector end-user ({eu.sector}) in {ref.country(eu.country).figures()} (tier elevated)")
            flags.append(make_flag(context, "RF-1.2",
                                   f"{name_items(cap_items)} {_carry(cap_items)} {cap.title} (tier {cap.tier}) "
                                   f"to {where}.",
                                   items=skus, capabilities=[cap_id],
                                   countries=[p.code for p in high_countries] or [eu.country]))
        if cap.tier == "critical":
            flags.append(make_flag(context, "RF-1.4",
                                   f"{name_items(cap_items)} {_carry(cap_items)} {cap.title}, a critical-tier "
                                   f"capability; typical controls: {', '.join(cap.control_codes)}.",
                                   items=skus, capabilities=[cap_id]))
    if components:
        flags.append(make_flag(context, "RF-1.3",
                               f"{name_items(components)} {_be(components)} declared a critical component of a "
                               f"surveillance system.",
                               items=_skus(components), capabilities=_capabilities(components)))
    if unintended:
        named = name_items([item for item, _ in unintended],
                           detail={item.sku: f"tier {tier}" for item, tier in unintended})
        verb = "goes" if len(unintended) == 1 else "go"
        flags.append(make_flag(context, "RF-1.3",
                               f"{named} {verb} to a security-sector end-user ({eu.sector}); "
                               f"{'it' if len(unintended) == 1 else 'they'} may be used for surveillance "
                               f"{'it was' if len(unintended) == 1 else 'they were'} not designed for.",
                               items=_skus(item for item, _ in unintended),
                               capabilities=_capabilities(item for item, _ in unintended)))
    return flags


def _figures(profiles) -> str:
    # Every flag of the deal repeats this; past a few countries the rest are named in data.countries.
    quoted = "; ".join(p.figures() + f" (tier {p.tier})" for p in profiles[:ITEMS_NAMED])
    rest = len(profiles) - ITEMS_NAMED
    return quoted + (f"; and {rest} more high-risk countr{'ies' if rest > 1 else 'y'} (see data.countries)"
                     if rest > 0 else "")


def _skus(items) -> list[str]:
    return list(dict.fromkeys(item.sku for item in items))


def _capabilities(items) -> list[str]:
    return list(dict.fromkeys(c for item in items for c in item.capabilities if c != "none"))


def _carry(items) -> str:
    return "carries" if len(items) == 1 else "carry"


def _be(items) -> str:
    return "is" if len(items) == 1 else "are"
