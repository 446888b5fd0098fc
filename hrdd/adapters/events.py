"""What an adapter hands to the pipeline: one vendor event, complete or thin (ids only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


class PayloadError(ValueError):
    """The request body is not a payload this adapter can read; the message says why (HTTP 400)."""


@dataclass
class VendorEvent:
    """One business event of a delivery: which record, and its fields when the vendor sent them.

    ``record`` is None for a thin event (ids only); the adapter's ``enrich`` then fetches the fields.
    ``ignore`` explains why an event is not screened (an event type hrdd does not act on).
    ``system`` overrides the adapter's ``reference.system`` (the generic adapter takes it from the body).
    ``meta`` keeps the vendor ids that enrichment needs (portal id, entity set, ...).
    ``modified_at`` is the vendor's time of the change the event reports (ISO 8601), where the event
    says it (Dynamics' OperationCreatedOn); the record's own modification field is preferred to it.
    """

    delivery_id: str
    object_type: str
    object_id: str
    record: dict[str, Any] | None = None
    lines: list[dict[str, Any]] = field(default_factory=list)
    kind: str = ""
    system: str = ""
    ignore: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    modified_at: str | None = None

    @property
    def thin(self) -> bool:
        """True when the fields must be fetched from the vendor before screening."""
        return self.record is None

    def to_dict(self) -> dict[str, Any]:
        """JSON form, stored with the delivery so the worker can retry enrichment."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VendorEvent:
        """Rebuild from ``to_dict``."""
        return cls(**data)
