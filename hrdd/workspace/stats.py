"""Figures for the dashboard and the transparency report, read from the stored screenings and cases."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime

from sqlalchemy import func, or_, select

from hrdd.model import DECISIONS
from hrdd.store import capabilities_of, capability_ids
from hrdd.tables import screenings
from hrdd.workspace.tables import case_decisions, cases
from hrdd.workspace.util import parse_iso

AGE_BUCKETS = ((1, "under 1 day"), (7, "1-7 days"), (30, "8-30 days"), (None, "over 30 days"))


def _utc_month(dialect: str, column):
    """SQL for the ``YYYY-MM`` of a UTCDateTime column, in UTC whatever the session's time zone."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM")
    # SQLite keeps the UTC wall-clock time as text; strftime also moves a value with an offset to UTC.
    return func.strftime("%Y-%m", column)


def _top(counts: Counter, limit: int) -> list[tuple[str, int]]:
    """The ``limit`` largest counts, ties in key order."""
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]


def months_back(count: int, today: datetime | None = None) -> list[str]:
    """The last ``count`` months as ``YYYY-MM``, oldest first, ending with the current month."""
    today = today or datetime.now(UTC)
    year, month = today.year, today.month
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        month -= 1
        if month == 0:
            year, month = year - 1, 12
    return list(reversed(out))


def dashboard(conn, months: int = 12) -> dict:
    """Screenings by month and decision, by country and by capability; decisions; open cases by age."""
    periods = months_back(months)
    start = datetime.fromisoformat(periods[0] + "-01").replace(tzinfo=UTC)
    recent = screenings.c.created_at >= start
    by_month = {d: [0] * len(periods) for d in DECISIONS}
    index = {p: i for i, p in enumerate(periods)}
    month = _utc_month(conn.dialect.name, screenings.c.created_at).label("month")
    total = 0
    for period, decision, count in conn.execute(select(month, screenings.c.decision, func.count())
                                                .where(recent).group_by(month, screenings.c.decision)):
        total += count
        if period in index and decision in by_month:
            by_month[decision][index[period]] += count
    by_country = Counter(dict(conn.execute(select(screenings.c.end_user_country, func.count())
                                           .where(recent).group_by(screenings.c.end_user_country)).all()))
    by_capability: Counter = Counter()
    # One row per distinct set of capabilities: far fewer than screenings.
    for caps, count in conn.execute(select(screenings.c.capabilities, func.count())
                                    .where(recent).group_by(screenings.c.capabilities)).all():
        if caps is not None:
            for cap in capabilities_of(caps):
                by_capability[cap] += count
            continue
        # Rows an older hrdd stored after the migration (a rolling upgrade) have no ids: read their requests.
        for request in conn.execute(select(screenings.c.request)
                                    .where(recent, screenings.c.capabilities.is_(None))).scalars():
            by_capability.update(capability_ids(request))
    # A two-person approval is one decision: its second approver's row is not counted again.
    outcomes = Counter(dict(conn.execute(select(case_decisions.c.outcome, func.count())
                                         .where(case_decisions.c.decided_at >= start.isoformat(),
                                                case_decisions.c.second_approval_of.is_(None))
                                         .group_by(case_decisions.c.outcome)).all()))
    now = datetime.now(UTC)
    ages = Counter()
    for (opened_at,) in conn.execute(select(cases.c.opened_at).where(cases.c.status.in_(
            ("open", "information_requested", "awaiting_second_approval")))):
        days = (now - parse_iso(opened_at)).total_seconds() / 86400
        for limit, label in AGE_BUCKETS:
            if limit is None or days < limit:
                ages[label] += 1
                break
    return {
        "periods": periods, "by_month": by_month, "total": total,
        "by_country": _top(by_country, 12), "by_capability": _top(by_capability, 12),
        "outcomes": outcomes, "case_ages": [(label, ages[label]) for _, label in AGE_BUCKETS],
    }


def deals_in_year(conn, year: int) -> list[dict]:
    """One entry per transaction screened in ``year``: its latest screening that year (country, caps, decision).

    ``capabilities`` lists the screening's distinct capability ids, sorted.
    """
    start = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    # Small columns only: on SQLite they come from the created_at index, which carries them (migration 0003).
    ranked = (select(screenings.c.id, screenings.c.end_user_country, screenings.c.capabilities,
                     screenings.c.decision, func.row_number().over(
                         partition_by=screenings.c.transaction_id,
                         order_by=(screenings.c.created_at.desc(), screenings.c.id.desc())).label("rank"))
              .where(screenings.c.created_at >= start, screenings.c.created_at < end).subquery())
    rows = conn.execute(select(ranked).where(ranked.c.rank == 1)).all()
    legacy = {}
    if any(row.capabilities is None for row in rows):
        # Rows an older hrdd stored after the migration (a rolling upgrade) have no ids: read their requests.
        missing = select(ranked.c.id).where(ranked.c.rank == 1, ranked.c.capabilities.is_(None))
        legacy = {sid: capability_ids(request) for sid, request in conn.execute(
            select(screenings.c.id, screenings.c.request).where(screenings.c.id.in_(missing)))}
    return [{"country": row.end_user_country,
             "capabilities": legacy[row.id] if row.capabilities is None else capabilities_of(row.capabilities),
             "decision": row.decision} for row in rows]


def decisions_in_year(conn, year: int) -> list[dict]:
    """The decision in force at year end for each transaction decided during ``year``.

    A first approval still awaiting its second approver at year end is not in force: not counted.
    """
    rows = conn.execute(select(case_decisions.c.transaction_id, case_decisions.c.outcome,
                               case_decisions.c.decided_at, case_decisions.c.id)
                        .where(case_decisions.c.decided_at >= f"{year}-01-01",
                               case_decisions.c.decided_at < f"{year + 1}-01-01",
                               or_(case_decisions.c.dual_control.is_(None),
                                   case_decisions.c.second_approval_of.is_not(None))))
    latest: dict[str, tuple] = defaultdict(tuple)
    for row in rows:
        key = (row.decided_at, row.id)
        if not latest[row.transaction_id] or key > latest[row.transaction_id][0]:
            latest[row.transaction_id] = (key, row.outcome)
    return [{"outcome": outcome} for _, outcome in latest.values()]
