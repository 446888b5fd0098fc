"""Step 3: laws restricting civic space and weak rule of law in every country the deal touches."""

from __future__ import annotations

from hrdd.flags import implicating, make_flag
from hrdd.hookspecs import hookimpl
from hrdd.model import tier_rank


def _reason(transaction, context) -> tuple[tuple[str, str], ...] | None:
    """Why step 3 applies: () for the end-user itself, the (sku, capability) pairs of tier min_tier or above
    when only the capabilities make it apply, None when it does not apply."""
    eu = transaction.end_user
    if eu.is_government or eu.is_security_sector:
        return ()
    min_tier = context.policy.section("step3").get("min_tier", "medium")
    if tier_rank(context.max_tier(transaction)) < tier_rank(min_tier):
        return None
    return context.capabilities_at_least(transaction, min_tier)


@hookimpl
def hrdd_check(transaction, context):
    """Raise RF-3.1 (civic space) and RF-3.2 (rule of law) per end-user and deployment country."""
    because = _reason(transaction, context)
    if because is None:
        return []
    countries = (transaction.end_user.country, *transaction.deployment_countries)
    # For a government or security-sector end-user the flags depend only on the countries, which
    # tailoring leaves alone; otherwise they name the capabilities that make the country a question, so
    # tailoring can show the deal without each.
    return context.memo(("step3", countries, because), lambda: _country_flags(countries, because, context))


def _country_flags(countries: tuple[str, ...], because: tuple[tuple[str, str], ...], context) -> list:
    rules = context.policy.section("step3")
    implicated = implicating(because) if because else {}
    civic, law = rules.get("civic_space", {}), rules.get("rule_of_law", {})
    flags = []
    for code in dict.fromkeys(countries):
        p = context.reference.country(code)
        if p.fiw and p.fiw.civic_space is not None:
            de = p.fiw.civic_space
            sev = "high" if de <= civic.get("high_at_most", 10) else (
                "medium" if de <= civic.get("medium_at_most", 16) else None)
            if sev:
                flag = make_flag(context, "RF-3.1",
                                 f"{p.name}: Freedom in the World {p.fiw.edition} freedom of expression and "
                                 f"associational rights (D+E) {de}/28 (high at <= {civic.get('high_at_most')}, "
                                 f"medium at <= {civic.get('medium_at_most')}).", country=code, fiw_d_e=de, **implicated)
                flag.severity = sev
                flags.append(flag)
        reasons, sev = [], None
        f_score = p.fiw.rule_of_law if p.fiw else None
        pct = p.wgi.rule_of_law_percentile if p.wgi else None
        if f_score is not None and f_score <= law.get("fiw_f_high_at_most", 5):
            sev, reasons = "high", reasons + [f"FIW {p.fiw.edition} rule of law (F) {f_score}/16"]
        if pct is not None and pct < law.get("wgi_percentile_high_below", 20):
            sev, reasons = "high", reasons + [f"WGI {p.wgi.year} rule of law percentile {pct:.1f}"]
        if sev is None:
            if f_score is not None and f_score <= law.get("fiw_f_medium_at_most", 8):
                sev, reasons = "medium", reasons + [f"FIW {p.fiw.edition} rule of law (F) {f_score}/16"]
            if pct is not None and pct < law.get("wgi_percentile_medium_below", 40):
                sev, reasons = "medium", reasons + [f"WGI {p.wgi.year} rule of law percentile {pct:.1f}"]
        if sev:
            flag = make_flag(context, "RF-3.2", f"{p.name}: " + "; ".join(reasons) + ".",
                             country=code, fiw_f=f_score, wgi_rule_of_law_percentile=pct, **implicated)
            flag.severity = sev
            flags.append(flag)
    return flags
