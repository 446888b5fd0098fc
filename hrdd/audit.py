"""Append-only, hash-chained audit log: every decision, override, mark and configuration change."""

from __future__ import annotations

import getpass
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, Integer, String, Table, Text, insert, select, update

from hrdd.tables import metadata

GENESIS = "0" * 64

audit_log = Table(
    "audit_log", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", String(32), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(100), nullable=False, index=True),
    Column("subject", String(200), nullable=False, index=True),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

# One row (id 1) holding the newest sequence number and hash: it serialises writers (row lock) and lets
# verification notice entries removed from the end of the chain.
audit_head = Table(
    "audit_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("hash", String(64), nullable=False),
)


def now_iso() -> str:
    """The current UTC time as ISO 8601 with a Z suffix, to the microsecond (keeps entries ordered)."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def cli_actor() -> str:
    """The actor name for commands run from a terminal."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


def _canonical(details: Any) -> str:
    return json.dumps(details if details is not None else {}, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, default=str)


def entry_hash(seq: int, at: str, actor: str, action: str, subject: str, details_json: str,
               prev_hash: str) -> str:
    """The SHA-256 over an entry's fields and its predecessor's hash."""
    payload = json.dumps([seq, at, actor, action, subject, details_json, prev_hash],
                         separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


_HEAD = select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1).with_for_update()
_APPEND = insert(audit_log)
_MOVE_HEAD = update(audit_head).where(audit_head.c.id == 1)


def lock_chain(connection) -> None:
    """Take the chain's row lock now, for a writer that reads state before deciding to append.

    Held until the caller's transaction ends; instances sharing a PostgreSQL database queue here, so
    the chain never forks (SQLite has one writer at a time anyway).
    """
    connection.execute(_HEAD).first()


def record(connection, actor: str, action: str, subject: str, details: dict | None = None) -> dict:
    """Append one entry in the caller's database transaction and return it.

    ``actor`` is who did it (``user:alice``, ``key:crm-prod``, ``cli:root``, ``system``), ``action`` a
    dotted verb (``case.decision``), ``subject`` the id acted on, ``details`` JSON-serialisable facts.
    Never put secrets in ``details``: the log is kept for ever.
    """
    head = connection.execute(_HEAD).first()
    if head is None:
        connection.execute(insert(audit_head).values(id=1, seq=0, hash=GENESIS))
        prev_seq, prev_hash = 0, GENESIS
    else:
        prev_seq, prev_hash = head.seq, head.hash
    seq = prev_seq + 1
    at = now_iso()
    details_json = _canonical(details)
    digest = entry_hash(seq, at, actor, action, subject, details_json, prev_hash)
    row = {"seq": seq, "at": at, "actor": actor, "action": action, "subject": subject,
           "details": details_json, "prev_hash": prev_hash, "hash": digest}
    connection.execute(_APPEND, row)
    connection.execute(_MOVE_HEAD, {"seq": seq, "hash": digest})
    return {**row, "details": json.loads(details_json)}


@dataclass
class VerifyResult:
    """The outcome of checking the chain: entries seen, the head hash, and every problem found."""

    entries: int = 0
    head_hash: str = GENESIS
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the chain is intact."""
        return not self.problems


def verify(connection) -> VerifyResult:
    """Recompute the chain and report edited, removed, inserted or reordered entries."""
    result = VerifyResult()
    expected_seq, prev_hash = 1, GENESIS
    rows = connection.execute(select(audit_log).order_by(audit_log.c.seq))
    for row in rows:
        result.entries += 1
        if row.seq != expected_seq:
            missing = f"{expected_seq}" if row.seq == expected_seq + 1 else f"{expected_seq}-{row.seq - 1}"
            result.problems.append(f"entry {missing} is missing (next entry found is {row.seq})")
        if row.prev_hash != prev_hash:
            result.problems.append(f"entry {row.seq}: link to the previous entry is broken")
        digest = entry_hash(row.seq, row.at, row.actor, row.action, row.subject, row.details, row.prev_hash)
        if digest != row.hash:
            result.problems.append(f"entry {row.seq}: content does not match its hash (edited)")
        expected_seq, prev_hash = row.seq + 1, row.hash
    head = connection.execute(select(audit_head).where(audit_head.c.id == 1)).first()
    last_seq = expected_seq - 1
    if head is not None:
        if head.seq != last_seq or head.hash != prev_hash:
            result.problems.append(
                f"the chain ends at entry {last_seq} but the head records entry {head.seq}: "
                "entries were removed from the end or the head was altered")
    elif result.entries:
        result.problems.append("the head record is missing")
    result.head_hash = prev_hash
    return result


def entries(connection, *, subject: str | None = None, limit: int = 200) -> list[dict]:
    """The newest entries first, optionally only those about one subject."""
    query = select(audit_log).order_by(audit_log.c.seq.desc()).limit(limit)
    if subject is not None:
        query = query.where(audit_log.c.subject == subject)
    return [{**row._mapping, "details": json.loads(row.details)} for row in connection.execute(query)]
