"""Step 3: laws restricting civic space and weak rule of law in every country the deal touches."""

from __future__ import annotations

from hrdd.flags import make_flag
from hrdd.hookspecs import hookimpl
from hrdd.model import tier_rank


def _applies(transaction, context) -> bool:
    rules = context.policy.section("step3")
    eu = transaction.end_user
    return (tier_rank(context.max_tier(transaction)) >= tier_rank(rules.get("min_tier", "medium"))
            or eu.is_government or eu.is_security_sector)


@hookimpl
def hrdd_check(transaction, context):
    """Raise RF-3.1 (civic space) and RF-3.2 (rule of law) per end-user and deployment country."""
    if not _applies(transaction, context):
        return []
    countries = (transaction.end_user.country, *transaction.deployment_countries)
    # The flags depend only on the countries, which tailoring leaves alone.
    return context.memo(("step3", countries), lambda: _country_flags(countries, context))


def _country_flags(countries: tuple[str, ...], context) -> list:
    rules = context.policy.section("step3")
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
                                 f"medium at <= {civic.get('medium_at_most')}).", country=code, fiw_d_e=de)
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
                             country=code, fiw_f=f_score, wgi_rule_of_law_percentile=pct)
            flag.severity = sev
            flags.append(flag)
    return flags
