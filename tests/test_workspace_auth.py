"""People sign in to the workspace: password hashing, sessions, CSRF on every form, roles."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from hrdd.workspace.tables import case_decisions, users
from tests.workspace_helpers import PASSWORD, csrf_from, decision_form, fixture, login, make_user, screen

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_users_create_command_hashes_the_password(app, database_url):
    env = {**os.environ, "HRDD_DATABASE_URL": database_url}
    done = subprocess.run([sys.executable, "-c", "from hrdd.cli import main; main()", "users", "create", "bob",
                           "--role", "reviewer", "--password-stdin"], input=PASSWORD + "\n", capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Created reviewer bob" in done.stdout
    assert PASSWORD not in done.stdout + done.stderr
    with app.extensions["hrdd"].store.engine.connect() as conn:
        stored = conn.execute(sa.select(users.c.password_hash, users.c.role).where(users.c.name == "bob")).one()
    assert stored.role == "reviewer"
    assert PASSWORD not in stored.password_hash and stored.password_hash.startswith(("scrypt:", "pbkdf2:"))
    short = subprocess.run([sys.executable, "-c", "from hrdd.cli import main; main()", "users", "create", "carol",
                            "--role", "reviewer", "--password-stdin"], input="short\n", capture_output=True,
                           text=True, env=env, cwd=ROOT, timeout=120)
    assert short.returncode != 0 and "at least 12 characters" in short.stderr


def test_sign_in_and_out(app, client):
    make_user(app)
    assert client.get("/workspace/").status_code == 302  # to the sign-in page
    wrong = login(client, password="not the password at all")
    assert wrong.status_code == 401 and "Name or password is wrong" in wrong.get_data(as_text=True)
    ok = login(client)
    assert ok.status_code == 302 and ok.headers["Location"].endswith("/workspace/")
    assert client.get("/workspace/").status_code == 200
    token = csrf_from(client, "/workspace/")
    assert client.post("/workspace/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/workspace/").status_code == 302


def test_session_cookie_is_secure_httponly_and_samesite(app, client):
    make_user(app)
    response = login(client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


def test_disabled_account_loses_its_session(app, client):
    make_user(app)
    login(client)
    from hrdd.workspace import users as users_mod
    with app.extensions["hrdd"].store.begin() as conn:
        users_mod.set_disabled(conn, "alice", True, "test")
    assert client.get("/workspace/").status_code == 302


def test_form_posts_without_a_valid_csrf_token_are_refused(app, client, auth_headers):
    make_user(app)
    # Even the sign-in form needs the token.
    refused = client.post("/workspace/login", data={"name": "alice", "password": PASSWORD})
    assert refused.status_code == 400 and "Form expired" in refused.get_data(as_text=True)
    login(client)
    result = screen(client, auth_headers("crm"), fixture("transaction_egypt_biometric.json"))
    case_id = client.get("/v1/cases", headers=auth_headers("reviewer")).get_json()["cases"][0]["id"]
    form = {"decision": "approve", "rationale": "Safeguards agreed with the ministry's legal office"}
    for bad in ({}, {"csrf_token": "forged-token"}):
        r = client.post(f"/workspace/cases/{case_id}/decision", data={**form, **bad})
        assert r.status_code == 400
    grievance = client.post("/grievances/", data={"subject_name": "Unit 7", "description": "x" * 40})
    assert grievance.status_code == 400
    with app.extensions["hrdd"].store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(case_decisions)).scalar_one() == 0
    r = client.post(f"/workspace/cases/{case_id}/decision", data={**form, **decision_form(client, case_id)})
    assert r.status_code == 302
    assert client.get(f"/v1/transactions/{result['transaction_id']}",
                      headers=auth_headers("reviewer")).get_json()["gate"] == "release"


def test_roles_are_enforced_on_api_and_pages(app, client, auth_headers):
    screen(client, auth_headers("crm"), fixture("transaction_egypt_biometric.json"))
    assert client.get("/v1/cases").status_code == 401
    for role in ("crm", "contracts", "export"):
        assert client.get("/v1/cases", headers=auth_headers(role)).status_code == 403
        assert client.get("/v1/reports/transparency", headers=auth_headers(role)).status_code == 403
        assert client.get("/v1/grievances", headers=auth_headers(role)).status_code == 403
    cases = client.get("/v1/cases", headers=auth_headers("reviewer")).get_json()["cases"]
    denied = client.post(f"/v1/cases/{cases[0]['id']}/decision", headers=auth_headers("crm"),
                         json={"decision": "approve", "rationale": "I am a CRM, trust me"})
    assert denied.status_code == 403
    assert client.get("/v1/cases", headers=auth_headers("admin")).status_code == 200
    # A signed-in admin passes the reviewer check; every page needs a sign-in.
    make_user(app, "root", "admin")
    for path in ("/workspace/", "/workspace/dashboard", "/workspace/grievances/", "/workspace/reports/transparency"):
        assert client.get(path).status_code == 302
    login(client, "root")
    for path in ("/workspace/", "/workspace/dashboard", "/workspace/grievances/", "/workspace/reports/transparency"):
        assert client.get(path).status_code == 200, path


def test_signed_in_people_use_the_json_api_only_with_the_csrf_header(app, client, auth_headers):
    make_user(app)
    login(client)
    screen(client, auth_headers("crm"), fixture("transaction_egypt_biometric.json"))
    listing = client.get("/v1/cases")
    assert listing.status_code == 200
    case_id = listing.get_json()["cases"][0]["id"]
    body = {"decision": "approve", "rationale": "Checked with the export control team"}
    assert client.post(f"/v1/cases/{case_id}/decision", json=body).status_code == 401
    token = csrf_from(client, "/workspace/")
    ok = client.post(f"/v1/cases/{case_id}/decision", json=body, headers={"X-CSRF-Token": token})
    assert ok.status_code == 201
    assert ok.get_json()["decision"]["decided_by"] == "user:alice"


@pytest.mark.store
def test_sign_in_attempts_are_rate_limited(app_config):
    from server import create_app
    application = create_app({**app_config, "HRDD_LOGIN_RATE_LIMIT": "3 per minute"})
    client = application.test_client()
    token = csrf_from(client, "/workspace/login")
    codes = [client.post("/workspace/login", data={"name": "x", "password": "y" * 12, "csrf_token": token}).status_code
             for _ in range(5)]
    application.extensions["hrdd"].store.engine.dispose()
    assert codes[:3] == [401, 401, 401]
    assert codes[3:] == [429, 429]
