"""Step 4: stakeholders — undisclosed end-users, government links, embargoes and diversion (RF-4.1/2/4/5)."""

from __future__ import annotations

import re
from functools import lru_cache

from hrdd.flags import implicating, make_flag
from hrdd.hookspecs import hookimpl
from hrdd.model import tier_rank

INTERMEDIARY_ROLES = ("distributor", "reseller", "integrator", "agent", "consignee")


_NOT_WORD = re.compile(r"[\W_]+")


def _bare(text: str) -> str:
    return " ".join(_NOT_WORD.sub(" ", text.casefold()).split())


@lru_cache(maxsize=16)
def _placeholders(names: tuple) -> frozenset[str]:
    return frozenset(_bare(str(n)) for n in names)


def _end_user_unknown(eu, policy) -> bool:
    name = _bare(eu.name)
    if eu.type == "unknown" or not name:
        return True
    return name in _placeholders(tuple(policy.section("stakeholders").get("placeholder_end_user_names") or ()))


@hookimpl
def hrdd_answer_ids():
    """The checklist answer this check reads."""
    return ("end_user_disclosed",)


@hookimpl
def hrdd_check(transaction, context):
    """Raise step-4 flags from the parties, the end-user disclosure answer and the embargo list."""
    ref = context.reference
    eu = transaction.end_user
    flags = []
    intermediaries = [p for p in transaction.parties if p.role in INTERMEDIARY_ROLES]
    undisclosed = transaction.answer("end_user_disclosed") == "no"
    if intermediaries and (undisclosed or _end_user_unknown(eu, context.policy)):
        why = "end_user_disclosed = no" if undisclosed else f"end-user recorded as {eu.name!r} ({eu.type})"
        names = ", ".join(f"{p.name} ({p.role}, {p.country or 'country not given'})" for p in intermediaries)
        flags.append(make_flag(context, "RF-4.1", f"Sale through {names}; ultimate end-user not known: {why}.",
                               parties=[p.name for p in intermediaries]))

    linked = [p for p in transaction.parties if p.government_linked]
    if eu.type == "government_linked" or linked:
        who = ([f"end-user {eu.name} (government-linked)"] if eu.type == "government_linked" else []) + [
            f"{p.role} {p.name} (declared government-linked)" for p in linked]
        flags.append(make_flag(context, "RF-4.2", "Close government links: " + "; ".join(who) + ".",
                               parties=[p.name for p in linked]))

    min_tier = context.policy.section("embargo").get("surveillance_min_tier", "medium")
    surveillance = tier_rank(context.max_tier(transaction)) >= tier_rank(min_tier)
    touched = [("end-user", eu.name, eu.country)] + [(p.role, p.name, p.country) for p in transaction.parties
                                                     if p.country] + [
        ("deployment", None, c) for c in transaction.deployment_countries]
    # A surveillance-only embargo applies because of the surveillance items: naming them lets tailoring
    # work out the deal without each one.
    surveillance_items = implicating(context.capabilities_at_least(transaction, min_tier)) if surveillance else {}
    for role, name, code in touched:
        embargo = ref.embargo(code)
        if embargo and (embargo.scope == "all" or surveillance):
            scope = "all items" if embargo.scope == "all" else "surveillance items"
            because = {} if embargo.scope == "all" else surveillance_items
            flags.append(make_flag(context, "RF-4.4",
                                   f"{ref.country(code).name} ({code}), {f'{role} {name}' if name else 'deployment country'}: "
                                   f"embargoed for {scope} "
                                   f"since {embargo.since} ({embargo.authority}; {embargo.source}).",
                                   country=code, role=role, **because))

    diverted = [(f"consignee {p.name}", p.country) for p in transaction.parties
                if p.role == "consignee" and p.country and p.country != eu.country]
    diverted += [("deployment", c) for c in transaction.deployment_countries if c != eu.country]
    if diverted:
        where = "; ".join(f"{what} in {ref.country(c).name} ({c})" for what, c in diverted)
        flags.append(make_flag(context, "RF-4.5",
                               f"End-user {eu.name} is in {ref.country(eu.country).name} ({eu.country}) but {where}.",
                               countries=sorted({c for _, c in diverted})))
    return flags

