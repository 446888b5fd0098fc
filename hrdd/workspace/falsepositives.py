"""Reviewers' false-positive marks on restricted-party matches, handed to the parties allowlist.

The interface between the workspace and restricted-party screening:

* The workspace always keeps the reviewer's mark in ``false_positive_marks`` (who, why, until when,
  from which case) and records it in the audit log.
* If the parties plugin owns an allowlist, it registers an object as
  ``app.extensions["hrdd_party_allowlist"]`` with a method
  ``add(connection, *, party_name, party_country, list_name, entry_id, reason, author, expires_at)``;
  the workspace calls it in the same database transaction, so the mark and the allowlist entry are
  stored together or not at all.
* A matcher without its own allowlist can ask :func:`is_marked` before raising a match.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from flask import current_app
from sqlalchemy import insert, or_, select

from hrdd import audit
from hrdd.workspace.tables import false_positive_marks
from hrdd.workspace.util import now_iso

EXTENSION = "hrdd_party_allowlist"


class MarkError(ValueError):
    """A false-positive mark was refused; the message says why."""


def party_of(match: dict) -> tuple[str, str | None]:
    """The screened party's name and country that a match concerns (the party, not the listed entry)."""
    party = match.get("party")
    if isinstance(party, dict):
        return party.get("name") or "", party.get("country")
    name = match.get("party_name") or match.get("query") or party or ""
    return str(name), match.get("party_country")


def _expiry(text: str) -> str | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise MarkError(f"expiry {text!r} is not a date (YYYY-MM-DD)") from None
    if day <= datetime.now(UTC).date():
        raise MarkError("expiry must be a date in the future")
    return f"{day.isoformat()}T00:00:00Z"


def mark(conn, services, *, match: dict, reason: str, expires: str, author: str, case_id: str | None) -> dict:
    """Record that ``match`` is not the screened party; pass it to the parties allowlist when present."""
    reason = (reason or "").strip()
    if len(reason) < 5:
        raise MarkError("give a reason for the false-positive mark (at least 5 characters)")
    party_name, party_country = party_of(match)
    if not party_name or not match.get("entry_id") or not match.get("list"):
        raise MarkError("the match does not name a party, list and entry id")
    row = {"party_name": party_name, "party_country": party_country, "list_name": str(match["list"]),
           "entry_id": str(match["entry_id"]), "reason": reason[:2000], "author": author,
           "created_at": now_iso(), "expires_at": _expiry(expires), "case_id": case_id}
    conn.execute(insert(false_positive_marks).values(**row))
    backend = current_app.extensions.get(EXTENSION) if current_app else None
    if backend is not None:
        backend.add(conn, party_name=party_name, party_country=party_country, list_name=row["list_name"],
                    entry_id=row["entry_id"], reason=row["reason"], author=author, expires_at=row["expires_at"])
    audit.record(conn, author, "party.false_positive", case_id or f"party:{party_name}",
                 {**{k: row[k] for k in ("party_name", "party_country", "list_name", "entry_id", "reason",
                                         "expires_at")},
                  "matched_name": match.get("matched_name"), "score": match.get("score"),
                  "allowlist": "parties plugin" if backend is not None else "workspace record only"})
    return row


def is_marked(conn, *, party_name: str, list_name: str, entry_id: str, at: str | None = None) -> bool:
    """True when a reviewer marked this party against this list entry and the mark has not expired."""
    at = at or now_iso()
    found = conn.execute(select(false_positive_marks.c.id).where(
        false_positive_marks.c.party_name == party_name, false_positive_marks.c.list_name == list_name,
        false_positive_marks.c.entry_id == entry_id,
        or_(false_positive_marks.c.expires_at.is_(None), false_positive_marks.c.expires_at > at)).limit(1)).first()
    return found is not None


def marks_for_case(conn, case_id: str) -> list[dict]:
    """The marks made from one case, oldest first."""
    rows = conn.execute(select(false_positive_marks).where(false_positive_marks.c.case_id == case_id)
                        .order_by(false_positive_marks.c.id))
    return [dict(r._mapping) for r in rows]
