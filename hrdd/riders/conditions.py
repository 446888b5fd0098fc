"""When a clause applies: facts taken from a screening, and the condition sets clause files declare.

``applies_when`` is either ``always`` or a list of condition sets; a clause applies when any set holds,
and a set holds when every one of its keys does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hrdd.model import GOVERNMENT_TYPES, SECURITY_SECTORS
from hrdd.riders.vocabulary import DECISIONS, STAGES, Vocabulary
from hrdd.workspace.review import has_conditions


@dataclass(frozen=True)
class Facts:
    """What the clause conditions look at, taken from one screening."""

    decision: str
    flags: frozenset[str] = frozenset()
    capabilities: frozenset[str] = frozenset()
    security_sector: bool = False
    government: bool = False
    intermediaries: bool = False
    stage: str = "quote"
    technical_schedule: bool = False
    reviewer_conditions: bool = False
    # Clause and technical-Part ids a reviewer's approval with conditions requires: in the rider whatever
    # their own conditions say, since "Conditions of approval" binds the Buyer to them by title.
    required: frozenset[str] = frozenset()
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @classmethod
    def from_screening(cls, screening: dict[str, Any]) -> Facts:
        """Facts of a screening response dict (DESIGN.md / ``Screening.to_dict()``)."""
        transaction = screening.get("transaction") or {}
        end_user = transaction.get("end_user") or {}
        review = screening.get("review")
        conditions = has_conditions(review)
        return cls(
            decision=screening.get("decision") or "",
            flags=frozenset(f.get("id") for f in screening.get("red_flags") or ()),
            capabilities=frozenset(c for item in transaction.get("items") or ()
                                   for c in item.get("capabilities") or ()),
            security_sector=end_user.get("sector") in SECURITY_SECTORS,
            government=end_user.get("type") in GOVERNMENT_TYPES,
            intermediaries=bool(transaction.get("parties")),
            stage=screening.get("stage") or transaction.get("stage") or "",
            reviewer_conditions=conditions,
            required=frozenset(str(s.get("id")) for s in (review.get("safeguards") or ()) if s.get("id"))
            if conditions else frozenset(),
        )

    @classmethod
    def from_transaction(cls, transaction, flags, decision: str) -> Facts:
        """Facts of a ``hrdd.model.Transaction`` being screened, its ``RedFlag`` list and decision."""
        return cls(
            decision=decision,
            flags=frozenset(f.id for f in flags or ()),
            capabilities=frozenset(transaction.capabilities()),
            security_sector=transaction.end_user.is_security_sector,
            government=transaction.end_user.is_government,
            intermediaries=bool(transaction.parties),
            stage=transaction.stage,
        )


def _in_list(fact_value, wanted) -> bool:
    return fact_value in wanted


def _any_of(fact_values, wanted) -> bool:
    return bool(set(fact_values) & set(wanted))


# key -> (kind of value, where the known values come from, how the fact is tested)
CONDITION_KEYS: dict[str, tuple[str, Any, Any]] = {
    "decision": ("list", lambda voc: DECISIONS, lambda f, v: _in_list(f.decision, v)),
    "flags": ("list", lambda voc: voc.flag_ids, lambda f, v: _any_of(f.flags, v)),
    "capabilities": ("list", lambda voc: voc.capability_ids, lambda f, v: _any_of(f.capabilities, v)),
    "stage": ("list", lambda voc: STAGES, lambda f, v: _in_list(f.stage, v)),
    "security_sector": ("bool", None, lambda f, v: f.security_sector is v),
    "government": ("bool", None, lambda f, v: f.government is v),
    "intermediaries": ("bool", None, lambda f, v: f.intermediaries is v),
    "technical_schedule": ("bool", None, lambda f, v: f.technical_schedule is v),
    # A reviewer's approval with conditions is in force for the screening (its ``review``).
    "reviewer_conditions": ("bool", None, lambda f, v: f.reviewer_conditions is v),
}


def validate_conditions(value: Any, vocabulary: Vocabulary | None = None) -> list[str]:
    """Problems with an ``applies_when`` value, as messages naming the key and the bad value."""
    vocabulary = vocabulary or Vocabulary()
    if value == "always":
        return []
    if not isinstance(value, list) or not value:
        return ["applies_when must be 'always' or a non-empty list of condition sets"]
    problems = []
    for index, condition_set in enumerate(value):
        where = f"applies_when[{index}]"
        if not isinstance(condition_set, dict) or not condition_set:
            problems.append(f"{where} must be a mapping such as {{decision: [escalate]}}")
            continue
        for key, wanted in condition_set.items():
            if key not in CONDITION_KEYS:
                problems.append(f"{where}: unknown condition {key!r}; known: {', '.join(CONDITION_KEYS)}")
                continue
            kind, known_values, _ = CONDITION_KEYS[key]
            if kind == "bool":
                if not isinstance(wanted, bool):
                    problems.append(f"{where}.{key} must be true or false, not {wanted!r}")
            elif not isinstance(wanted, list) or not wanted:
                problems.append(f"{where}.{key} must be a non-empty list")
            else:
                known = known_values(vocabulary)
                unknown = [w for w in wanted if w not in known]
                if unknown:
                    problems.append(f"{where}.{key}: unknown {_noun(key)} {', '.join(map(repr, unknown))}; "
                                    f"known: {', '.join(known)}")
    return problems


def applies(conditions: Any, facts: Facts) -> bool:
    """True when the (already validated) conditions hold for these facts."""
    if conditions == "always":
        return True
    return any(all(CONDITION_KEYS[key][2](facts, wanted) for key, wanted in condition_set.items())
               for condition_set in conditions)


def _noun(key: str) -> str:
    return {"flags": "red-flag id", "capabilities": "capability id", "decision": "decision",
            "stage": "stage"}.get(key, "value")
