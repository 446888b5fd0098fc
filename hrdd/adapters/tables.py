"""Tables of the adapters: webhook deliveries (dedup and event record), record versions, the outbox, rider executions."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from hrdd.sqltypes import UTCDateTime
from hrdd.store import iso as core_iso
from hrdd.store import new_id as core_new_id
from hrdd.store import utcnow
from hrdd.tables import metadata

adapter_deliveries = sa.Table(
    "adapter_deliveries", metadata,
    sa.Column("vendor", sa.String(40), primary_key=True),
    sa.Column("delivery_id", sa.String(255), primary_key=True),
    sa.Column("status", sa.String(24), nullable=False),
    sa.Column("system", sa.String(64), nullable=False),
    sa.Column("object_type", sa.String(64), nullable=False),
    sa.Column("object_id", sa.String(128), nullable=False),
    sa.Column("stage", sa.String(20)),
    sa.Column("screening_id", sa.String(40)),
    sa.Column("transaction_id", sa.String(40)),
    sa.Column("reason", sa.Text),
    sa.Column("event", sa.JSON, nullable=False),
    sa.Column("outcome", sa.JSON, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Index("ix_adapter_deliveries_reference", "system", "object_type", "object_id"),
    sa.Index("ix_adapter_deliveries_due", "status", "next_attempt_at"),
)

# The newest vendor modification time processed per record: a delivery carrying an older version of the
# record (a retried notification, an asynchronous step finishing late) is recorded as stale, not screened.
adapter_record_versions = sa.Table(
    "adapter_record_versions", metadata,
    sa.Column("vendor", sa.String(40), primary_key=True),
    sa.Column("system", sa.String(64), primary_key=True),
    sa.Column("object_type", sa.String(64), primary_key=True),
    sa.Column("object_id", sa.String(128), primary_key=True),
    sa.Column("modified_at", UTCDateTime(), nullable=False),
    # Where the time was read ("record:<field>" or "event"): times from different sources are compared
    # only to the second, since their clocks' resolutions differ (Dataverse's modifiedon has whole seconds).
    sa.Column("source", sa.String(80), nullable=False),
    sa.Column("delivery_id", sa.String(255), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
)

outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("system", sa.String(64), nullable=False),
    sa.Column("object_type", sa.String(64), nullable=False),
    sa.Column("object_id", sa.String(128), nullable=False),
    sa.Column("transaction_id", sa.String(40)),
    sa.Column("screening_id", sa.String(40)),
    sa.Column("gate", sa.String(30)),
    sa.Column("reason", sa.Text),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("last_status", sa.Integer),
    sa.Column("sent", sa.JSON),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("delivered_at", UTCDateTime()),
    sa.Index("ix_outbox_due", "status", "next_attempt_at"),
)

rider_executions = sa.Table(
    "rider_executions", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("transaction_id", sa.String(40), sa.ForeignKey("transactions.id"), nullable=False, index=True),
    sa.Column("screening_id", sa.String(40)),
    sa.Column("executed_by", sa.String(200), nullable=False),
    sa.Column("executed_at", UTCDateTime(), nullable=False),
    sa.Column("document_ref", sa.String(500)),
    sa.Column("recorded_by", sa.String(200), nullable=False),
    sa.Column("recorded_at", UTCDateTime(), nullable=False),
)


def now() -> datetime:
    """The current time in UTC (timezone-aware)."""
    return utcnow()


def aware(moment: datetime | None) -> datetime | None:
    """A stored timestamp as timezone-aware UTC (SQLite hands them back naive)."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in the core's layout (so the two compare as strings), or None."""
    return core_iso(moment) if moment is not None else None


def new_id(prefix: str) -> str:
    """A fresh time-ordered identifier such as ``obx_01J…``."""
    return core_new_id(prefix)
