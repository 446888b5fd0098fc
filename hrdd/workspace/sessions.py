"""Server-side records of workspace sign-ins: started at sign-in, ended by sign-out, a new password or disabling."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, delete, insert, select, update

from hrdd.workspace.tables import users, workspace_sessions
from hrdd.workspace.util import now_iso

# Writing the last use on every page view would make each read a write; this often is enough for an
# expiry of hours (a session may end this much before its cookie would).
TOUCH_EVERY = timedelta(minutes=5)

_RESUME = (select(users.c.name, users.c.role, users.c.disabled, users.c.created_at, workspace_sessions.c.seen_at,
                  workspace_sessions.c.created_at.label("started_at"))
           .join(users, users.c.name == workspace_sessions.c.user_name)
           .where(workspace_sessions.c.id_hash == bindparam("id_hash")))


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def start(conn, user_name: str, lifetime: timedelta, max_age: timedelta | None = None) -> str:
    """Record a new session for the user and return its id (for the signed cookie; only its hash is stored).

    Sessions of anyone unused for longer than ``lifetime``, or started longer than ``max_age`` ago, are
    deleted on the way.
    """
    now_moment = datetime.now(UTC)
    stale = workspace_sessions.c.seen_at < _iso(now_moment - lifetime)
    if max_age is not None:
        stale = stale | (workspace_sessions.c.created_at < _iso(now_moment - max_age))
    conn.execute(delete(workspace_sessions).where(stale))
    session_id = secrets.token_urlsafe(32)
    now = now_iso()
    conn.execute(insert(workspace_sessions).values(id_hash=_hash(session_id), user_name=user_name,
                                                   created_at=now, seen_at=now))
    return session_id


def end(conn, session_id: str) -> None:
    """End one session (signing out)."""
    conn.execute(delete(workspace_sessions).where(workspace_sessions.c.id_hash == _hash(session_id)))


def end_all(conn, user_name: str) -> int:
    """End every session of a person (new password, disabled account); how many were ended."""
    return conn.execute(delete(workspace_sessions).where(workspace_sessions.c.user_name == user_name)).rowcount


def resume(engine, session_id: str, lifetime: timedelta, max_age: timedelta | None = None) -> dict | None:
    """The person of a live session (name, role, disabled, created_at), or None when it was ended or expired.

    A session used within ``lifetime`` slides on (its last use is recorded at most every ``TOUCH_EVERY``),
    but never past ``max_age`` from signing in: a cookie kept busy (or stolen and kept busy) still ends.
    """
    id_hash = _hash(session_id)
    with engine.connect() as conn:
        row = conn.execute(_RESUME, {"id_hash": id_hash}).first()
    if row is None:
        return None
    now = datetime.now(UTC)
    seen = datetime.fromisoformat(row.seen_at.replace("Z", "+00:00"))
    if seen < now - lifetime:
        return None
    if max_age is not None and datetime.fromisoformat(row.started_at.replace("Z", "+00:00")) < now - max_age:
        return None
    if seen < now - TOUCH_EVERY:
        with engine.begin() as conn:
            conn.execute(update(workspace_sessions).where(workspace_sessions.c.id_hash == id_hash)
                         .values(seen_at=_iso(now)))
    return {"name": row.name, "role": row.role, "disabled": bool(row.disabled), "created_at": row.created_at}
