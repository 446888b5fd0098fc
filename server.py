"""The Flask application factory, create_app(config=None); `python server.py` runs the development server."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from hrdd import headers, requestguard
from hrdd.api import documents, hooks, meta, screenings, transactions
from hrdd.config import load_config
from hrdd.errors import ApiError
from hrdd.jsonio import FastJSONProvider
from hrdd.metrics import Metrics
from hrdd.services import Services

log = logging.getLogger("hrdd")

# A database whose schema is not this code's: PostgreSQL's undefined_table, undefined_column and "no unique
# constraint for ON CONFLICT"; SQLite says so only in its messages.
_SCHEMA_STATES = frozenset({"42P01", "42703", "42P10"})
_SCHEMA_MESSAGES = ("no such table", "no such column", "has no column named",
                    "does not match any PRIMARY KEY or UNIQUE constraint")
_READ_ONLY_STATE = "25006"  # read_only_sql_transaction: a standby, or default_transaction_read_only
_PERMISSION_STATE = "42501"  # insufficient_privilege: hrdd's database user may not touch a table


def create_app(config: dict | None = None) -> Flask:
    """Build the app: configuration, services (store migrated), blueprints, plugins' routes, error shape."""
    app = Flask("hrdd", root_path=str(__import__("pathlib").Path(__file__).parent / "hrdd"))
    settings = load_config(config)
    app.config.update(settings)
    app.config["MAX_CONTENT_LENGTH"] = settings["HRDD_MAX_BODY"]
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config["TRUSTED_HOSTS"] = trusted_hosts(settings.get("HRDD_TRUSTED_HOSTS"))
    # Strict parsing (NaN, NUL, surrogates and deep nesting are a 400, never a 500); orjson for responses.
    app.json = FastJSONProvider(app)
    app.json.sort_keys = False

    services = Services(settings)
    services.metrics = Metrics()
    services.store.upgrade()
    app.extensions["hrdd"] = services
    services.metrics.install(app)
    requestguard.install(app)
    headers.install(app)

    for module in (meta, screenings, transactions, documents, hooks):
        app.register_blueprint(module.bp)
    services.pm.hook.hrdd_register_routes(app=app)
    _install_error_handlers(app)
    with app.app_context():
        services.pm.hook.hrdd_startup(app=app)
    return app


def _install_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        response = jsonify(exc.to_dict())
        response.status_code = exc.status
        response.headers.update(exc.headers)
        return response

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        messages = {
            413: f"The body is larger than the limit of {app.config['MAX_CONTENT_LENGTH']} bytes",
            405: "This method is not allowed on this path",
            404: "No such endpoint",
        }
        code = (exc.name or "error").lower().replace(" ", "_")
        response = jsonify({"code": code, "status": exc.code, "message": messages.get(exc.code, exc.description),
                            "errors": {}})
        response.status_code = exc.code or 500
        return response

    @app.errorhandler(sa.exc.DBAPIError)
    def _store_error(exc: sa.exc.DBAPIError):
        fault = store_fault(exc)
        reason = (str(exc.orig or exc).strip().splitlines() or [type(exc).__name__])[0]
        if fault == "schema":
            # Permanent until an operator acts: a 500 that says what to do, never a retryable 503.
            log.error("database schema does not match this hrdd: %s", reason)
            return _error("store_schema_mismatch", 500,
                          "The database schema does not match this version of hrdd; the request was not "
                          "completed. An operator must run `hrdd db upgrade`.")
        if fault == "permission":
            # A grant is missing (a table restored or created by another user, say): no retry fixes it.
            log.error("database refused hrdd's user: %s", reason)
            return _error("store_permission_denied", 500,
                          "The database refused hrdd's database user access to one of its tables; the request "
                          "was not completed. An operator must grant that user its privileges (see "
                          "docs/operations.md, 'Database user and grants').")
        if fault == "read_only":
            log.error("database is read-only: %s", reason)
            return _error("store_read_only", 503,
                          "The database accepts no writes at the moment (read-only); the request was not "
                          "completed. Retry it (with the same Idempotency-Key) later.", retry_after=30)
        if fault == "unavailable":
            # The database is down, restarting or unreachable: a retryable 503, not an internal error.
            log.warning("database unavailable: %s", reason)
            return _error("store_unavailable", 503,
                          "The database is not reachable; the request may not have completed. "
                          "Retry it (with the same Idempotency-Key) shortly.", retry_after=5)
        return _unexpected(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.error("unhandled error", exc_info=exc)
        return _error("internal_error", 500, "An unexpected error occurred; it has been logged")


def trusted_hosts(value) -> list[str] | None:
    """The host names (with a port where one is used) requests may name, from HRDD_TRUSTED_HOSTS (a list or
    comma-separated text); None, when unset, serves any.

    Werkzeug builds its redirects (a doubled slash, a missing trailing slash) from the Host header, so a
    forged one would otherwise send the browser, or a cache in front of hrdd, to another site.
    """
    hosts = value if isinstance(value, (list, tuple)) else str(value or "").split(",")
    hosts = [str(h).strip() for h in hosts if str(h).strip()]
    return hosts or None


def store_fault(exc: sa.exc.DBAPIError) -> str | None:
    """What a database error says of the store: "schema", "permission", "read_only", "unavailable", or None."""
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    message = str(exc.orig)
    if state in _SCHEMA_STATES or any(text in message for text in _SCHEMA_MESSAGES):
        return "schema"
    if state == _PERMISSION_STATE:
        return "permission"
    if state == _READ_ONLY_STATE or "readonly database" in message:  # SQLite: "attempt to write a readonly database"
        return "read_only"
    if isinstance(exc, sa.exc.OperationalError) or exc.connection_invalidated:
        return "unavailable"
    return None


def _error(code: str, status: int, message: str, retry_after: int | None = None):
    """A response in the API's error shape."""
    response = jsonify({"code": code, "status": status, "message": message, "errors": {}})
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


if __name__ == "__main__":
    create_app().run(debug=False)
