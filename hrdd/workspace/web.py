"""Wiring shared by the workspace's blueprints: the store, the signed-in user, templates and limits."""

from __future__ import annotations

import hmac
from pathlib import Path

from flask import Blueprint, current_app, g, render_template, request, session
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from werkzeug.exceptions import HTTPException

from hrdd.services import current_services
from hrdd.workspace import security, sessions, stale_forms

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATES = str(PACKAGE_DIR / "templates")
STATIC = str(PACKAGE_DIR / "static")

# One limiter for the workspace's public and sign-in routes; its storage comes from
# HRDD_RATELIMIT_STORAGE_URI so several worker processes share one count.
limiter = Limiter(key_func=get_remote_address)


def rate_limited(limit_value, *, scope: str | None = None, **kwargs):
    """``limiter.limit`` for a view: put it innermost (under the route), where it checks as the view runs.

    Views given the same ``scope`` count against one limit (two doors to the same thing, such as the public
    form and the API for grievance reports); without one, each view counts on its own.
    """
    if scope:
        return limiter.shared_limit(limit_value, scope, **kwargs)
    return limiter.limit(limit_value, **kwargs)


def init_app(app) -> None:
    """Configure sessions, the limiter and template helpers once per app."""
    if app.extensions.get("hrdd_workspace"):
        return
    app.extensions["hrdd_workspace"] = True
    security.configure_sessions(app)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("HRDD_RATELIMIT_STORAGE_URI") or "memory://")
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    # If a shared store (Redis) goes away, count in this process until it is back rather than fail requests.
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    # Several deployments may share one Redis: HRDD_RATELIMIT_KEY_PREFIX keeps their counts apart.
    app.config.setdefault("RATELIMIT_KEY_PREFIX", app.config.get("HRDD_RATELIMIT_KEY_PREFIX") or "")
    limiter.init_app(app)
    # Every limit is a decorator on its view (``rate_limited``), which checks it when the view runs; the
    # check Flask-Limiter also hooks before every request finds nothing to do for hrdd's views, at a cost
    # on each API call. (It would be needed only for default or blueprint-wide limits, which hrdd has none of.)
    app.before_request_funcs[None].remove(limiter._check_request_limit)

    @app.context_processor
    def _workspace_globals():
        return {"csrf_token": security.csrf_token, "current_user": g.get("user"), "workspace_home": security.home_url}


def make_blueprint(name: str, url_prefix: str | None = None, *, static: bool = False,
                   max_form_bytes=None, stale_form=None) -> Blueprint:
    """A blueprint using the shared templates, with user loading and CSRF checks before every view.

    ``max_form_bytes`` (a callable) bounds the form body; it must be set before the CSRF check reads the form.
    ``stale_form`` (a callable) answers a form without a valid CSRF token when it returns a response; by
    default, and when it returns None, ``stale_forms.refused`` does.
    """
    kwargs = {"static_folder": STATIC, "static_url_path": "/static"} if static else {}
    bp = Blueprint(name, __name__, url_prefix=url_prefix, template_folder=TEMPLATES, **kwargs)

    @bp.before_request
    def _before():
        if max_form_bytes is not None:
            request.max_content_length = max_form_bytes()
        security.load_user(resume_session)
        if not security.csrf_ok():
            return (stale_form and stale_form()) or stale_forms.refused()
        return security.check_form_text()

    @bp.errorhandler(HTTPException)
    def _html_error(exc: HTTPException):
        # People get a page, not the API's JSON error shape.
        titles = {403: "Not allowed", 404: "Not found", 429: "Too many attempts",
                  413: "Too large", 400: "Bad request"}
        messages = {403: "Your role does not give access to this page.",
                    404: "There is nothing at this address.",
                    429: "Too many requests from your address. Wait a minute and try again.",
                    413: "What you sent is larger than this form accepts."}
        return render_template("workspace/error.html", title=titles.get(exc.code, exc.name),
                               message=messages.get(exc.code, exc.description)), exc.code

    return bp


def resume_session(session_id: str) -> dict | None:
    """The person of a live session, read fresh so an ended session, a disabled account or a changed role
    applies at once."""
    return sessions.resume(current_services().store.engine, session_id, current_app.permanent_session_lifetime,
                           current_app.config["HRDD_SESSION_MAX_AGE"])


def session_principal() -> dict | None:
    """The signed-in person as an API principal (for the JSON API in a browser).

    Unsafe methods need the session's CSRF token in ``X-CSRF-Token``, so a cookie alone never
    authorises a change.
    """
    session_id = session.get("sid")
    if not isinstance(session_id, str) or not session_id:
        return None
    if request.method in security.UNSAFE_METHODS:
        sent = request.headers.get("X-CSRF-Token", "")
        if not sent or not hmac.compare_digest(sent.encode(), str(session.get("csrf", "")).encode()):
            # The 401 would otherwise ask a signed-in person for an API key they were never meant to need.
            problem = "the token sent is not this session's" if sent else "none was sent"
            g.auth_refused = (f"A signed-in session must send its CSRF token in the X-CSRF-Token header to change "
                              f"anything ({problem}; it is the csrf_token of any workspace form), or use an API "
                              "key: Authorization: Bearer <key>")
            return None
    user = resume_session(session_id)
    if user is None or user["disabled"]:
        return None
    return {"name": user["name"], "role": user["role"], "kind": "person"}


def actor() -> str:
    """Who is acting in this request, for the audit log: ``user:NAME`` or ``key:NAME``."""
    user = g.get("user")
    if user:
        return f"user:{user['name']}"
    principal = g.get("principal")
    if principal:
        prefix = "user" if principal.get("kind") == "person" else "key"
        return f"{prefix}:{principal['name']}"
    return "anonymous"


def setting(name: str, default):
    """A workspace setting from the app configuration (HRDD_* environment variables end up there)."""
    return current_app.config.get(name, default)
