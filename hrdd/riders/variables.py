"""The variable registry (``variables.yaml``): rider options and values taken from the screening."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pycountry

from hrdd.model import END_USER_TYPES, SECURITY_SECTORS

SOURCES = ("option", "screening")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")


class VariableError(ValueError):
    """Rider options are missing or invalid; ``errors`` maps each variable name to messages."""

    def __init__(self, errors: dict[str, list[str]]):
        self.errors = errors
        super().__init__("; ".join(f"{name}: {' '.join(msgs)}" for name, msgs in sorted(errors.items())))


@dataclass(frozen=True)
class VariableSpec:
    """One variable of the registry."""

    name: str
    source: str
    description: str
    label: str | None = None
    type: str = "text"
    min: int | None = None
    max: int | None = None
    max_length: int = 500
    fallback: str | None = None
    # For a worded screening value: (key, words) pairs, e.g. ("government", "a government body").
    words: tuple[tuple[str, str], ...] = ()

    @property
    def config_key(self) -> str:
        """The configuration key (and environment variable) that can supply this option."""
        return f"HRDD_RIDER_{self.name.upper()}"


def clean_text(value: Any) -> str:
    """Text safe to put in a document: XML-invalid control characters removed, whitespace trimmed."""
    return _CONTROL.sub("", str(value)).strip()


def country_name(code: str | None) -> str:
    """'EG' -> 'Egypt'; an unknown code is returned as given."""
    if not code:
        return ""
    country = pycountry.countries.get(alpha_2=str(code).upper())
    return getattr(country, "common_name", None) or country.name if country else clean_text(code)


def _join(names: list[str]) -> str:
    names = [n for n in names if n]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1] if names else ""


def _date(value: str | None) -> str:
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return clean_text(value)
    return f"{moment.day} {moment:%B %Y}"


def _products(screening: dict) -> str:
    items = (screening.get("transaction") or {}).get("items") or ()
    return _join([f"{clean_text(i.get('name') or i.get('sku'))} (SKU {clean_text(i.get('sku'))})"
                  if i.get("name") else clean_text(i.get("sku")) for i in items])


def _deployment(screening: dict) -> str:
    transaction = screening.get("transaction") or {}
    codes = transaction.get("deployment_countries") or [(transaction.get("end_user") or {}).get("country")]
    return _join([country_name(c) for c in codes])


def _end_user(screening: dict) -> dict:
    return (screening.get("transaction") or {}).get("end_user") or {}


def party_label(party: dict) -> str:
    """'Nile Integrated Systems (distributor, United Arab Emirates)': a party's name, role and country."""
    role = clean_text(party.get("role") or "").replace("_", " ")
    details = [d for d in ("other party" if role == "other" else role, country_name(party.get("country"))) if d]
    name = clean_text(party.get("name") or "")
    return f"{name} ({', '.join(details)})" if details else name


def _parties(screening: dict) -> str:
    labels = [party_label(p) for p in (screening.get("transaction") or {}).get("parties") or ()]
    # Semicolons: each label already has a comma inside its brackets.
    return labels[0] if len(labels) == 1 else "; ".join(labels[:-1]) + " and " + labels[-1] if labels else ""


def _review(screening: dict) -> dict:
    # The reviewer's decision in force for the screening, added by whoever builds the rider (``review``).
    return screening.get("review") or {}


def _approval_safeguards(screening: dict) -> str:
    return "; ".join(clean_text(s.get("title") or s.get("id") or "") for s in _review(screening).get("safeguards") or ())


# The values the code knows how to take from a screening; variables.yaml says which of them exist.
SCREENING_VALUES: dict[str, Callable[[dict], str]] = {
    "end_user_name": lambda s: clean_text(_end_user(s).get("name") or ""),
    "end_user_country": lambda s: country_name(_end_user(s).get("country")),
    "parties": _parties,
    "deployment_countries": _deployment,
    "products": _products,
    "intended_use": lambda s: clean_text((s.get("transaction") or {}).get("intended_use") or ""),
    "screening_id": lambda s: clean_text(s.get("id") or ""),
    "screening_date": lambda s: _date(s.get("created_at")),
    "approval_date": lambda s: _date(_review(s).get("decided_at")),
    "approval_conditions": lambda s: clean_text(_review(s).get("conditions") or ""),
    "approval_safeguards": _approval_safeguards,
}


def _end_user_kinds(screening: dict) -> list[str]:
    end_user = _end_user(screening)
    return [str(end_user.get("type") or "unknown")] + (
        ["security_sector"] if end_user.get("sector") in SECURITY_SECTORS else [])


# Screening values the library words itself: the keys the screening gives, looked up in the variable's
# ``words`` and joined with spaces ("a government body" + "in the security sector").
WORDED_VALUES: dict[str, tuple[Callable[[dict], list[str]], tuple[str, ...]]] = {
    "end_user_description": (_end_user_kinds, (*END_USER_TYPES, "security_sector")),
}


def screening_value(spec: VariableSpec, screening: dict) -> str:
    """The value of a ``source: screening`` variable, or its fallback when the screening gives none."""
    if spec.name in WORDED_VALUES:
        words = dict(spec.words)
        value = " ".join(words[k] for k in WORDED_VALUES[spec.name][0](screening) if words.get(k))
    else:
        value = SCREENING_VALUES[spec.name](screening)
    return value or clean_text(spec.fallback or "")


def _parse_words(name: str, raw: Any, problems: list[str]) -> tuple[tuple[str, str], ...]:
    keys = WORDED_VALUES[name][1] if name in WORDED_VALUES else ()
    if raw is None and not keys:
        return ()
    if not keys:
        problems.append(f"{name}: words is only for the worded screening values: {', '.join(WORDED_VALUES)}")
        return ()
    if not isinstance(raw, dict) or set(map(str, raw)) - set(keys) or not all(
            isinstance(v, str) and v.strip() for v in raw.values()):
        problems.append(f"{name}: words must map some of {', '.join(keys)} to non-empty text")
        return ()
    return tuple((str(k), " ".join(v.split())) for k, v in raw.items())


def parse_registry(raw: Any) -> tuple[dict[str, VariableSpec], list[str]]:
    """Validate variables.yaml; return the specs by name and the problems found."""
    if not isinstance(raw, dict) or not raw:
        return {}, ["variables.yaml must map variable names to their descriptions"]
    specs, problems = {}, []
    allowed = {"source", "description", "label", "type", "min", "max", "max_length", "fallback", "words"}
    for name, spec in raw.items():
        if not isinstance(spec, dict):
            problems.append(f"{name}: must be a mapping with at least source and description")
            continue
        unknown = sorted(set(spec) - allowed)
        if unknown:
            problems.append(f"{name}: unknown field(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
        if spec.get("source") not in SOURCES:
            problems.append(f"{name}: source must be one of {', '.join(SOURCES)}")
            continue
        if not isinstance(spec.get("description"), str) or not spec["description"].strip():
            problems.append(f"{name}: description must be non-empty text")
        if spec["source"] == "screening" and name not in SCREENING_VALUES and name not in WORDED_VALUES:
            problems.append(f"{name}: no screening value of that name; known: "
                            f"{', '.join([*SCREENING_VALUES, *WORDED_VALUES])}")
        words = _parse_words(name, spec.get("words"), problems)
        if spec.get("type", "text") not in ("text", "integer"):
            problems.append(f"{name}: type must be text or integer")
        for key in ("min", "max", "max_length"):
            if key in spec and not isinstance(spec[key], int):
                problems.append(f"{name}: {key} must be a whole number")
        if problems:
            continue
        specs[name] = VariableSpec(name=name, **{k: v for k, v in spec.items() if k in allowed - {"words"}},
                                   words=words)
    return specs, problems


def option_names(registry: Mapping[str, VariableSpec]) -> list[str]:
    """The names of the rider options, in registry order."""
    return [n for n, s in registry.items() if s.source == "option"]


def query_parameter(name: str) -> str:
    """How an HTTP caller gives rider option ``name``."""
    return f"the query parameter {name!r}"


def resolve(registry: Mapping[str, VariableSpec], needed: set[str], screening: dict,
            options: Mapping[str, Any], config: Mapping[str, Any] | None = None,
            how_to_give: Callable[[str], str] = query_parameter) -> dict[str, str]:
    """Values for every needed variable: options first, then configuration, then the environment.

    Raise VariableError naming every unknown option and every needed option that is missing or invalid;
    ``how_to_give(name)`` words how the caller supplies an option (a query parameter, a CLI option).
    """
    errors: dict[str, list[str]] = {}
    known = set(option_names(registry))
    for name in options:
        if name not in known:
            errors[name] = [f"unknown rider option; known options: {', '.join(option_names(registry))}"]
    values: dict[str, str] = {}
    for name in sorted(needed):
        spec = registry[name]
        if spec.source == "screening":
            values[name] = screening_value(spec, screening)
            continue
        raw = options.get(name)
        if raw is None or str(raw).strip() == "":
            raw = (config or {}).get(spec.config_key) or os.environ.get(spec.config_key)
        if raw is None or str(raw).strip() == "":
            errors[name] = [f"required: give {how_to_give(name)} or configure {spec.config_key}"]
            continue
        message = _invalid(spec, str(raw))
        if message:
            errors[name] = [message]
        else:
            values[name] = str(int(str(raw).strip())) if spec.type == "integer" else " ".join(str(raw).split())
    if errors:
        raise VariableError(errors)
    return values


def _invalid(spec: VariableSpec, raw: str) -> str | None:
    if spec.type == "integer":
        try:
            number = int(raw.strip())
        except ValueError:
            return f"must be a whole number, not {raw[:40]!r}"
        if spec.min is not None and number < spec.min or spec.max is not None and number > spec.max:
            return f"must be between {spec.min} and {spec.max}"
        return None
    if _CONTROL.search(raw):
        return "must not contain control characters"
    if len(raw) > spec.max_length:
        return f"must be at most {spec.max_length} characters"
    return None
