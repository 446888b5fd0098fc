"""Ids and timestamps every record uses: time-ordered ULID-style ids and ISO 8601 UTC times."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_ULID_SHIFTS = tuple(range(125, -1, -5))  # 26 base-32 digits, most significant first


def new_id(prefix: str) -> str:
    """A time-ordered unique id (ULID layout: 48-bit milliseconds + 80 random bits), e.g. scr_01J…."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    return f"{prefix}_{''.join([_CROCKFORD[(value >> shift) & 31] for shift in _ULID_SHIFTS])}"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def iso(dt: datetime) -> str:
    """ISO 8601 in UTC with a Z suffix."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
