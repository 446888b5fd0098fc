"""The Flask application factory, create_app(config=None); `python server.py` runs the development server."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

from hrdd import requestguard
from hrdd.api import documents, hooks, meta, screenings, transactions
from hrdd.config import load_config
from hrdd.errors import ApiError
from hrdd.jsonio import FastJSONProvider
from hrdd.metrics import Metrics
from hrdd.services import Services

log = logging.getLogger("hrdd")


def create_app(config: dict | None = None) -> Flask:
    """Build the app: configuration, services (store migrated), blueprints, plugins' routes, error shape."""
    app = Flask("hrdd", root_path=str(__import__("pathlib").Path(__file__).parent / "hrdd"))
    settings = load_config(config)
    app.config.update(settings)
    app.config["MAX_CONTENT_LENGTH"] = settings["HRDD_MAX_BODY"]
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    # Strict parsing (NaN, NUL, surrogates and deep nesting are a 400, never a 500); orjson for responses.
    app.json = FastJSONProvider(app)
    app.json.sort_keys = False

    services = Services(settings)
    services.metrics = Metrics()
    services.store.upgrade()
    app.extensions["hrdd"] = services
    services.metrics.install(app)
    requestguard.install(app)

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

    @app.errorhandler(sa.exc.OperationalError)
    def _store_unavailable(exc: sa.exc.OperationalError):
        # The database is down, restarting or unreachable: a retryable 503, not an internal error.
        log.warning("database unavailable: %s", str(exc.orig or exc).splitlines()[0] if str(exc) else exc)
        response = jsonify({"code": "store_unavailable", "status": 503,
                            "message": "The database is not reachable; the request may not have completed. "
                                       "Retry it (with the same Idempotency-Key) shortly.", "errors": {}})
        response.status_code = 503
        response.headers["Retry-After"] = "5"
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("unhandled error")
        response = jsonify({"code": "internal_error", "status": 500,
                            "message": "An unexpected error occurred; it has been logged", "errors": {}})
        response.status_code = 500
        return response


if __name__ == "__main__":
    create_app().run(debug=False)
