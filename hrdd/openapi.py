"""OpenAPI 3 from the marshmallow schemas and the app's routes (plugins' routes included)."""

from __future__ import annotations

import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask

from hrdd import __version__
from hrdd.schemas import ErrorSchema, ScreeningSchema, TransactionRecordSchema, TransactionSchema

_ERRORS = {
    "400": "Malformed request", "401": "Missing or invalid API key", "403": "The key's role may not do this",
    "404": "Not found", "409": "Conflict", "413": "Body too large", "415": "Unsupported media type",
    "422": "Validation failed; `errors` names each bad field",
}

# Request and response bodies of the core endpoints; plugins may set `view.openapi` (an operation dict).
CORE_OPERATIONS = {
    "screenings.create_screening": {
        "parameters": [
            {"in": "header", "name": "Idempotency-Key", "schema": {"type": "string", "maxLength": 255}},
            {"in": "query", "name": "dry_run", "schema": {"type": "boolean"}},
        ],
        "requestBody": {"required": True, "content": {"application/json": {"schema": "Transaction"}}},
        "responses": {"201": {"description": "Screening stored", "content": {"application/json": {"schema": "Screening"}}},
                      "200": {"description": "Idempotent replay or dry run",
                              "content": {"application/json": {"schema": "Screening"}}}},
    },
    "screenings.get_screening": {
        "responses": {"200": {"description": "The stored screening",
                              "content": {"application/json": {"schema": "Screening"}}}}},
    "transactions.get_transaction": {
        "responses": {"200": {"description": "Screenings across stages and the current gate",
                              "content": {"application/json": {"schema": "TransactionRecord"}}}}},
    "documents.rider": {"responses": {"200": {"description": "Word rider", "content": {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document": {
            "schema": {"type": "string", "format": "binary"}}}}}},
    "documents.checklist": {"responses": {"200": {"description": "Excel checklist", "content": {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
            "schema": {"type": "string", "format": "binary"}}}}}},
}


def build_spec(app: Flask) -> dict:
    """Describe every route of the app; bodies where known, roles as bearer security."""
    spec = APISpec(title="hrdd", version=__version__, openapi_version="3.0.3", plugins=[MarshmallowPlugin()],
                   info={"description": "Human rights due diligence gate (U.S. State Department 2020 guidance)"})
    spec.components.schema("Transaction", schema=TransactionSchema)
    spec.components.schema("Screening", schema=ScreeningSchema)
    spec.components.schema("TransactionRecord", schema=TransactionRecordSchema)
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.security_scheme("apiKey", {"type": "http", "scheme": "bearer"})
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.endpoint == "static" or rule.rule.startswith("/static"):
            continue
        view = app.view_functions[rule.endpoint]
        path = re.sub(r"<(?:[a-z]+:)?([a-zA-Z_]+)>", r"{\1}", rule.rule)
        operations = {}
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}) or ["options"]:
            op = dict(CORE_OPERATIONS.get(rule.endpoint) or getattr(view, "openapi", None) or {})
            op.setdefault("responses", {"200": {"description": "OK"}})
            op["responses"] = {**op["responses"], **{
                code: {"description": text, "content": {"application/json": {"schema": "Error"}}}
                for code, text in _ERRORS.items() if code not in op["responses"]}}
            op["summary"] = (view.__doc__ or rule.endpoint).strip().splitlines()[0]
            op["operationId"] = f"{rule.endpoint}.{method.lower()}"
            params = list(op.get("parameters", []))
            params += [{"in": "path", "name": n, "required": True, "schema": {"type": "string"}}
                       for n in rule.arguments]
            if params:
                op["parameters"] = params
            roles = getattr(view, "required_roles", None)
            if roles:
                op["security"] = [{"apiKey": []}]
                op["description"] = f"Roles: {', '.join(roles)}"
            operations[method.lower()] = op
        spec.path(path=path, operations=operations)
    return spec.to_dict()
