"""One restricted-party list entry, as loaded from any list format, with a content hash."""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field, fields
from typing import Any


@dataclass(frozen=True)
class ListEntry:
    """A listed party: its names, countries and the citation that explains why it is listed."""

    entry_id: str
    list: str
    name: str
    aliases: tuple[str, ...] = ()
    native_names: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    type: str | None = None
    programs: str | None = None
    federal_register_notice: str | None = None
    source: str | None = None
    source_url: str | None = None
    start_date: str | None = None
    remarks: str | None = None
    extra: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def names(self) -> tuple[str, ...]:
        """The listed name followed by every alias (no duplicates)."""
        return tuple(dict.fromkeys(n for n in (self.name, *self.aliases) if n))

    def citation(self) -> str:
        """Where the listing comes from: the Federal Register notice, else the source, else the list."""
        parts = [self.list]
        if self.federal_register_notice:
            parts.append(f"Federal Register {self.federal_register_notice}")
        if self.source:
            parts.append(self.source)
        if self.source_url:
            parts.append(self.source_url)
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (tuples as lists) for storage and responses."""
        # Field by field rather than dataclasses.asdict(), whose recursive deep copy made loading a list
        # (two calls per entry: its hash and its stored form) take 0.3 s per 5,000 entries.
        data = {name: getattr(self, name) for name in _FIELD_NAMES}
        for key in ("aliases", "native_names", "countries"):
            data[key] = list(data[key])
        data["extra"] = copy.deepcopy(self.extra)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ListEntry:
        """Rebuild from ``to_dict`` output (unknown keys are ignored)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        for key in ("aliases", "native_names", "countries"):
            values[key] = tuple(values.get(key) or ())
        values["extra"] = dict(values.get("extra") or {})
        return cls(**values)

    def content_hash(self) -> str:
        """SHA-256 of the entry's content, so a changed entry is noticed when a list is reloaded."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


_FIELD_NAMES = tuple(f.name for f in fields(ListEntry))
