"""OpenAPI 3 from the marshmallow schemas and the app's routes (plugins' routes included).

Views describe their own parameters and bodies by setting ``view.openapi`` (an operation dict; the
helpers below build the common parts). Who may call each operation comes from the view's decorators
(see hrdd.routes) and appears as ``security`` plus the ``x-hrdd-auth`` and ``x-hrdd-roles`` extensions.
"""

from __future__ import annotations

import re

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask

from hrdd import __version__
from hrdd.api.paging import page_parameters
from hrdd.api.transactions import HISTORY_MAX, HISTORY_PAGE
from hrdd.routes import route_table
from hrdd.schemas import ErrorSchema, ScreeningSchema, TransactionRecordSchema, TransactionSchema

_ERRORS = {
    "400": "Malformed request", "401": "Missing or invalid credentials", "403": "The caller's role may not do this",
    "404": "Not found", "405": "Method not allowed", "409": "Conflict", "413": "Body too large",
    "415": "Unsupported media type", "422": "Validation failed; `errors` names each bad field",
    "429": "Too many requests",
}
HTML = "text/html"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ID = {"type": "string", "maxLength": 64}


def json_body(schema, required: bool = True) -> dict:
    """A JSON request body (``schema`` is a dict or the name of a component schema)."""
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def form_body(properties: dict, required: tuple[str, ...] = ()) -> dict:
    """An HTML form body (application/x-www-form-urlencoded); every form carries ``csrf_token``."""
    schema = {"type": "object", "properties": {"csrf_token": {"type": "string"}, **properties},
              "required": ["csrf_token", *required]}
    return {"required": True, "content": {"application/x-www-form-urlencoded": {"schema": schema}}}


def query(name: str, schema: dict, description: str = "") -> dict:
    """An optional query parameter."""
    return {"in": "query", "name": name, "schema": schema, "description": description}


def json_response(description: str, schema=None) -> dict:
    """A JSON response (any object when ``schema`` is None)."""
    return {"description": description, "content": {"application/json": {"schema": schema or {"type": "object"}}}}


def html_page(description: str) -> dict:
    """An HTML page response."""
    return {"description": description, "content": {HTML: {"schema": {"type": "string"}}}}


def redirect(description: str) -> dict:
    """A redirect (303/302) after a form post."""
    return {"description": description, "headers": {"Location": {"schema": {"type": "string"}}}}


def _links(*targets: tuple[str, str, str]) -> dict:
    return {name: {"operationId": op, "parameters": {param: "$response.body#/id"}} for name, op, param in targets}


# Request and response bodies of the core endpoints; plugins set `view.openapi` (an operation dict).
CORE_OPERATIONS = {
    "screenings.create_screening": {
        "parameters": [
            {"in": "header", "name": "Idempotency-Key", "schema": {"type": "string", "minLength": 1, "maxLength": 255}},
            query("dry_run", {"type": "string", "enum": ["true", "false", "1", "0", "yes", "no", "on", "off"]},
                  "screen without storing (any other value is a 400)"),
        ],
        "requestBody": json_body("Transaction"),
        "responses": {
            "201": {**json_response("Screening stored", "Screening"), "links": _links(
                ("GetScreening", "screenings.get_screening.get", "screening_id"),
                ("GetRider", "documents.rider.get", "screening_id"),
                ("GetChecklist", "documents.checklist.get", "screening_id"),
                ("UploadChecklist", "checklists.upload_checklist.post", "screening_id")) | {
                "GetTransaction": {"operationId": "transactions.get_transaction.get",
                                   "parameters": {"transaction_id": "$response.body#/transaction_id"}},
                "RiderExecuted": {"operationId": "order_gate.rider_executed.post",
                                  "parameters": {"transaction_id": "$response.body#/transaction_id"}}}},
            "200": json_response("Idempotent replay or dry run", "Screening")},
    },
    "screenings.get_screening": {"responses": {"200": json_response("The stored screening", "Screening")}},
    "transactions.get_transaction": {
        "parameters": page_parameters(HISTORY_PAGE, HISTORY_MAX),
        "responses": {"200": json_response("Screenings across stages and the current gate", "TransactionRecord")}},
    "documents.rider": {"parameters": [query("template", {"type": "string", "maxLength": 64})],
                        "responses": {"200": {"description": "Word rider", "content": {
                            DOCX: {"schema": {"type": "string", "format": "binary"}}}}}},
    "documents.checklist": {"parameters": [query("template", {"type": "string", "maxLength": 64})],
                            "responses": {"200": {"description": "Excel checklist", "content": {
                                XLSX: {"schema": {"type": "string", "format": "binary"}}}}}},
    "meta.healthz": {"responses": {"200": json_response("The process answers")}},
    "meta.readyz": {"responses": {"200": json_response("Ready"),
                                  "503": json_response("Not ready; `checks` says which check failed and `reasons` why (store unreachable, schema not this hrdd's, no reference data)")}},
    "meta.metrics": {"responses": {"200": {"description": "Prometheus exposition",
                                           "content": {"text/plain": {"schema": {"type": "string"}}}}}},
    "meta.openapi": {"responses": {"200": json_response("This description")}},
    "meta.plugins": {"responses": {"200": json_response("Installed plugins and their hooks")}},
    "meta.whoami": {"responses": {"200": json_response("The caller's name and role")}},
}


def _hook_operations(app: Flask, names: list[str]) -> dict:
    body = {"required": True, "content": {
        "application/json": {"schema": {}}, "text/xml": {"schema": {"type": "string"}},
        "application/cloudevents+json": {"schema": {"type": "object"}},
        "application/cloudevents-batch+json": {"schema": {"type": "array", "items": {"type": "object"}}}}}
    # Salesforce is answered in SOAP (an Ack, or a fault with the reason), every other vendor in JSON.
    soap = {"text/xml": {"schema": {"type": "string"}}}
    answers = {"200": json_response("Processed (HubSpot workflow calls, generic replays, Salesforce Ack)"),
               "201": json_response("Screened (generic adapter)", "Screening"),
               "202": json_response("Accepted: each event screened, queued or held with its reason"),
               "204": {"description": "OPTIONS answered"},
               "207": json_response("A generic batch in which some transaction was not screened: each result "
                                    "has its own status (201, 200 or 422)"),
               "503": json_response("This adapter is installed but not configured")}
    answers = {code: {**r, "content": {**r.get("content", {}), **soap}} if code != "204" else r
               for code, r in answers.items()}
    for code, text in _ERRORS.items():
        answers[code] = {"description": text, "content": {"application/json": {"schema": "Error"}, **soap}}
    name = {"in": "path", "name": "name", "required": True, "schema": {"type": "string", "enum": names}}
    return {"post": {"parameters": [name], "requestBody": body, "responses": answers},
            "get": {"parameters": [name], "responses": {**answers, "405": {
                "description": "Webhooks accept POST", "content": {"application/json": {"schema": "Error"}, **soap}}}}}


def _adapter_names(app: Flask) -> list[str]:
    """The names under /v1/hooks/ an installed adapter answers (tried from the plugin module names)."""
    pm = app.extensions["hrdd"].pm
    candidates = {name.rsplit(".", 1)[-1].removeprefix("adapter_") for name, _ in pm.list_name_plugin() if name}
    return sorted(n for n in candidates if pm.hook.hrdd_webhook_adapter(name=n, app=app) is not None)


def _enumerate_codes(schemas: dict, app: Flask) -> None:
    """Tell clients (and fuzzers) the country codes and capability ids the schema accepts."""
    import pycountry

    countries = sorted(c.alpha_2 for c in pycountry.countries) + ["XK"]
    capabilities = sorted(app.extensions["hrdd"].reference.capabilities)
    note = ("ISO 3166-1 alpha-2 code. Alpha-3 codes, ISO's English names and the spellings in the data "
            "directory's country_names.yaml are also accepted and normalised; a name of two countries or a "
            "region is refused (422)")
    # The codes are listed (clients and fuzzers pick from them), but a name is valid input too: a client
    # generated from a bare enum would refuse "Egypt" before sending it.
    codes_or_name = [{"type": "string", "enum": countries}, {"type": "string", "minLength": 2, "maxLength": 100}]
    for schema, field in (("EndUser", "country"), ("Party", "country")):
        prop = schemas.get(schema, {}).get("properties", {}).get(field)
        if prop is not None:
            # OpenAPI 3.0 honours "nullable" only beside a "type", so each branch carries it.
            branches = [{**b, "nullable": True} for b in codes_or_name] if prop.get("nullable") else codes_or_name
            prop.clear()
            prop.update(anyOf=branches, description=note)
    for schema, field in (("Transaction", "deployment_countries"), ("Item", "capabilities")):
        items = schemas.get(schema, {}).get("properties", {}).get(field, {}).get("items")
        if items is None:
            continue
        if field == "capabilities":
            items.update(enum=capabilities)
        else:
            items.clear()
            items.update(anyOf=codes_or_name, description=note)


def build_spec(app: Flask) -> dict:
    """Describe every route of the app; bodies where known, access from the views' decorators."""
    spec = APISpec(title="hrdd", version=__version__, openapi_version="3.0.3", plugins=[MarshmallowPlugin()],
                   info={"description": "Human rights due diligence gate (U.S. State Department 2020 guidance)"})
    spec.components.schema("Transaction", schema=TransactionSchema)
    spec.components.schema("Screening", schema=ScreeningSchema)
    spec.components.schema("TransactionRecord", schema=TransactionRecordSchema)
    spec.components.schema("Error", schema=ErrorSchema)
    spec.components.security_scheme("apiKey", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("session", {"type": "apiKey", "in": "cookie", "name": "hrdd_session"})
    paths: dict[str, dict] = {}
    for route in route_table(app):
        if route.endpoint == "static" or route.endpoint.endswith(".static"):
            continue
        if route.endpoint == "hooks.webhook":
            op = _hook_operations(app, _adapter_names(app))[route.method.lower()]
        else:
            view = app.view_functions[route.endpoint]
            op = CORE_OPERATIONS.get(route.endpoint) or getattr(view, "openapi", None) or {}
            op = op.get(route.method.lower(), op) if any(k in op for k in ("get", "post")) else op
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(app, route, dict(op))
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    result = spec.to_dict()
    _enumerate_codes(result["components"]["schemas"], app)
    return result


def _operation(app: Flask, route, op: dict) -> dict:
    view = app.view_functions[route.endpoint]
    html = op.pop("x-html", False) or route.auth == "session"
    op.setdefault("responses", {"200": {"description": "OK"}})
    # Pages answer errors with a page, except what is refused before any view runs (hrdd.requestguard: JSON).
    error = {"content": {"application/json": {"schema": "Error"}, **({HTML: {"schema": {"type": "string"}}}
                                                                    if html else {})}}
    op["responses"] = {**op["responses"], **{code: {"description": text, **error}
                                             for code, text in _ERRORS.items() if code not in op["responses"]}}
    op["summary"] = (view.__doc__ or route.endpoint).strip().splitlines()[0]
    op["operationId"] = f"{route.endpoint}.{route.method.lower()}"
    declared = {p["name"] for p in op.get("parameters", []) if p.get("in") == "path"}

    params = list(op.get("parameters", [])) + [
        {"in": "path", "name": n, "required": True,
         "schema": {"type": "integer", "minimum": 0, "maximum": 2**31 - 1} if n in route.integer_params else ID}
        for n in re.findall(r"{([a-zA-Z_]+)}", route.path) if n not in declared]
    if params:
        op["parameters"] = params
    op["x-hrdd-auth"] = route.auth
    if route.roles:
        op["x-hrdd-roles"] = list(route.roles)
    if route.auth == "api_key":
        op["security"] = [{"apiKey": []}, {"session": []}]
        op["description"] = f"Roles: {', '.join(route.roles)}"
    elif route.auth == "session":
        op["security"] = [{"session": []}]
        op["description"] = f"Signed-in roles: {', '.join(route.roles)}"
    else:
        op["security"] = []
        if route.note:
            op["description"] = f"No API key: {route.note}"
    return op
