"""Post-sale monitoring (step 7): re-screen active transactions when data, lists or policy change."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import sqlalchemy as sa

from hrdd import audit
from hrdd.engine import RULESET_VERSION
from hrdd.model import ORDER_STAGES
from hrdd.store import governing_order
from hrdd.tables import screenings
from hrdd.workspace import cases

# The deals sold: an order is as much a sale to monitor as a renewal (many CRMs never send post_sale).
DEFAULT_STAGES = ORDER_STAGES
LIST_VERSION_KEY = "parties"
BATCH = 100  # screenings read at a time


@dataclass
class Change:
    """One transaction whose re-screening differs from its previous screening."""

    transaction_id: str
    previous: dict
    current: dict
    summary: str

    @property
    def decision_changed(self) -> bool:
        """True when the engine's decision is different now."""
        return self.previous["decision"] != self.current["decision"]


@dataclass
class RescreenResult:
    """What a run did: examined, stored anew, already stored by a concurrent run, changed decisions."""

    examined: int = 0
    stored: int = 0
    replayed: int = 0
    changes: list[Change] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def decision_changes(self) -> list[Change]:
        """The changes that altered the decision (each opened or updated a case)."""
        return [c for c in self.changes if c.decision_changed]


def _older_than(recorded, since: str) -> bool:
    if recorded is None:
        return True  # screened before any list was recorded: stale against every list version
    try:
        return float(recorded) < float(since)
    except (TypeError, ValueError):
        return str(recorded) < str(since)


def active_screenings(store, stages: Iterable[str], since_list_version: str | None = None) -> Iterator[dict]:
    """The governing screening of every transaction whose stage now is one of ``stages``, oldest first.

    With ``since_list_version`` V, only those last screened against a restricted-party list version
    older than V (so not yet against V). Screenings are read a batch at a time, so a run over many large
    deals holds a batch in memory, not all of them.
    """
    stages = tuple(stages)
    ranked = sa.select(screenings.c.id, screenings.c.transaction_id, screenings.c.stage,
                       sa.func.row_number().over(partition_by=screenings.c.transaction_id,
                                                 order_by=governing_order()).label("rank")).subquery()
    query = (sa.select(screenings.c.id)
             .join(ranked, ranked.c.id == screenings.c.id)
             .where(ranked.c.rank == 1, ranked.c.stage.in_(stages))
             .order_by(screenings.c.created_at, screenings.c.id))
    with store.engine.connect() as conn:
        ids = list(conn.execute(query).scalars())
    for start in range(0, len(ids), BATCH):
        batch = ids[start:start + BATCH]
        with store.engine.connect() as conn:
            results = {row.id: row.result for row in conn.execute(
                sa.select(screenings.c.id, screenings.c.result).where(screenings.c.id.in_(batch)))}
        for screening_id in batch:
            result = results.get(screening_id)
            if result is None:
                continue
            if since_list_version is not None and not _older_than(
                    ((result.get("versions") or {}).get("data") or {}).get(LIST_VERSION_KEY), since_list_version):
                continue
            yield result


def describe(previous: dict, current: dict) -> str:
    """Say in words what changed between two screenings: decision, red flags and data versions."""
    parts = []
    if previous["decision"] != current["decision"]:
        parts.append(f"decision {previous['decision']} -> {current['decision']}")
    before = {f["id"]: f for f in previous.get("red_flags") or ()}
    after = {f["id"]: f for f in current.get("red_flags") or ()}
    added = [f"{i} ({after[i]['severity']}: {after[i]['title']})" for i in after if i not in before]
    removed = [i for i in before if i not in after]
    if added:
        parts.append("new red flags " + "; ".join(added))
    if removed:
        parts.append("red flags no longer raised " + ", ".join(removed))
    old_v, new_v = previous.get("versions") or {}, current.get("versions") or {}
    changed = [f"{k} {old_v.get(k)} -> {new_v.get(k)}" for k in ("ruleset", "policy") if old_v.get(k) != new_v.get(k)]
    old_d, new_d = old_v.get("data") or {}, new_v.get("data") or {}
    changed += [f"{k} {old_d.get(k)} -> {new_d.get(k)}" for k in sorted(set(old_d) | set(new_d))
                if old_d.get(k) != new_d.get(k)]
    if changed:
        parts.append("versions changed: " + ", ".join(changed))
    return "; ".join(parts) or "no change"


def _outcome(screening) -> tuple:
    """What a re-screening is compared on: decision, red flag ids and versions (of a Screening or its dict)."""
    if isinstance(screening, dict):
        return (screening["decision"], sorted(f["id"] for f in screening.get("red_flags") or ()),
                screening.get("versions"))
    return screening.decision, sorted(screening.flag_ids()), screening.versions


def _differs(previous: dict, current) -> bool:
    return _outcome(previous) != _outcome(current)


def rescreen(services, *, stages: Iterable[str] = DEFAULT_STAGES, since_list_version: str | None = None,
             store_unchanged: bool = False, actor: str = "system", dry_run: bool = False,
             progress: Callable[[Iterable[dict]], Iterable[dict]] | None = None) -> RescreenResult:
    """Re-screen active transactions; store a new screening when anything changed (or always, if asked).

    Each changed decision opens a case (or adds a note to the transaction's open case) saying what
    changed, in the same database transaction as the new screening. A dry run screens and compares the
    same way and stores nothing: no screening, no case, no audit entry.
    """
    result = RescreenResult()
    targets = active_screenings(services.store, stages, since_list_version)
    for previous in (progress(targets) if progress else targets):
        result.examined += 1
        # One connection per deal for the look-ups of the comparison and, when it differs, of the store.
        with services.store.read_scope():
            stored = (_compare_one if dry_run else _rescreen_one)(services, previous, store_unchanged, result)
        if stored is not None and _differs(previous, stored):
            result.changes.append(Change(previous["transaction_id"], previous, stored, describe(previous, stored)))
    if dry_run:
        return result
    with services.store.begin() as conn:
        # The versions screened against say which data, lists and policy the run applied.
        audit.record(conn, actor, "rescreen.run", "rescreen", {
            "stages": list(stages), "since_list_version": since_list_version, "examined": result.examined,
            "stored": result.stored, "replayed": result.replayed, "decision_changes": len(result.decision_changes),
            "changed_transactions": [c.transaction_id for c in result.decision_changes],
            "versions": _versions_now(services), "errors": len(result.errors)})
    return result


def _versions_now(services) -> dict:
    """The ruleset, policy and data versions a screening made now records."""
    context = services.engine.context()
    data: dict = {}
    for extra in services.pm.hook.hrdd_versions(context=context):
        data.update(extra or {})
    return {"ruleset": RULESET_VERSION, "policy": f"{services.policy.version} ({services.policy.digest})",
            "data": data}


def _compare_one(services, previous: dict, store_unchanged: bool, result: RescreenResult) -> dict | None:
    """Screen one transaction again without storing anything; the screening as it would be stored."""
    body = services.store.get_screening_request(previous["id"])
    try:
        screened = services.prescreen(body, "rescreen", stored_request=True)
    except Exception as exc:  # one bad stored record must not stop the look at the others
        result.errors.append(f"{previous['transaction_id']}: {exc}")
        return None
    return screened.screening.to_dict()


def _rescreen_one(services, previous: dict, store_unchanged: bool, result: RescreenResult) -> dict | None:
    """Screen one transaction again and store it if it differs (or always); the new screening, if stored."""
    body = services.store.get_screening_request(previous["id"])
    try:
        # Validated and screened once, with the answers on record the stored screening would use: what is
        # compared is what is stored, unless an upload lands before the deal is locked.
        screened = services.prescreen(body, "rescreen", stored_request=True)
    except Exception as exc:  # one bad stored record must not stop monitoring of the others
        result.errors.append(f"{previous['transaction_id']}: {exc}")
        return None
    if not store_unchanged and not _differs(previous, screened.screening):
        return None
    # Described from the screening stored: screened again under the deal's lock, it may differ from this one.
    def reason(stored: dict) -> str:
        return "Post-sale re-screening: " + describe(previous, stored)

    # Keyed by the screening it follows: runs started at once on several machines store one
    # re-screening per transaction (the unique key decides), and the others replay it.
    with cases.rescreen_context(previous, reason):
        current, created = services.screen_and_store(body, source="rescreen", stored_request=True,
                                                     idempotency_key=f"rescreen:{previous['id']}",
                                                     screened=screened)
    if not created:
        result.replayed += 1
        return None
    result.stored += 1
    return current
