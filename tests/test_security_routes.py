"""Every route's access rule is declared, documented in docs/security.md, and enforced.

The table in docs/security.md is generated from the app's url_map and the views' decorators
(``python -m hrdd.routes docs/security.md``); this test fails when a route is added, removed or changes
its roles without the document following, and when a route declares no access rule at all.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hrdd import routes
from hrdd.api_keys import ROLES

pytestmark = pytest.mark.api
DOC = Path(__file__).resolve().parent.parent / "docs" / "security.md"


@pytest.fixture
def app_config(app_config):
    app_config["HRDD_ADAPTERS"] = {"adapters": {
        "generic": {"signing_secret": "s-generic"}, "salesforce": {"organization_ids": ["00D5e000000KQ2e"],
                                                                        "token": "s-salesforce"},
        "hubspot": {"client_secret": "s-hubspot"}, "dynamics": {"auth_key": "s-dynamics"},
        "sap": {"bearer_token": "s-sap", "api_base_url": "http://127.0.0.1:9"}, "odoo": {"token": "s-odoo"}}}
    app_config["HRDD_SESSION_COOKIE_SECURE"] = "0"
    return app_config


def test_every_route_declares_who_may_call_it(app):
    undeclared = [f"{r.method} {r.path} ({r.endpoint})" for r in routes.route_table(app) if r.auth == "UNDECLARED"]
    assert not undeclared, "routes without require_role, login_required, public or vendor_authenticated: " + \
        ", ".join(undeclared)
    for route in routes.route_table(app):
        if route.auth in ("public", "vendor"):
            assert route.note, f"{route.method} {route.path}: say why it is {route.auth}"


def test_docs_security_lists_every_route_as_the_app_declares_it(app):
    documented = routes.documented_table(DOC.read_text(encoding="utf-8"))
    assert documented is not None, f"{DOC} has no generated route table"
    assert documented == routes.markdown(app), (
        "docs/security.md is out of date; run: python -m hrdd.routes docs/security.md")
    for route in routes.route_table(app):
        assert f"| {route.method} | `{route.path}` |" in documented


def _url(path: str) -> str:
    return re.sub(r"{([a-z_]+)}", lambda m: "1" if m.group(1) == "fp_id" else "x", path)


def test_api_key_routes_refuse_no_key_a_bad_key_and_a_wrong_role(app, client, auth_headers):
    checked = 0
    for route in routes.route_table(app):
        if route.auth != "api_key":
            continue
        call = getattr(client, route.method.lower())
        url = _url(route.path)
        for headers in ({}, {"Authorization": "Bearer hrdd_not-a-key"}, {"Authorization": "Basic YTpi"}):
            response = call(url, headers=headers)
            assert response.status_code == 401, (route, headers, response.status_code)
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
        outsiders = [r for r in ROLES if r not in route.roles and "any" not in route.roles]
        for role in outsiders:
            response = call(url, headers=auth_headers(role))
            assert response.status_code == 403, (route, role, response.status_code)
            assert role in response.get_json()["message"]
        checked += 1
    assert checked >= 20


def test_signed_in_pages_need_a_session_and_forms_a_csrf_token(app, client):
    checked = 0
    for route in routes.route_table(app):
        if route.auth != "session":
            continue
        response = getattr(client, route.method.lower())(_url(route.path))
        if route.method == "GET":
            assert response.status_code == 302 and "/workspace/login" in response.headers["Location"], route
        else:
            # No session: nothing is done, and the page says to sign in again (a signed-in form without
            # its token is the "Form expired" page, tests/test_workspace_auth.py).
            assert response.status_code == 401 and b"sign in again" in response.data, route
        checked += 1
    assert checked >= 10


def test_vendor_routes_refuse_requests_without_the_vendors_credentials(app, client):
    for vendor in ("generic", "salesforce", "hubspot", "dynamics", "sap", "odoo"):
        response = client.post(f"/v1/hooks/{vendor}", data=b"{}", content_type="application/json")
        assert response.status_code == 401, (vendor, response.status_code)
    assert client.post("/v1/hooks/odoo/wrong-token", data=b"{}", content_type="application/json").status_code == 401


def test_api_keys_and_passwords_are_stored_only_as_digests(app, auth_headers):
    import sqlalchemy as sa

    from hrdd.workspace import users

    key = auth_headers("crm")["Authorization"].split(" ", 1)[1]
    with app.extensions["hrdd"].store.begin() as conn:
        users.create_user(conn, "auditor", "reviewer", "a long enough passphrase 42", "test")
    store = app.extensions["hrdd"].store
    with store.engine.connect() as conn:
        dump = " ".join(str(tuple(row)) for table in ("api_keys", "users")
                        for row in conn.execute(sa.text(f"SELECT * FROM {table}")))
    assert key[12:] not in dump and "a long enough passphrase 42" not in dump


def test_no_response_can_be_framed_or_sniffed(app, client, auth_headers):
    """Every route's answer (pages, JSON, errors, redirects) refuses framing by another site and sniffing."""
    checked = 0
    for route in routes.route_table(app):
        call = getattr(client, route.method.lower())
        for headers in ({}, auth_headers("admin")):
            response = call(_url(route.path), headers=headers)
            policy = response.headers.get("Content-Security-Policy", "")
            assert "frame-ancestors 'none'" in policy, (route, response.status_code, policy)
            assert response.headers.get("X-Frame-Options") == "DENY", (route, response.status_code)
            assert response.headers.get("X-Content-Type-Options") == "nosniff", (route, response.status_code)
            checked += 1
    assert checked >= 100


def test_pages_run_no_script_and_signed_in_pages_are_not_cached(app, client):
    from tests.workspace_helpers import login, make_user

    for path in ("/workspace/login", "/grievances/"):
        policy = client.get(path).headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src" not in policy and "form-action 'self'" in policy
    assert "no-store" not in client.get("/grievances/").headers.get("Cache-Control", "")
    make_user(app)
    login(client)
    page = client.get("/workspace/")
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert page.headers["Referrer-Policy"] == "same-origin"


def test_a_signed_in_session_is_held_to_its_role_and_its_csrf_token_on_every_route(app, client):
    """A reviewer's cookie is no key for other roles' API routes, and changes nothing anywhere without the
    session's CSRF token (X-CSRF-Token on the API, the form field on pages)."""
    from tests.workspace_helpers import csrf_from, login, make_user

    make_user(app)
    login(client)
    token = csrf_from(client, "/workspace/")
    checked = 0
    for route in routes.route_table(app):
        call, url = getattr(client, route.method.lower()), _url(route.path)
        unsafe = route.method in ("POST", "PUT", "PATCH", "DELETE")
        if route.auth == "api_key":
            allowed = "any" in route.roles or "reviewer" in route.roles
            if unsafe:
                refused = call(url, json={})
                assert refused.status_code == 401, (route, refused.status_code)
                assert "X-CSRF-Token" in refused.get_json()["message"]
            if not allowed:
                headers = {"X-CSRF-Token": token} if unsafe else {}
                response = call(url, json={} if unsafe else None, headers=headers)
                assert response.status_code == 403, (route, response.status_code)
            checked += 1
        elif route.auth in ("session", "public") and unsafe and not route.path.startswith("/v1/"):
            for data in ({}, {"csrf_token": "forged-" + token}):
                response = call(url, data=data)
                assert response.status_code == 400, (route, data, response.status_code)
            checked += 1
    assert client.get("/workspace/").status_code == 200  # still signed in: the logout form needed its token too
    assert checked >= 30


@pytest.mark.parametrize("role", ["reviewer", "export", "admin"])
def test_each_workspace_role_opens_exactly_the_pages_its_routes_declare(app, client, role):
    """Every signed-in page, for each workspace role: a role the route does not name gets 403 (an export user
    opening the workspace's index, the case queue, is sent to the checklist page instead); named roles get in."""
    from hrdd.workspace import users
    from tests.workspace_helpers import csrf_from, login, make_user

    assert set(users.ROLES) == {"reviewer", "export", "admin"}
    make_user(app, "someone", role=role)
    login(client, "someone")
    token = csrf_from(client, "/workspace/checklists/")
    checked = 0
    for route in routes.route_table(app):
        if route.auth != "session":
            continue
        allowed = role == "admin" or role in route.roles or "any" in route.roles
        call, url = getattr(client, route.method.lower()), _url(route.path)
        response = call(url, data={"csrf_token": token}) if route.method == "POST" else call(url)
        if route.path == "/workspace/" and role == "export":
            assert response.status_code == 302 and response.headers["Location"].endswith("/workspace/checklists/")
        elif allowed:
            assert response.status_code != 403, (route, role)
        else:
            assert response.status_code == 403, (route, role, response.status_code)
        checked += 1
    assert client.get("/workspace/checklists/").status_code == 200  # still signed in
    assert checked >= 15


@pytest.mark.parametrize("trusted", ["hrdd.example.org, 10.0.0.5:8000", ["hrdd.example.org", "10.0.0.5:8000"]])
def test_trusted_hosts_refuse_a_forged_host_header(app_config, trusted):
    from server import create_app

    application = create_app({**app_config, "HRDD_TRUSTED_HOSTS": trusted})
    client = application.test_client()
    try:
        # Werkzeug's redirects for "//" and a missing trailing slash are absolute, built from the Host header.
        forged = client.get("/workspace//grievances/", headers={"Host": "evil.example"})
        assert forged.status_code == 400 and "evil.example" not in forged.headers.get("Location", "")
        assert forged.get_json()["code"] == "bad_request" and "host" in forged.get_json()["message"].lower()
        ours = client.get("/workspace//grievances/", headers={"Host": "hrdd.example.org"})
        assert ours.status_code == 308 and ours.headers["Location"].startswith("http://hrdd.example.org/")
        assert client.get("/healthz", headers={"Host": "10.0.0.5:8000"}).status_code == 200
    finally:
        application.extensions["hrdd"].store.engine.dispose()


def test_without_trusted_hosts_every_host_is_served(client):
    assert client.get("/healthz", headers={"Host": "10.1.2.3:8000"}).status_code == 200
