"""Record versions: deliveries carrying an older state of a CRM record than one already processed are stale."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from hrdd.adapters.config import ConfigError
from hrdd.adapters.tables import adapter_record_versions, now
from hrdd.sqltypes import UTCDateTime, as_utc
from hrdd.store import dialect_insert

# OData v2 / WCF JSON dates (Dynamics' RemoteExecutionContext, SAP's A_SalesOrder): /Date(ms[+-hhmm])/.
_WCF_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
# Epoch milliseconds (HubSpot's occurredAt, some HubSpot properties); seconds would be ten digits.
_EPOCH_MS = re.compile(r"^\d{12,14}$")


# Different sources of one record's time may differ in resolution (whole seconds against milliseconds).
OTHER_SOURCE_TOLERANCE = timedelta(microseconds=999_999)


class StaleDelivery(Exception):
    """A newer version of the record was already processed; the delivery must not govern the deal."""

    def __init__(self, modified_at: datetime, newer_at: datetime, newer_delivery: str):
        self.modified_at = modified_at
        self.newer_at = newer_at
        self.newer_delivery = newer_delivery
        super().__init__(self.reason)

    @property
    def reason(self) -> str:
        """What the sender is told: both versions' times and the delivery that carried the newer one."""
        return (f"not screened: this delivery carries the record as modified at {iso(self.modified_at)}, and "
                f"delivery {self.newer_delivery} already carried it as modified at {iso(self.newer_at)}")


def iso(moment: datetime) -> str:
    """A vendor time in UTC as the vendors write it: seconds, milliseconds only when there are some."""
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.astimezone(UTC).isoformat(timespec=spec).replace("+00:00", "Z")


def parse_vendor_time(value) -> datetime | None:
    """A vendor's modification time as an aware UTC datetime, or None when ``value`` is not one.

    Accepts ISO 8601 (Salesforce, HubSpot, Dataverse, OData v4; a trailing Z or an offset; no offset means
    UTC), Odoo's "YYYY-MM-DD HH:MM:SS" (UTC), WCF/OData v2 "/Date(ms+0000)/" and epoch milliseconds.
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        text = str(int(value)) if value == value and abs(value) < 1e15 else ""
    elif isinstance(value, str):
        text = value.strip()
    else:
        return None
    try:
        wcf = _WCF_DATE.match(text)
        if wcf:
            return datetime.fromtimestamp(int(wcf.group(1)) / 1000, UTC)
        if _EPOCH_MS.match(text):
            return datetime.fromtimestamp(int(text) / 1000, UTC)
        if len(text) < 10:
            return None
        return as_utc(datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00")))
    except (ValueError, OverflowError, OSError):
        return None


def record_time(record: dict | None, fields) -> tuple[datetime, str] | None:
    """The first of ``fields`` in ``record`` that holds a modification time, and ``record:<field>``."""
    for name in fields or ():
        moment = parse_vendor_time((record or {}).get(name))
        if moment is not None:
            return moment, f"record:{name}"
    return None


def claim(conn, *, vendor: str, system: str, object_type: str, object_id: str,
          modified_at: datetime, source: str, delivery_id: str) -> None:
    """Record ``modified_at`` as the record's newest processed version, or raise StaleDelivery.

    One statement (an upsert whose update applies only when the version is not older), so two deliveries
    of one record stored at once by different instances cannot both pass as newest. Equal times pass: a
    vendor's clock has a resolution, and two changes within it are screened in the order they arrive.
    A time from another ``source`` than the recorded one (a record field against the event's time, say)
    passes unless the recorded time is a whole second or more later: the two may count differently.
    """
    t = adapter_record_versions
    moment = now()
    statement = dialect_insert(conn.dialect.name, t).values(vendor=vendor, system=system, object_type=object_type, object_id=object_id,
                                 modified_at=modified_at, source=source, delivery_id=delivery_id,
                                 updated_at=moment)
    # The latest time that still passes: this one, or for another source anything within the second after.
    bound = sa.case((t.c.source == statement.excluded.source, statement.excluded.modified_at),
                    else_=sa.bindparam("other_source_bound", modified_at + OTHER_SOURCE_TOLERANCE,
                                       type_=UTCDateTime()))
    # The recorded time never goes down: a delivery passing within another source's tolerance may be a
    # little older than the recorded one, which then stays (with its source and delivery), or older
    # deliveries of the first source would pass after it.
    newer = t.c.modified_at > statement.excluded.modified_at
    statement = statement.on_conflict_do_update(
        index_elements=["vendor", "system", "object_type", "object_id"],
        set_={"modified_at": sa.case((newer, t.c.modified_at), else_=statement.excluded.modified_at),
              "source": sa.case((newer, t.c.source), else_=statement.excluded.source),
              "delivery_id": sa.case((newer, t.c.delivery_id), else_=statement.excluded.delivery_id),
              "updated_at": statement.excluded.updated_at},
        where=t.c.modified_at <= bound,
    ).returning(t.c.delivery_id)
    if conn.execute(statement).first() is not None:
        return
    kept = conn.execute(sa.select(t.c.modified_at, t.c.delivery_id).where(
        t.c.vendor == vendor, t.c.system == system, t.c.object_type == object_type,
        t.c.object_id == object_id)).one()
    raise StaleDelivery(modified_at, as_utc(kept.modified_at), kept.delivery_id)


def check_settings(settings: dict) -> None:
    """Raise ConfigError naming an adapter whose ``modified_fields`` or ``max_clock_skew_seconds`` is unusable."""
    for vendor, mine in (settings.get("adapters") or {}).items():
        if not isinstance(mine, dict):
            continue
        fields = mine.get("modified_fields")
        if fields is not None and (not isinstance(fields, list) or not all(
                isinstance(f, str) and f.strip() for f in fields)):
            raise ConfigError(f"adapters.{vendor}.modified_fields: expected a list of record field names, "
                              f"got {fields!r}")
        skew = mine.get("max_clock_skew_seconds")
        if skew is not None:
            try:
                ok = not isinstance(skew, bool) and 0 <= float(skew) < 1e9
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise ConfigError(f"adapters.{vendor}.max_clock_skew_seconds: expected a number of seconds "
                                  f"from 0, got {skew!r}")


def clock_skew_allowed(settings: dict) -> timedelta:
    """How far in the future a vendor time may lie before it is distrusted (``max_clock_skew_seconds``)."""
    return timedelta(seconds=float(settings.get("max_clock_skew_seconds", 300)))
