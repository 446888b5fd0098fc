"""Builds red flags from the catalogue data file so wording and sources stay out of code."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from hrdd.model import RedFlag


@lru_cache(maxsize=8)
def load_catalogue(path: Path) -> dict[str, dict[str, Any]]:
    """The red-flag catalogue (id -> step, title, source) from data/red_flags.yaml."""
    from hrdd.reference.tables import read_yaml  # noqa: PLC0415 - hrdd.reference imports this module

    data = read_yaml(Path(path)) or {}
    flags = data.get("flags") or {}
    for flag_id, entry in flags.items():
        for key in ("step", "title", "source"):
            if key not in entry:
                raise ValueError(f"{path}: red flag {flag_id} has no {key!r}")
    return flags


def make_flag(context, flag_id: str, evidence: str, severity_key: str | None = None,
              default_severity: str = "medium", **data: Any) -> RedFlag:
    """A RedFlag with catalogue wording, policy severity (``severity_key`` selects a variant) and evidence."""
    entry = context.reference.red_flags.get(flag_id)
    if entry is None:
        raise KeyError(f"red flag {flag_id} is not in the catalogue")
    severity = context.policy.severity(severity_key or flag_id, default_severity)
    return RedFlag(id=flag_id, step=int(entry["step"]), severity=severity, title=entry["title"],
                   evidence=evidence, source=entry["source"], data=data)


def implicating(pairs) -> dict[str, list[str]]:
    """Flag data naming the items and capabilities of (sku, capability) pairs, so tailoring can drop each."""
    return {"items": sorted({sku for sku, _ in pairs}), "capabilities": sorted({cap for _, cap in pairs})}


ITEMS_NAMED = 5  # evidence names this many items; the flag's data lists every SKU


def name_items(items, detail: dict[str, str] | None = None) -> str:
    """Evidence wording for items, e.g. "FaceFind (FR-200), Cam (C-1) and 3 more items (see data.items)"."""
    detail = detail or {}
    items = list({item.sku: item for item in items}.values())
    named = [f"{item.name} ({item.sku}{', ' + detail[item.sku] if item.sku in detail else ''})"
             for item in items[:ITEMS_NAMED]]
    rest = len(items) - len(named)
    if rest:
        return f"{', '.join(named)} and {rest} more item{'s' if rest > 1 else ''} (see data.items)"
    return named[0] if len(named) == 1 else f"{', '.join(named[:-1])} and {named[-1]}"


def name_skus(skus) -> str:
    """Evidence wording for SKUs, e.g. "FR-200, CAM-1 and 3 more"."""
    skus = list(dict.fromkeys(skus))
    named = skus[:ITEMS_NAMED]
    rest = len(skus) - len(named)
    return f"{', '.join(named)} and {rest} more" if rest else ", ".join(named)
