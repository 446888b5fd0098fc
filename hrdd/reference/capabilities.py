"""The capability taxonomy (tiers, descriptions, misuse patterns, control codes) from a data file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hrdd.model import TIERS
from hrdd.reference.tables import read_yaml


@dataclass(frozen=True)
class Capability:
    """One capability id of the taxonomy."""

    id: str
    tier: str
    title: str
    description: str
    examples: tuple[str, ...]
    misuse: tuple[str, ...]
    control_codes: tuple[str, ...]

    @property
    def is_surveillance(self) -> bool:
        """Medium tier or above counts as a surveillance capability."""
        return TIERS.index(self.tier) >= TIERS.index("medium")


def load_capabilities(path: Path) -> tuple[dict[str, Capability], str]:
    """Load and check the taxonomy file; errors name the file and the capability."""
    data = read_yaml(path) or {}
    caps: dict[str, Capability] = {}
    for cap_id, entry in (data.get("capabilities") or {}).items():
        tier = entry.get("tier")
        if tier not in TIERS:
            raise ValueError(f"{path}: capability {cap_id!r} has tier {tier!r}; expected one of {', '.join(TIERS)}")
        caps[cap_id] = Capability(
            cap_id, tier, entry.get("title", cap_id), entry.get("description", ""),
            tuple(entry.get("examples") or ()), tuple(entry.get("misuse") or ()),
            tuple(str(c) for c in entry.get("control_codes") or ()),
        )
    if not caps:
        raise ValueError(f"{path}: no capabilities defined")
    return caps, str(data.get("version", "unversioned"))
