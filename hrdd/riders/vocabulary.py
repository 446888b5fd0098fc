"""The stable ids a clause's conditions may refer to (red flags, capabilities, decisions, stages)."""

from __future__ import annotations

from hrdd.model import DECISIONS, STAGES

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

__all__ = ["RED_FLAG_IDS", "CAPABILITY_IDS", "CAPABILITIES_NEEDING_SCHEDULE", "CAPABILITY_TIERS",
           "DECISIONS", "STAGES"]
