"""People who sign in to the workspace (reviewers, export-control staff, admins), with passwords hashed by werkzeug."""

from __future__ import annotations

import re

from sqlalchemy import insert, select, update
from werkzeug.security import check_password_hash, generate_password_hash

from hrdd import audit
from hrdd.workspace import sessions
from hrdd.workspace.tables import users
from hrdd.workspace.util import now_iso

# reviewer: cases, grievances, reports; export: due diligence checklists; admin: everything.
ROLES = ("reviewer", "export", "admin")
MIN_PASSWORD = 12
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,99}$")
# A real hash to compare against when the name is unknown, so timing does not reveal which names exist.
_DUMMY_HASH = generate_password_hash("not-a-real-password-0000")


class UserError(ValueError):
    """A user could not be created or changed; the message says why."""


def create_user(connection, name: str, role: str, password: str, actor: str) -> dict:
    """Create a person who can sign in; refuses bad names, unknown roles, short passwords, duplicates."""
    if not _NAME.match(name or ""):
        raise UserError("name must be 2-100 characters: letters, digits, '.', '_', '@' or '-'")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)} (got {role!r})")
    if len(password or "") < MIN_PASSWORD:
        raise UserError(f"password must be at least {MIN_PASSWORD} characters")
    if connection.execute(select(users.c.id).where(users.c.name == name)).first():
        raise UserError(f"a user named {name!r} already exists")
    connection.execute(insert(users).values(
        name=name, role=role, password_hash=generate_password_hash(password), created_at=now_iso(),
        disabled=False))
    audit.record(connection, actor, "user.create", f"user:{name}", {"role": role})
    return {"name": name, "role": role}


def set_password(connection, name: str, password: str, actor: str) -> None:
    """Replace a person's password and end every session they have (whoever knew the old one is out)."""
    if len(password or "") < MIN_PASSWORD:
        raise UserError(f"password must be at least {MIN_PASSWORD} characters")
    result = connection.execute(update(users).where(users.c.name == name).values(
        password_hash=generate_password_hash(password)))
    if result.rowcount == 0:
        raise UserError(f"no user named {name!r}")
    ended = sessions.end_all(connection, name)
    audit.record(connection, actor, "user.password", f"user:{name}", {"sessions_ended": ended})


def set_disabled(connection, name: str, disabled: bool, actor: str) -> None:
    """Disable (ending every session, so re-enabling revives none) or re-enable a person's sign-in."""
    result = connection.execute(update(users).where(users.c.name == name).values(disabled=disabled))
    if result.rowcount == 0:
        raise UserError(f"no user named {name!r}")
    details = {"sessions_ended": sessions.end_all(connection, name)} if disabled else {}
    audit.record(connection, actor, "user.disable" if disabled else "user.enable", f"user:{name}", details)


def authenticate(connection, name: str, password: str) -> dict | None:
    """The user's name and role when the password is right and the account enabled, else None."""
    row = connection.execute(select(users).where(users.c.name == (name or ""))).first()
    if row is None:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not check_password_hash(row.password_hash, password or "") or row.disabled:
        return None
    return {"name": row.name, "role": row.role}


def get_user(connection, name: str) -> dict | None:
    """A user's public fields, or None."""
    row = connection.execute(select(users).where(users.c.name == name)).first()
    if row is None:
        return None
    return {"name": row.name, "role": row.role, "disabled": bool(row.disabled), "created_at": row.created_at}


def list_users(connection) -> list[dict]:
    """Every user's public fields, by name."""
    rows = connection.execute(select(users).order_by(users.c.name))
    return [{"name": r.name, "role": r.role, "disabled": bool(r.disabled), "created_at": r.created_at}
            for r in rows]
