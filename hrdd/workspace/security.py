"""Sign-in sessions, CSRF tokens and role checks for the server-rendered pages."""

from __future__ import annotations

import functools
import hmac
import os
import secrets
from datetime import timedelta

from flask import abort, current_app, g, redirect, render_template, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from sqlalchemy import select

from hrdd.errors import StartupError
from hrdd.store import dialect_insert
from hrdd.workspace import sessions
from hrdd.workspace.tables import workspace_settings

CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Roles whose people start somewhere other than the case queue (the endpoint of their first page).
ROLE_HOMES = {"export": "workspace_checklists.page"}


def _truthy(value) -> bool:
    return str(value).strip().lower() not in ("0", "false", "no", "off", "")


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without building the signer for requests that carry no cookie.

    Machine calls (API keys, webhooks) never send one; Flask would otherwise derive the signing key on
    each of them for nothing.
    """

    def open_session(self, app, request):
        """An empty session when there is no session cookie, else Flask's checked one."""
        raw = request.environ.get("HTTP_COOKIE")
        if app.secret_key and (not raw or self.get_cookie_name(app) not in raw):
            return self.session_class()
        return super().open_session(app, request)


def configure_sessions(app) -> None:
    """Secure cookie settings; the Secure flag can be switched off only explicitly (local http tests)."""
    app.session_interface = CookieSessions()
    secure = app.config.get("HRDD_SESSION_COOKIE_SECURE", os.environ.get("HRDD_SESSION_COOKIE_SECURE", "1"))
    app.config.update(
        SESSION_COOKIE_NAME=app.config.get("HRDD_SESSION_COOKIE_NAME", "hrdd_session"),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=_truthy(secure),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        HRDD_SESSION_MAX_AGE=timedelta(hours=_max_hours(app)),
    )


def _max_hours(app) -> float:
    """HRDD_SESSION_MAX_HOURS: how long a session lasts from sign-in however busy it is (default 12)."""
    raw = app.config.get("HRDD_SESSION_MAX_HOURS", os.environ.get("HRDD_SESSION_MAX_HOURS", "12"))
    try:
        hours = float(raw)
    except (TypeError, ValueError):
        hours = -1.0
    if not 0 < hours <= 24 * 30:
        raise StartupError(f"HRDD_SESSION_MAX_HOURS must be a number of hours above 0 and at most 720 "
                           f"(the longest a workspace session lasts from sign-in), not {raw!r}")
    return hours


def ensure_secret_key(app, store) -> None:
    """Give the app a session-signing key: configuration, HRDD_SECRET_KEY, or one kept in the database.

    Keeping a generated key in the database means every worker process of one deployment signs
    sessions alike without anyone having to invent a secret.
    """
    key = app.config.get("SECRET_KEY") or app.config.get("HRDD_SECRET_KEY") or os.environ.get("HRDD_SECRET_KEY")
    if not key:
        # Insert-if-absent, then read: instances starting at once all end up with the first one's key.
        with store.begin() as conn:
            conn.execute(dialect_insert(store.dialect, workspace_settings).values(key="session_secret", value=secrets.token_hex(32))
                         .on_conflict_do_nothing(index_elements=["key"]))
        with store.engine.connect() as conn:
            key = conn.execute(select(workspace_settings.c.value)
                               .where(workspace_settings.c.key == "session_secret")).scalar_one()
    app.secret_key = key


def csrf_token() -> str:
    """The session's CSRF token (created on first use); forms carry it in a hidden field."""
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def csrf_ok() -> bool:
    """Whether a safe request, or an unsafe one whose form (or X-CSRF-Token) carries the session's token."""
    if request.method not in UNSAFE_METHODS:
        return True
    sent = request.form.get(CSRF_FIELD, "") or request.headers.get("X-CSRF-Token", "")
    expected = session.get("csrf", "")
    # Bytes, not str: compare_digest raises TypeError on non-ASCII text (a forged token was a 500).
    if not expected or not sent or not hmac.compare_digest(str(sent).encode(), str(expected).encode()):
        current_app.logger.info("refused a form post without a valid CSRF token: %s", request.path)
        return False
    return True


def check_form_text() -> None:
    """Refuse (400 page) an unsafe request whose form holds a NUL character, which no stored text may hold."""
    if request.method not in UNSAFE_METHODS:
        return None
    for key, value in request.form.items(multi=True):
        # A multipart part without a name (no key) is possible from a hand-made request: not a 500.
        if "\x00" in (key or "") or "\x00" in (value or ""):
            return render_template("workspace/error.html", title="Bad request",
                                   message="A field of this form contains a NUL character; remove it and try again."), 400
    return None


def sign_in(user: dict, store) -> None:
    """Start a fresh session for the user: a new server-side session id and CSRF token, so no old one is reused.

    The session this browser had (the same person signing in again, or someone else at the same computer)
    ends in the store too: a copy of its cookie must not stay signed in beside the new one.
    """
    previous = session.get("sid")
    session.clear()
    with store.begin() as conn:
        if isinstance(previous, str) and previous:
            sessions.end(conn, previous)
        session_id = sessions.start(conn, user["name"], current_app.permanent_session_lifetime,
                                    current_app.config["HRDD_SESSION_MAX_AGE"])
    session.permanent = True
    session["sid"] = session_id
    session["csrf"] = secrets.token_urlsafe(32)


def sign_out(store) -> None:
    """End the session here and in the store, so a copy of the cookie no longer signs anyone in."""
    session_id = session.get("sid")
    if isinstance(session_id, str) and session_id:
        with store.begin() as conn:
            sessions.end(conn, session_id)
    session.clear()


def load_user(resume) -> None:
    """Put the person of the cookie's live session (re-read from the store) in ``g.user``, or None.

    ``resume`` maps a session id to its still-enabled person or None (ended, expired, disabled): the cookie
    is then cleared, CSRF token included, so nothing it carries is accepted any more.
    """
    g.user = None
    session_id = session.get("sid")
    if not isinstance(session_id, str) or not session_id:
        if "user" in session:  # a cookie from before sessions were kept server-side
            session.clear()
        return
    user = resume(session_id)
    if user is None or user.get("disabled"):
        session.clear()
        return
    g.user = user


def login_required(*roles: str):
    """Require a signed-in person with one of ``roles`` (admin passes every check)."""
    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            user = g.get("user")
            if user is None:
                return redirect(url_for("workspace.login", next=request.full_path.rstrip("?")))
            if roles and user["role"] != "admin" and user["role"] not in roles:
                abort(403)
            return view(*args, **kwargs)
        wrapper.required_roles = tuple(sorted(set(roles) | {"admin"})) if roles else ("any",)
        wrapper.auth = "session"
        return wrapper
    return decorator


def home_url(user: dict | None = None) -> str:
    """The page a person's role starts on: the checklists for export-control staff, else the case queue."""
    user = user or g.get("user") or {}
    return url_for(ROLE_HOMES.get(user.get("role"), "workspace.queue"))


def role_home(view):
    """Send a signed-in person whose role starts elsewhere (``ROLE_HOMES``) to that page: the workspace's index
    is the case queue, which export-control staff may not open."""
    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        user = g.get("user")
        if user is not None and user["role"] in ROLE_HOMES:
            return redirect(home_url(user))
        return view(*args, **kwargs)
    return wrapper


def safe_next(target: str | None, user: dict | None = None) -> str:
    """Only follow a ``next`` that stays on this site (no scheme, no host), as a browser would read it; else the
    home page of ``user``'s role (default: the signed-in person's)."""
    # Browsers drop tabs and line breaks anywhere in a URL and read "\" as "/", so "/\t/evil.example" goes
    # to evil.example; a line break would also make the Location header itself fail (a 500 after signing in).
    if (target and target.startswith("/") and not target.startswith("//")
            and not any(ch < " " or ch in "\\\x7f" for ch in target)):
        return target
    return home_url(user)
