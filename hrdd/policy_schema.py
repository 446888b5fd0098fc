"""What the engine's sections of the policy file may hold: each setting's type, range and order, checked at load."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import pycountry
import yaml

SEVERITIES = ("low", "medium", "high", "critical")
TIERS = ("low", "medium", "high", "critical")
COUNTRY_TIERS = ("low", "elevated", "high")
DECISIONS = ("proceed", "proceed_with_safeguards", "escalate", "do_not_proceed")
FIW_STATUSES = ("F", "PF", "NF")
PTS_COLUMNS = ("PTS_A", "PTS_H", "PTS_S")
# Severity keys the built-in checks read (the catalogue ids and their variants). RF-3.1 and RF-3.2 take
# their severity from the step3 thresholds; a plugin's own flags use their own prefix, not "RF-".
SEVERITY_KEYS = ("RF-0.1", "RF-1.1", "RF-1.2", "RF-1.3", "RF-1.4", "RF-2.1", "RF-2.1-elevated", "RF-2.2", "RF-2.3",
                 "RF-2.3-high-country", "RF-4.1", "RF-4.2", "RF-4.3", "RF-4.3-possible", "RF-4.4", "RF-4.5",
                 "RF-6.1", "RF-7.1", "RF-7.1-possible")
# Sections other parts read and check themselves (hrdd.material, the parties, cases and grievances plugins).
OTHER_SECTIONS = ("version", "material_changes", "reviewer_decisions", "reports", "grievances", "parties",
                  "checklists")
_COUNTRIES = {c.alpha_2 for c in pycountry.countries} | {"XK"}

Check = Callable[[Any], str | None]  # the problem with a value, or None


def number(low: float, high: float | None = None, *, whole: bool = False, null: bool = False) -> Check:
    """A number (whole, if asked) from low to high; null allowed if asked."""
    kind = "a whole number" if whole else "a number"
    span = f"from {low:g} to {high:g}" if high is not None else f"of at least {low:g}"

    def check(value):
        if value is None and null:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or (whole and not float(value).is_integer()):
            quoted = " (write it without quotes)" if isinstance(value, str) and _is_number(value) else ""
            return f"{value!r} is not {kind} {span}{quoted}" + (" or null" if null else "")
        if value < low or (high is not None and value > high):
            return f"{value!r} is not {kind} {span}"
        return None
    return check


def one_of(accepted: tuple[str, ...]) -> Check:
    """One of the accepted words."""
    return lambda value: None if value in accepted else f"{value!r} is not one of {', '.join(accepted)}"


def list_of(accepted: tuple[str, ...] | None = None, *, empty: bool = True) -> Check:
    """A list (of the accepted words, if given)."""
    def check(value):
        if not isinstance(value, list) or (not empty and not value):
            return f"{value!r} is not a {'non-empty ' if not empty else ''}list" + (
                f" of {', '.join(accepted)}" if accepted else "")
        wrong = [v for v in value if (v not in accepted if accepted else not isinstance(v, str))]
        if wrong:
            return f"{', '.join(map(repr, wrong))} not accepted; the values are {', '.join(accepted or ('text',))}"
        return None
    return check


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _overrides(value) -> str | None:
    if not isinstance(value, dict):
        return "must map ISO alpha-2 codes to {tier, reason}, e.g. {GE: {tier: high, reason: ...}}"
    for code, entry in value.items():
        if str(code).upper() not in _COUNTRIES or str(code) != str(code).upper():
            return f"{code!r} is not an ISO 3166-1 alpha-2 code in capitals (e.g. GE; quote NO as 'NO')"
        if not isinstance(entry, dict) or set(entry) != {"tier", "reason"}:
            return f"{code}: give exactly tier ({', '.join(COUNTRY_TIERS)}) and reason (why, as it should be quoted)"
        if entry["tier"] not in COUNTRY_TIERS:
            return f"{code}: tier {entry['tier']!r} is not one of {', '.join(COUNTRY_TIERS)}"
        if not isinstance(entry["reason"], str) or not entry["reason"].strip():
            return f"{code}: reason must be text"
    return None


SCHEMA: dict[str, Any] = {
    "country_risk": {
        "high": {"fiw_status": list_of(FIW_STATUSES), "partly_free_with_pts_at_least": number(1, 5, whole=True, null=True)},
        "elevated": {"fiw_status": list_of(FIW_STATUSES), "pts_at_least": number(1, 5, whole=True, null=True),
                     "wgi_rule_of_law_percentile_below": number(0, 100, null=True)},
        "pts_scores": list_of(PTS_COLUMNS, empty=False),
        "overrides": _overrides,
    },
    "embargo": {"surveillance_min_tier": one_of(TIERS)},
    "step3": {
        "min_tier": one_of(TIERS),
        "civic_space": {"high_at_most": number(0, 28, whole=True), "medium_at_most": number(0, 28, whole=True)},
        "rule_of_law": {"fiw_f_high_at_most": number(0, 16, whole=True), "fiw_f_medium_at_most": number(0, 16, whole=True),
                        "wgi_percentile_high_below": number(0, 100), "wgi_percentile_medium_below": number(0, 100)},
    },
    "severities": {key: one_of(SEVERITIES) for key in SEVERITY_KEYS},
    "decision": {"do_not_proceed_on": one_of(SEVERITIES), "escalate_on": one_of(SEVERITIES),
                 "safeguards_on": one_of(SEVERITIES), "safeguards_min_tier_for_government": one_of(TIERS)},
    "tailoring": {"max_item_options": number(1, whole=True)},
    "stakeholders": {"placeholder_end_user_names": list_of()},
    "risk_score": {"weights": {s: number(0) for s in SEVERITIES}, "government_surveillance_floor": number(0, 100)},
    "conditions": {"reviewer_approval_on": list_of(DECISIONS), "rider_on": list_of(DECISIONS),
                   "checklist_questions": list_of()},
}
# (section path, the setting that must be at most the other, the other): thresholds that only make sense in order.
ORDER = (
    (("step3", "civic_space"), "high_at_most", "medium_at_most"),
    (("step3", "rule_of_law"), "fiw_f_high_at_most", "fiw_f_medium_at_most"),
    (("step3", "rule_of_law"), "wgi_percentile_high_below", "wgi_percentile_medium_below"),
)
DECISION_ORDER = ("safeguards_on", "escalate_on", "do_not_proceed_on")
RESERVED_FLAG_NOTE = {"RF-3.1": "step3.civic_space", "RF-3.2": "step3.rule_of_law"}


def problems(data: dict[str, Any]) -> list[str]:
    """Every problem with the engine's sections of a policy: unknown settings, wrong types or ranges, bad order."""
    found: list[str] = []
    for name in data:
        if name not in SCHEMA and name not in OTHER_SECTIONS:
            close = difflib.get_close_matches(str(name), [*SCHEMA, *OTHER_SECTIONS], n=1, cutoff=0.75)
            if close:  # other top-level names are a plugin's own settings
                found.append(f"{name} is not a section (did you mean {close[0]}?)")
    for name, spec in SCHEMA.items():
        if name in data:
            _walk(data[name], spec, name, found)
    _check_order(data, found)
    return found


def _walk(value: Any, spec: Any, path: str, found: list[str]) -> None:
    if callable(spec):
        problem = spec(value)
        if problem:
            found.append(f"{path}: {problem}")
        return
    if not isinstance(value, dict):
        found.append(f"{path}: must be a mapping of {', '.join(spec)}")
        return
    for key, item in value.items():
        if key in spec:
            _walk(item, spec[key], f"{path}.{key}", found)
        elif path == "severities" and not str(key).startswith("RF-"):
            _walk(item, one_of(SEVERITIES), f"{path}.{key}", found)  # a plugin's own flag
        elif path == "severities" and key in RESERVED_FLAG_NOTE:
            found.append(f"{path}.{key}: its severity comes from the thresholds in {RESERVED_FLAG_NOTE[key]}")
        else:
            close = difflib.get_close_matches(str(key), list(spec), n=1, cutoff=0.6)
            found.append(f"{path}.{key} is not a setting" + (f" (did you mean {close[0]}?)" if close else "")
                         + f"; the settings of {path} are {', '.join(spec)}")


def _check_order(data: dict[str, Any], found: list[str]) -> None:
    if found:
        return  # an order is only meaningful between values of the right type
    for path, lower, upper in ORDER:
        section = data
        for part in path:
            section = section.get(part) if isinstance(section, dict) else None
        if isinstance(section, dict) and lower in section and upper in section and section[lower] > section[upper]:
            where = ".".join(path)
            found.append(f"{where}.{lower} ({section[lower]}) is above {where}.{upper} ({section[upper]}); the "
                         f"high threshold must be the stricter one")
    decision = data.get("decision") or {}
    given = [(k, decision[k]) for k in DECISION_ORDER if k in decision]
    for (k1, v1), (k2, v2) in zip(given, given[1:], strict=False):
        if SEVERITIES.index(v1) > SEVERITIES.index(v2):
            found.append(f"decision.{k1} ({v1}) is above decision.{k2} ({v2}); the severities must rise from "
                         f"{' to '.join(DECISION_ORDER)}")


def duplicate_keys(text: str | bytes) -> list[str]:
    """Keys given twice in one mapping of a YAML document (YAML keeps the last silently), as dotted paths."""
    found: list[str] = []

    def walk(node, path):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, value_node in node.value:
                key = key_node.value
                where = f"{path}.{key}" if path else str(key)
                if key in seen:
                    found.append(f"{where} (line {key_node.start_mark.line + 1})")
                seen.add(key)
                walk(value_node, where)
        elif isinstance(node, yaml.SequenceNode):
            for n, item in enumerate(node.value):
                walk(item, f"{path}[{n}]")

    walk(yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)), "")
    return found
