"""Column types shared by the tables: timestamps that keep their instant on every backend."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa


class UTCDateTime(sa.types.TypeDecorator):
    """``DateTime(timezone=True)`` that stores the UTC instant and reads back aware UTC datetimes.

    SQLite keeps no offset (it stores the wall-clock time and drops tzinfo), so values are converted to
    UTC before they are bound; naive values, and naive rows stored before this type, are taken as UTC.
    """

    impl = sa.DateTime
    cache_ok = True

    def __init__(self) -> None:
        super().__init__(timezone=True)

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        """An aware datetime moved to UTC (naive ones are UTC already)."""
        return None if value is None else as_utc(value)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        """The stored instant as an aware UTC datetime."""
        return None if value is None else as_utc(value)


def as_utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime; a naive value is taken to be UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
