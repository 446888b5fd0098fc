"""Small shared helpers of the workspace: sortable ids, timestamps and end-user keys."""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime, timedelta

from hrdd import material
from hrdd.audit import now_iso
from hrdd.parties.normalize import Normaliser, default_normaliser

__all__ = ["new_id", "now_iso", "end_user_key", "end_user_normal", "keyed_facts", "days_ago_iso", "parse_iso"]

_PARENTHESES = re.compile(r"\([^()]*\)")  # "(DPS)": an acronym in brackets is not part of the name
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32, as ULIDs use


def new_id(prefix: str) -> str:
    """A time-ordered random id such as ``case_01J…`` (48-bit milliseconds + 80 random bits)."""
    value = (int(time.time() * 1000) << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return f"{prefix}_{''.join(reversed(chars))}"


def end_user_normal(name: str, normaliser: Normaliser | None = None):
    """An end-user's name normalised as its key is made: an acronym in brackets ("(DPS)") left out."""
    bare = _PARENTHESES.sub(" ", name)
    return (normaliser or default_normaliser()).normalise(bare if bare.strip() else name)


def end_user_key(name: str, country: str | None, normaliser: Normaliser | None = None) -> str:
    """The key that identifies an end-user across deals: its identifying words and its country.

    Spelled with the restricted-party normaliser's shipped vocabulary, so "The Directorate of Public
    Security.", "Directorate of Public-Security" and "Directorate of Public Security (DPS)" are one
    end-user (RF-7.1 must not miss a grievance over punctuation). Changing that vocabulary changes keys:
    a migration must then recompute ``grievances.end_user_key`` (see 0703_end_user_keys) and
    ``checklist_uploads.end_user_key`` (see 0705_upload_end_users and 0707_homoglyph_end_user_keys), or
    uploaded answers stop being found. A migration passes ``normaliser`` to compute the keys it replaces.
    """
    normal = end_user_normal(name, normaliser)
    ident = normal.compact or normal.native or " ".join(name.split()).lower()
    return f"{ident}|{(country or '').upper()}"


def keyed_facts(facts: dict) -> dict:
    """Material facts (Transaction.material_facts) with the end-user and party names as end-user keys.

    The intended use and the deal's scale are left out: ``hrdd.material`` compares them under the policy.
    """
    # For comparing only, both sides alike: stored decisions keep the lower-cased names they were made on
    # (re-storing them would lapse them all), so "The Port Authority of Bergen." stays the same end-user.
    out = {key: value for key, value in facts.items() if key not in material.KEYS}
    if "end_user" in out:
        name, country = out["end_user"]
        out["end_user"] = end_user_key(name, country)
    if "parties" in out:
        out["parties"] = sorted([role, end_user_key(name, country)] for role, name, country in out["parties"])
    return out


def days_ago_iso(days: float) -> str:
    """The ISO timestamp ``days`` days before now."""
    return (datetime.now(UTC) - timedelta(days=days)).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    """Parse an ISO 8601 timestamp (Z or offset) into an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
