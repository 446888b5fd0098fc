"""Figures for the dashboard and the transparency report, read from the stored screenings and cases."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime

from sqlalchemy import func, select

from hrdd.model import DECISIONS
from hrdd.tables import screenings
from hrdd.workspace.tables import case_decisions, cases
from hrdd.workspace.util import parse_iso

AGE_BUCKETS = ((1, "under 1 day"), (7, "1-7 days"), (30, "8-30 days"), (None, "over 30 days"))


def _aware(value) -> datetime:
    if isinstance(value, str):
        return parse_iso(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _capabilities(request: dict) -> list[str]:
    seen: dict[str, None] = {}
    for item in (request or {}).get("items") or ():
        for cap in item.get("capabilities") or ():
            seen.setdefault(cap, None)
    return list(seen)


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
    by_month = {d: [0] * len(periods) for d in DECISIONS}
    by_country: Counter = Counter()
    by_capability: Counter = Counter()
    index = {p: i for i, p in enumerate(periods)}
    rows = conn.execute(select(screenings.c.created_at, screenings.c.decision, screenings.c.end_user_country,
                               screenings.c.request).where(screenings.c.created_at >= start))
    total = 0
    for row in rows:
        total += 1
        period = _aware(row.created_at).strftime("%Y-%m")
        if period in index and row.decision in by_month:
            by_month[row.decision][index[period]] += 1
        by_country[row.end_user_country] += 1
        for cap in _capabilities(row.request):
            by_capability[cap] += 1
    outcomes = Counter(dict(conn.execute(select(case_decisions.c.outcome, func.count())
                                         .where(case_decisions.c.decided_at >= start.isoformat())
                                         .group_by(case_decisions.c.outcome)).all()))
    now = datetime.now(UTC)
    ages = Counter()
    for (opened_at,) in conn.execute(select(cases.c.opened_at).where(cases.c.status.in_(
            ("open", "information_requested")))):
        days = (now - parse_iso(opened_at)).total_seconds() / 86400
        for limit, label in AGE_BUCKETS:
            if limit is None or days < limit:
                ages[label] += 1
                break
    return {
        "periods": periods, "by_month": by_month, "total": total,
        "by_country": by_country.most_common(12), "by_capability": by_capability.most_common(12),
        "outcomes": outcomes, "case_ages": [(label, ages[label]) for _, label in AGE_BUCKETS],
    }


def deals_in_year(conn, year: int) -> list[dict]:
    """One entry per transaction screened in ``year``: its latest screening that year (country, caps, decision)."""
    start = datetime(year, 1, 1, tzinfo=UTC)
    end = datetime(year + 1, 1, 1, tzinfo=UTC)
    latest: dict[str, tuple] = {}
    rows = conn.execute(select(screenings.c.transaction_id, screenings.c.created_at, screenings.c.id,
                               screenings.c.decision, screenings.c.end_user_country, screenings.c.request)
                        .where(screenings.c.created_at >= start, screenings.c.created_at < end))
    for row in rows:
        key = (_aware(row.created_at), row.id)
        if row.transaction_id not in latest or key > latest[row.transaction_id][0]:
            latest[row.transaction_id] = (key, row)
    return [{"country": row.end_user_country, "capabilities": _capabilities(row.request), "decision": row.decision}
            for _, row in latest.values()]


def decisions_in_year(conn, year: int) -> list[dict]:
    """The decision in force at year end for each transaction decided during ``year``."""
    rows = conn.execute(select(case_decisions.c.transaction_id, case_decisions.c.outcome,
                               case_decisions.c.decided_at, case_decisions.c.id)
                        .where(case_decisions.c.decided_at >= f"{year}-01-01",
                               case_decisions.c.decided_at < f"{year + 1}-01-01"))
    latest: dict[str, tuple] = defaultdict(tuple)
    for row in rows:
        key = (row.decided_at, row.id)
        if not latest[row.transaction_id] or key > latest[row.transaction_id][0]:
            latest[row.transaction_id] = (key, row.outcome)
    return [{"outcome": outcome} for _, outcome in latest.values()]
