"""People sign in to the workspace: password hashing, sessions, CSRF on every form, roles."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from hrdd.workspace.tables import case_decisions, case_notes, users, workspace_sessions
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


def _case_with_session(app, client, auth_headers):
    """A signed-in alice, an open case, the session cookie's value and its CSRF token."""
    make_user(app)
    login(client)
    screen(client, auth_headers("crm"), fixture("transaction_egypt_biometric.json"))
    case_id = client.get("/v1/cases", headers=auth_headers("reviewer")).get_json()["cases"][0]["id"]
    token = csrf_from(client, f"/workspace/cases/{case_id}")
    return case_id, client.get_cookie("hrdd_session").value, token


def _notes(app) -> list[str]:
    with app.extensions["hrdd"].store.engine.connect() as conn:
        return [n for (n,) in conn.execute(sa.select(case_notes.c.text))]


def _replayed(app, cookie: str):
    """A new browser holding a copy of ``cookie``."""
    other = app.test_client()
    other.set_cookie("hrdd_session", cookie)
    return other


def test_a_copied_cookie_stops_working_when_its_session_signs_out(app, client, auth_headers):
    case_id, cookie, token = _case_with_session(app, client, auth_headers)
    laptop = app.test_client()
    login(laptop)
    assert _replayed(app, cookie).get("/workspace/").status_code == 200  # a copy works while signed in
    assert client.post("/workspace/logout", data={"csrf_token": token}).status_code == 302
    assert laptop.get("/workspace/").status_code == 200  # alice's other browser stays signed in
    copy = _replayed(app, cookie)
    assert copy.get("/workspace/").status_code == 302
    posted = _replayed(app, cookie).post(f"/workspace/cases/{case_id}/note",
                                          data={"csrf_token": token, "text": "written after signing out"})
    assert posted.status_code == 401 and "sign in again" in posted.get_data(as_text=True)
    assert "written after signing out" not in _notes(app)
    api = _replayed(app, cookie).get("/v1/cases")
    assert api.status_code == 401


def test_a_new_password_ends_every_session_of_the_person(app, client, auth_headers, database_url):
    case_id, cookie, token = _case_with_session(app, client, auth_headers)
    laptop = app.test_client()
    login(laptop)
    env = {**os.environ, "HRDD_DATABASE_URL": database_url}
    done = subprocess.run([sys.executable, "-c", "from hrdd.cli import main; main()", "users", "password", "alice",
                           "--password-stdin"], input="a brand new passphrase\n", capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    for browser in (client, laptop, _replayed(app, cookie)):
        assert browser.get("/workspace/").status_code == 302
    refused = _replayed(app, cookie).post(f"/workspace/cases/{case_id}/note",
                                           data={"csrf_token": token, "text": "after the password changed"})
    assert refused.status_code == 401
    assert "after the password changed" not in _notes(app)
    assert login(client, password="a brand new passphrase").status_code == 302
    assert client.get("/workspace/").status_code == 200


def test_re_enabling_an_account_does_not_revive_its_old_sessions(app, client):
    make_user(app)
    login(client)
    cookie = client.get_cookie("hrdd_session").value
    from hrdd.workspace import users as users_mod
    with app.extensions["hrdd"].store.begin() as conn:
        users_mod.set_disabled(conn, "alice", True, "test")
    with app.extensions["hrdd"].store.begin() as conn:
        users_mod.set_disabled(conn, "alice", False, "test")
    assert _replayed(app, cookie).get("/workspace/").status_code == 302


def _set_session_time(app, column: str, hours_ago: float) -> None:
    when = (datetime.now(UTC) - timedelta(hours=hours_ago)).isoformat().replace("+00:00", "Z")
    with app.extensions["hrdd"].store.begin() as conn:
        conn.execute(sa.update(workspace_sessions).values({column: when}))


def _last_use(app, hours_ago: float) -> None:
    _set_session_time(app, "seen_at", hours_ago)


def test_a_session_expires_after_eight_hours_unused_and_slides_while_used(app, client):
    make_user(app)
    login(client)
    _last_use(app, 7.5)
    assert client.get("/workspace/").status_code == 200  # used: it slides on
    with app.extensions["hrdd"].store.engine.connect() as conn:
        seen = conn.execute(sa.select(workspace_sessions.c.seen_at)).scalar_one()
    assert seen > (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    _last_use(app, 8.1)
    assert client.get("/workspace/").status_code == 302
    assert app.permanent_session_lifetime == timedelta(hours=8)  # the cookie's own expiry, as before


def _signed_in_hours_ago(app, hours: float) -> None:
    _set_session_time(app, "created_at", hours)


def test_a_busy_session_still_ends_twelve_hours_after_signing_in(app, client):
    make_user(app)
    login(client)
    _signed_in_hours_ago(app, 11.9)
    assert client.get("/workspace/").status_code == 200
    _signed_in_hours_ago(app, 12.1)  # used a minute ago, so only the absolute lifetime can end it
    r = client.get("/workspace/")
    assert r.status_code == 302 and "/workspace/login" in r.headers["Location"]
    login(client)  # signing in again starts a new twelve hours, and clears the ended row on the way
    assert client.get("/workspace/").status_code == 200
    with app.extensions["hrdd"].store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(workspace_sessions)).scalar_one() == 1


def test_the_longest_session_is_a_setting_and_a_bad_value_is_named(app_config):
    from hrdd.errors import StartupError
    from server import create_app

    app = create_app({**app_config, "HRDD_SESSION_MAX_HOURS": "2"})
    client = app.test_client()
    make_user(app)
    login(client)
    _signed_in_hours_ago(app, 2.5)
    assert client.get("/workspace/").status_code == 302
    for bad in ("twelve", "0", "-3", "1000"):
        with pytest.raises(StartupError, match=rf"HRDD_SESSION_MAX_HOURS must be a number of hours .* not '{bad}'"):
            create_app({**app_config, "HRDD_SESSION_MAX_HOURS": bad})


def test_the_store_keeps_only_a_hash_of_the_session_id(app, client):
    make_user(app)
    login(client)
    session_id = app.session_interface.get_signing_serializer(app).loads(client.get_cookie("hrdd_session").value)["sid"]
    with app.extensions["hrdd"].store.engine.connect() as conn:
        stored = conn.execute(sa.select(workspace_sessions)).one()
    assert stored.user_name == "alice" and session_id not in tuple(stored)


def _hidden_fields(page: str) -> list[tuple[str, str]]:
    return [(html.unescape(k), html.unescape(v))
            for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', page)]


def test_a_decision_typed_while_the_session_expired_comes_back_after_signing_in(app, client, auth_headers):
    case_id, _cookie, token = _case_with_session(app, client, auth_headers)
    shown = decision_form(client, case_id)["screening_id"]
    rationale = "Ministry's legal office agreed to the audit clause & <quarterly> reports.\nSee the note."
    _last_use(app, 9)  # the reviewer took a long time to write it
    sent = client.post(f"/workspace/cases/{case_id}/decision", headers={"Referer": f"http://localhost/workspace/cases/{case_id}"},
                       data={"csrf_token": token, "screening_id": shown, "decision": "approve", "rationale": rationale})
    page = sent.get_data(as_text=True)
    assert sent.status_code == 401
    assert "sign in again" in page and "Form expired" not in page and "nothing was saved" in page
    assert f">{rationale}</textarea>" in html.unescape(page)  # shown back, for copying
    fields = dict(_hidden_fields(page))
    assert fields["next"] == f"/workspace/cases/{case_id}"
    signed_in = client.post("/workspace/login", data={**fields, "name": "alice", "password": PASSWORD})
    again = signed_in.get_data(as_text=True)
    assert signed_in.status_code == 200 and "send your form again" in again
    assert f'action="/workspace/cases/{case_id}/decision"' in again and f">{rationale}</textarea>" in html.unescape(again)
    with app.extensions["hrdd"].store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(case_decisions)).scalar_one() == 0
    resent = client.post(f"/workspace/cases/{case_id}/decision",
                         data={**dict(_hidden_fields(again)), "rationale": rationale})
    assert resent.status_code == 302
    with app.extensions["hrdd"].store.engine.connect() as conn:
        stored = conn.execute(sa.select(case_decisions.c.rationale, case_decisions.c.decided_by)).one()
    assert tuple(stored) == (rationale, "user:alice")

    # A form another site made the browser send is not offered back as the reviewer's own.
    _last_use(app, 9)
    foreign = client.post(f"/workspace/cases/{case_id}/decision", headers={"Origin": "https://evil.example"},
                          data={"csrf_token": token, "decision": "approve", "rationale": "Looks fine to me, approve"})
    assert foreign.status_code == 401 and "sign in again" in foreign.get_data(as_text=True)
    assert "Looks fine to me" not in foreign.get_data(as_text=True)
    # What the sign-in form carries is only ever sent back to this site.
    forged = app.test_client()
    forged_token = csrf_from(forged, "/workspace/login")
    refused = forged.post("/workspace/login", data={"csrf_token": forged_token, "name": "alice", "password": PASSWORD,
                                                    "resend_to": "//evil.example/x", "resend:text": "hello there"})
    assert refused.status_code == 302 and refused.headers["Location"].endswith("/workspace/")


def test_sessions_from_before_the_migration_end_and_downgrading_drops_the_table(app, client):
    from tests.conftest import migrate_down

    make_user(app)
    login(client)
    store = app.extensions["hrdd"].store
    migrate_down(store, "0710_decision_use_and_scale")
    assert "workspace_sessions" not in sa.inspect(store.engine).get_table_names()
    store.upgrade()
    assert "workspace_sessions" in sa.inspect(store.engine).get_table_names()
    assert client.get("/workspace/").status_code == 302  # its session row went with the table
    login(client)
    assert client.get("/workspace/").status_code == 200


def test_a_form_loaded_before_signing_in_again_comes_back_filled_in(app, client, auth_headers):
    case_id, _cookie, old_token = _case_with_session(app, client, auth_headers)
    login(client)  # in another tab: a new session and token
    page = f"http://localhost/workspace/cases/{case_id}"
    sent = client.post(f"/workspace/cases/{case_id}/note", headers={"Referer": page},
                       data={"csrf_token": old_token, "text": "Called the distributor's compliance lead"})
    shown = sent.get_data(as_text=True)
    assert sent.status_code == 400 and "Form out of date: send it again" in shown and "not saved" in shown
    assert "Called the distributor&#39;s compliance lead</textarea>" in shown
    assert client.post(f"/workspace/cases/{case_id}/note", data=dict(_hidden_fields(shown)) | {
        "text": "Called the distributor's compliance lead"}).status_code == 302
    assert "Called the distributor's compliance lead" in _notes(app)


def _where_a_browser_goes(location: str) -> tuple[str, str]:
    """The scheme and host a browser reads in a Location header (WHATWG URL parsing): C0 controls and spaces
    trimmed at the ends, tabs and line breaks dropped anywhere, a backslash read as a slash."""
    from urllib.parse import urlsplit

    cleaned = location.strip("".join(map(chr, range(0x21)))).translate({9: None, 10: None, 13: None})
    parts = urlsplit(cleaned.replace("\\", "/"))
    return parts.scheme, parts.netloc


@pytest.mark.parametrize("target", ["/\t/evil.example/x", "/\n/evil.example", "/\r\n/evil.example", "\t//evil.example",
                                    "/\\evil.example", "//evil.example", "https://evil.example/workspace/",
                                    "/%09/evil.example", " /\t/evil.example"])
def test_signing_in_never_sends_the_browser_to_another_site(app, client, target):
    make_user(app)
    token = csrf_from(client, "/workspace/login")
    response = client.post("/workspace/login", data={"name": "alice", "password": PASSWORD, "csrf_token": token,
                                                     "next": target})
    assert response.status_code == 302, (target, response.status_code)
    assert _where_a_browser_goes(response.headers["Location"]) == ("", ""), (target, response.headers["Location"])
    assert client.get("/workspace/").status_code == 200  # signed in all the same


def test_signing_in_follows_next_within_the_workspace(app, client):
    make_user(app)
    token = csrf_from(client, "/workspace/login")
    response = client.post("/workspace/login", data={"name": "alice", "password": PASSWORD, "csrf_token": token,
                                                     "next": "/workspace/?status=open&country=EG"})
    assert response.status_code == 302 and response.headers["Location"] == "/workspace/?status=open&country=EG"


def test_signing_in_again_in_a_browser_ends_the_session_it_replaces(app, client):
    make_user(app)
    make_user(app, "bob")
    login(client)
    before = client.get_cookie("hrdd_session").value
    login(client)  # again, in the same browser: its first session is replaced, not left running beside it
    assert client.get("/workspace/").status_code == 200
    assert _replayed(app, before).get("/workspace/").status_code == 302
    alices = client.get_cookie("hrdd_session").value
    login(client, "bob")  # someone else at the same computer
    assert _replayed(app, alices).get("/workspace/").status_code == 302
    assert _replayed(app, alices).get("/v1/cases").status_code == 401
    with app.extensions["hrdd"].store.engine.connect() as conn:
        assert conn.execute(sa.select(workspace_sessions.c.user_name)).scalars().all() == ["bob"]
