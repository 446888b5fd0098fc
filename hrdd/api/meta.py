"""Operations: /healthz, /readyz, /metrics, /v1/plugins and /openapi.json."""

from __future__ import annotations

import time
import weakref

from flask import Blueprint, Response, current_app, jsonify
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy.exc import SQLAlchemyError

from hrdd import __version__
from hrdd.auth import public, require_role
from hrdd.openapi import build_spec
from hrdd.plugins import plugin_info
from hrdd.services import current_services

bp = Blueprint("meta", __name__)

# Probes may come every second from each balancer; the schema changes only when someone migrates it.
SCHEMA_CHECK_SECONDS = 5.0
_schema_checks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@bp.get("/healthz")
@public("liveness probes of load balancers and orchestrators")
def healthz():
    """Liveness: the process answers."""
    return jsonify({"status": "ok", "version": __version__})


@bp.get("/readyz")
@public("readiness probes; answers only ready or not, and which check failed")
def readyz():
    """Readiness: the store answers with this hrdd's schema, the reference data is loaded (else 503: which, why)."""
    services = current_services()
    reasons = {"store": _store_problem(services.store),
               "reference_data": None if services.reference.loaded() else "a reference dataset has no rows"}
    checks = {name: reason is None for name, reason in reasons.items()}
    ready = all(checks.values())
    response = jsonify({"status": "ready" if ready else "not_ready", "checks": checks,
                        "reasons": {name: reason for name, reason in reasons.items() if reason}})
    response.status_code = 200 if ready else 503
    return response


def _store_problem(store) -> str | None:
    if not store.ping():
        return "the database does not answer"
    cached = _schema_checks.get(store)
    if cached and cached[0] > time.monotonic():
        return cached[1]
    try:
        problem = store.schema_status()["problem"]
    except SQLAlchemyError:
        return "the database does not answer"
    _schema_checks[store] = (time.monotonic() + SCHEMA_CHECK_SECONDS, problem)
    return problem


@bp.get("/metrics")
@public("Prometheus scrapes without credentials; restrict it at the network (docs/security.md)")
def metrics():
    """Prometheus exposition."""
    # content_type, not mimetype: CONTENT_TYPE_LATEST already carries its charset, and Flask would add another.
    return Response(current_services().metrics.render(), content_type=CONTENT_TYPE_LATEST)


@bp.get("/v1/plugins")
@public("lists installed plugin modules and hooks, no data")
def plugins():
    """Installed plugins and the hooks each implements."""
    return jsonify({"plugins": plugin_info(current_services().pm)})


@bp.get("/openapi.json")
@public("the API description")
def openapi():
    """The OpenAPI 3 description, generated from the marshmallow schemas."""
    return jsonify(build_spec(current_app))


@bp.get("/v1/whoami")
@require_role()
def whoami():
    """The principal behind the caller's key (to check a key works and what it may do)."""
    from flask import g
    return jsonify({k: v for k, v in g.principal.items() if k in ("name", "role", "kind")})
