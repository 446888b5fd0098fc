"""Whether an executed contract rider covers an order (or a renewal, a post-sale order): its end-user and
purpose, nothing it does not name, no larger scale, every clause."""

from __future__ import annotations

import sqlalchemy as sa

from hrdd import material
from hrdd.adapters.tables import iso, rider_executions
from hrdd.model import Transaction
from hrdd.tables import screenings
from hrdd.workspace.review import has_conditions
from hrdd.workspace.util import end_user_key, parse_iso

# Built once: read on every gate of an order that requires a rider. One statement for all executions.
_EXECUTIONS = (
    sa.select(rider_executions.c.id, rider_executions.c.screening_id, rider_executions.c.executed_at,
              rider_executions.c.recorded_at, screenings.c.result)
    .select_from(rider_executions.outerjoin(screenings, screenings.c.id == rider_executions.c.screening_id))
    .where(rider_executions.c.transaction_id == sa.bindparam("txn"))
    .order_by(rider_executions.c.executed_at.desc(), rider_executions.c.id.desc()))
_SCREENING_AT = (sa.select(screenings.c.result)
                 .where(screenings.c.transaction_id == sa.bindparam("txn"),
                        screenings.c.created_at <= sa.bindparam("at"))
                 .order_by(screenings.c.created_at.desc(), screenings.c.id.desc()).limit(1))


_ID_AT = (sa.select(screenings.c.id, screenings.c.created_at)
          .where(screenings.c.transaction_id == sa.bindparam("txn"), screenings.c.created_at <= sa.bindparam("at"))
          .order_by(screenings.c.created_at.desc(), screenings.c.id.desc()).limit(1))
_FIRST = (sa.select(screenings.c.id, screenings.c.created_at)
          .where(screenings.c.transaction_id == sa.bindparam("txn"))
          .order_by(screenings.c.created_at, screenings.c.id).limit(1))
_CREATED = sa.select(screenings.c.created_at).where(screenings.c.id == sa.bindparam("sid"))


class ExecutionDateError(ValueError):
    """``executed_at`` cannot be the execution of the rider it would be recorded for (a 422 on executed_at)."""


def screening_signed(conn, transaction_id: str, executed_at, recorded_at) -> dict | None:
    """The screening an execution that names none was for: the deal's newest when it was executed."""
    # A rider cannot be for facts screened after it was signed. execution_basis refuses dates before the
    # deal's first screening, so only rows recorded before it did need the fallback: the newest screening
    # when the execution was recorded.
    return (conn.execute(_SCREENING_AT, {"txn": transaction_id, "at": executed_at}).scalar()
            or conn.execute(_SCREENING_AT, {"txn": transaction_id, "at": recorded_at}).scalar())


def execution_basis(conn, transaction_id: str, executed_at, screening_id: str | None) -> str | None:
    """The screening whose rider was executed at ``executed_at``: the one named, else the deal's newest then."""
    at = {"txn": transaction_id, "at": executed_at}
    if screening_id is None:
        first = conn.execute(_FIRST, {"txn": transaction_id}).first()
        if first is None:
            return None  # nothing screened: the gate says no execution names a screening of the deal
        if executed_at < first.created_at:
            # No rider of the deal existed then: any screening hrdd picked would be a guess, and the newest
            # (the old fallback) could name facts the signed text never saw.
            raise ExecutionDateError(
                f"{iso(executed_at)} is before the deal's first screening {first.id} ({iso(first.created_at)}), "
                "so no rider of this deal existed then; give screening_id, the screening whose rider was "
                "executed, or correct executed_at")
        return conn.execute(_ID_AT, at).first().id
    created = conn.execute(_CREATED, {"sid": screening_id}).scalar()
    # Named, but dated before that screening existed while the deal already had an older one: the rider
    # signed then was the older screening's, and binding the newer one would cover facts it never named.
    # Dated before every screening of the deal, it is accepted: a rider signed outside hrdd, whose facts
    # the contracts team vouches for by naming the screening; the gate compares those facts, not the date.
    then = conn.execute(_ID_AT, at).first() if created is not None and executed_at < created else None
    if then is not None:
        raise ExecutionDateError(
            f"{iso(executed_at)} is before screening {screening_id} was created ({iso(created)}), so the rider "
            f"executed then was not its rider; the deal's screening then was {then.id} ({iso(then.created_at)}): "
            "give that one as screening_id, or correct executed_at")
    return screening_id


def executions_with_basis(conn, transaction_id: str) -> list[tuple[dict, dict | None]]:
    """Each recorded execution (newest first) with the screening whose rider it was, if known."""
    out = []
    for row in conn.execute(_EXECUTIONS, {"txn": transaction_id}):
        basis = row.result if row.screening_id else screening_signed(conn, transaction_id, row.executed_at,
                                                                     row.recorded_at)
        out.append(({"id": row.id, "executed_at": iso(row.executed_at)}, basis))
    return out


def gaps(basis: dict, order: dict, rules: material.Rules = material.DEFAULT_RULES) -> list[str]:
    """What the rider of screening ``basis`` does not cover in screening ``order``; empty when it covers it.

    A smaller deal is covered: a party, item, capability or country the rider names and the order no
    longer has is no gap, nor a lower quantity. The end-user is compared by identifying words, so
    punctuation is no gap either. Under the policy's ``rules``, another intended use (the rider's Permitted
    Purpose) is a gap, and so is a quantity or value grown beyond its factor.
    """
    old, new = Transaction.from_dict(basis["transaction"]), Transaction.from_dict(order["transaction"])
    out = []
    if end_user_key(old.end_user.name, old.end_user.country) != end_user_key(new.end_user.name, new.end_user.country):
        out.append(f"end-user changed from {old.end_user.name!r} ({old.end_user.country}) to "
                   f"{new.end_user.name!r} ({new.end_user.country})")
    elif (old.end_user.type, old.end_user.sector) != (new.end_user.type, new.end_user.sector):
        out.append(f"end-user changed from {old.end_user.type}/{old.end_user.sector} to "
                   f"{new.end_user.type}/{new.end_user.sector}")
    named = {(p.role, end_user_key(p.name, p.country)) for p in old.parties}
    out += [f"new party: {p.role} {p.name!r}" + (f" ({p.country})" if p.country else "")
            for p in new.parties if (p.role, end_user_key(p.name, p.country)) not in named]
    old_items, new_items = _capabilities(old), _capabilities(new)
    for sku, caps in new_items.items():
        if sku not in old_items:
            out.append(f"new item: {sku}" + (f" ({', '.join(sorted(caps))})" if caps else ""))
        elif caps - old_items[sku]:
            out.append(f"item {sku} adds {', '.join(sorted(caps - old_items[sku]))}")
    out += [f"new country: {c}" for c in sorted(set(new.countries()) - set(old.countries()))]
    out += [f"new deployment country: {c}"
            for c in sorted(set(new.deployment_countries) - set(old.deployment_countries)) if c in old.countries()]
    out += material.changes(old.material_facts(), new.material_facts(), rules)
    out += [f"red flag {f} is not in its findings" for f in sorted(_flags(order) - _flags(basis))]
    out += [f"clause {c} is not in it" for c in sorted(_clauses(order) - _clauses(basis))]
    return out


def _capabilities(transaction: Transaction) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for item in transaction.items:  # a SKU on several lines: all its capabilities
        out.setdefault(item.sku, set()).update(item.capabilities)
    return out


def _flags(screening: dict) -> set[str]:
    return {f["id"] for f in screening.get("red_flags") or ()}


def _clauses(screening: dict) -> set[str]:
    return {s["id"] for s in screening.get("safeguards") or () if s.get("kind") == "clause"}


def review_gap(executed_at: str, review: dict | None) -> str | None:
    """Why a rider executed at ``executed_at`` lacks the reviewer's conditions of approval, or None.

    A rider carries the conditions of the approval in force when it is generated ("Conditions of
    approval"); one executed before that approval was decided was generated without them.
    """
    if not has_conditions(review) or parse_iso(executed_at) >= parse_iso(review["decided_at"]):
        return None
    return (f"it was executed before the reviewer's conditions of approval (decision {review['decision_id']} of "
            f"{review['decided_at']}), so it does not contain them")
