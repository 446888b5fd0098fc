"""The stable ids a clause's conditions may refer to (red flags, capabilities, decisions, stages)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from hrdd.model import DECISIONS, STAGES
from hrdd.yamltext import load_yaml

# DESIGN.md's red-flag table: the engine may add flags but never drops or renames these.
RED_FLAG_IDS = (
    "RF-0.1",
    "RF-1.1", "RF-1.2", "RF-1.3", "RF-1.4",
    "RF-2.1", "RF-2.2", "RF-2.3",
    "RF-3.1", "RF-3.2",
    "RF-4.1", "RF-4.2", "RF-4.3", "RF-4.4", "RF-4.5",
    "RF-6.1",
    "RF-7.1",
)

# DESIGN.md's default capability taxonomy, in tier order (critical first).
CAPABILITY_TIERS = {
    "intrusion_software": "critical",
    "communications_interception": "critical",
    "cell_site_simulator": "critical",
    "biometric_identification": "high",
    "location_tracking": "high",
    "social_media_monitoring": "high",
    "data_analytics": "high",
    "internet_filtering": "high",
    "forensic_extraction": "high",
    "recording_devices": "medium",
    "sensors": "medium",
    "drones": "medium",
    "it_infrastructure": "low",
    "data_storage": "low",
    "none": "low",
}
CAPABILITY_IDS = tuple(CAPABILITY_TIERS)
# "none" means "no surveillance capability": there is nothing to safeguard technically.
CAPABILITIES_NEEDING_SCHEDULE = tuple(c for c in CAPABILITY_IDS if c != "none")



@dataclass(frozen=True)
class Vocabulary:
    """The red-flag and capability ids that clause files may name, and which capabilities need a part."""

    flag_ids: tuple[str, ...] = RED_FLAG_IDS
    capability_ids: tuple[str, ...] = CAPABILITY_IDS
    capabilities_needing_schedule: tuple[str, ...] = CAPABILITIES_NEEDING_SCHEDULE

    @classmethod
    def from_data_dir(cls, data_dir: str | Path | None) -> Vocabulary:
        """The ids of the deployed red-flag catalogue and capability taxonomy (DESIGN.md's when absent)."""
        if not data_dir:
            return cls()
        key, now = str(data_dir), time.monotonic()
        cached = _cache.get(key)
        if cached is not None and now - cached[1] < RECHECK_SECONDS:
            return cached[2]
        data_dir = Path(data_dir)
        stamp = tuple(_mtime(data_dir / name) for name in ("red_flags.yaml", "capabilities.yaml"))
        vocabulary = cached[2] if cached is not None and cached[0] == stamp else cls._read_data_dir(data_dir)
        _cache[key] = (stamp, now, vocabulary)
        return vocabulary

    @classmethod
    def _read_data_dir(cls, data_dir: Path) -> Vocabulary:
        flags, capabilities = RED_FLAG_IDS, CAPABILITY_IDS
        catalogue = _read(data_dir / "red_flags.yaml").get("flags")
        if isinstance(catalogue, dict):
            # The engine may add flags but never drops DESIGN's stable ids.
            flags = tuple(dict.fromkeys([*RED_FLAG_IDS, *map(str, catalogue)]))
        taxonomy = _read(data_dir / "capabilities.yaml").get("capabilities")
        if isinstance(taxonomy, dict) and taxonomy:
            capabilities = tuple(map(str, taxonomy))
        return cls(flags, capabilities, tuple(c for c in capabilities if c != "none"))


# Screening asks for the vocabulary on every transaction: look at the files at most once a second.
RECHECK_SECONDS = 1.0
_cache: dict[str, tuple[tuple, float, Vocabulary]] = {}


def _mtime(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def _read(path: Path) -> dict:
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return {}
    return data if isinstance(data, dict) else {}


__all__ = ["Vocabulary", "RED_FLAG_IDS", "CAPABILITY_IDS", "CAPABILITIES_NEEDING_SCHEDULE", "CAPABILITY_TIERS",
           "DECISIONS", "STAGES"]
