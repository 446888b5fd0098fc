"""Whether a deal's intended use or scale changed materially, under the policy's ``material_changes`` rules.

Parties, the end-user, items and countries are material whenever they differ (``keyed_facts``). The intended
use and the scale are compared here, as the policy says: the intended use without case, whitespace or
punctuation (a CRM re-saving the same words lapses nothing), a quantity or the deal's value only when it
grows beyond a factor (what approved a larger deal covers a smaller one). One comparison for a reviewer's
decision, an executed rider's coverage and an order's quote.
"""

from __future__ import annotations

import math
import unicodedata
import weakref
from dataclasses import dataclass

from hrdd.model import quantity_text
from hrdd.policy import Policy, PolicyError

SECTION = "material_changes"
# Keys of Transaction.material_facts compared here, not for equality.
KEYS = ("intended_use", "quantities", "value")
_SETTINGS = ("intended_use", "quantity_increase_factor", "value_increase_factor")


@dataclass(frozen=True, slots=True)
class Rules:
    """What the policy makes material beyond parties, end-user, items and countries (None: never)."""

    intended_use: bool = True
    quantity_factor: float | None = 2.0
    value_factor: float | None = 2.0


DEFAULT_RULES = Rules()


def rules_of(policy: Policy | None) -> Rules:
    """The policy's rules, the defaults standing in for an absent section or key; PolicyError for a bad value."""
    if policy is None:
        return DEFAULT_RULES
    # A loaded policy does not change (a new file is a new Policy), and the gate asks on every screening.
    cached = _RULES.get(policy)
    if cached is None:
        cached = _RULES[policy] = _read_rules(policy)
    return cached


_RULES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _read_rules(policy: Policy) -> Rules:
    section = policy.data.get(SECTION)
    if section is None:
        return DEFAULT_RULES
    where = f"policy file {policy.path}: {SECTION}"
    if not isinstance(section, dict):
        raise PolicyError(f"{where} must be a mapping of {', '.join(_SETTINGS)}")
    unknown = sorted(set(map(str, section)) - set(_SETTINGS))
    if unknown:
        raise PolicyError(f"{where}: unknown setting(s) {', '.join(unknown)} (known: {', '.join(_SETTINGS)})")
    use = section.get("intended_use", DEFAULT_RULES.intended_use)
    if not isinstance(use, bool):
        raise PolicyError(f"{where}.intended_use must be true or false, not {use!r}")
    return Rules(use, _factor(section, "quantity_increase_factor", DEFAULT_RULES.quantity_factor, where),
                 _factor(section, "value_increase_factor", DEFAULT_RULES.value_factor, where))


def _factor(section: dict, key: str, default: float | None, where: str) -> float | None:
    value = section.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 1:
        raise PolicyError(f"{where}.{key} must be a number of at least 1 (or null: never material), not {value!r}")
    return float(value)


def use_key(text: str | None) -> str:
    """An intended use as compared: case, whitespace and punctuation do not count."""
    normal = unicodedata.normalize("NFKC", text or "").casefold()
    kept = "".join(" " if unicodedata.category(ch)[0] in "PZC" else ch for ch in normal)
    return " ".join(kept.split())


def changes(before: dict, after: dict, rules: Rules = DEFAULT_RULES) -> list[str]:
    """What changed in intended use, or grew in scale, from material facts ``before`` to ``after``, in words.

    A key either side lacks (facts recorded before it was) is not compared. A decrease is no change.
    """
    out = []
    if rules.intended_use and "intended_use" in before and "intended_use" in after \
            and use_key(before["intended_use"]) != use_key(after["intended_use"]):
        out.append(f"intended use changed from {_use(before['intended_use'])} to {_use(after['intended_use'])}")
    if rules.quantity_factor is not None and "quantities" in before and "quantities" in after:
        old = {sku: n for sku, n in before["quantities"]}
        out += [f"item {sku} quantity rose from {quantity_text(old[sku])} to {quantity_text(n)} "
                f"(more than {quantity_text(rules.quantity_factor)} times)"
                for sku, n in after["quantities"] if sku in old and n > old[sku] * rules.quantity_factor]
    if rules.value_factor is not None and "value" in before and "value" in after:
        old = {currency: v for currency, v in before["value"]}
        # A deal priced at nothing before has no value to grow from; another currency is not compared.
        out += [f"deal value rose from {_money(currency, old[currency])} to {_money(currency, v)} "
                f"(more than {quantity_text(rules.value_factor)} times)"
                for currency, v in after["value"]
                if old.get(currency, 0) > 0 and v > old[currency] * rules.value_factor]
    return out


def _use(text: str | None) -> str:
    return f"'{text.strip()}'" if text and text.strip() else "none stated"


def _money(currency: str, amount: float) -> str:
    figure = f"{amount:,.0f}" if float(amount).is_integer() else f"{amount:,.2f}"
    return f"{currency} {figure}".strip()
