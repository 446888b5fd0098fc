"""Helpers shared by the workspace tests: people, sign-in, CSRF tokens and screenings."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
PASSWORD = "correct horse battery staple"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
_SHOWN = re.compile(r'name="screening_id" value="([^"]+)"')


def fixture(name: str) -> dict:
    """A JSON sample payload from tests/fixtures (a fresh copy)."""
    return copy.deepcopy(json.loads((FIXTURES / name).read_text(encoding="utf-8")))


def make_user(app, name: str = "alice", role: str = "reviewer", password: str = PASSWORD) -> None:
    """Create a person directly in the store (the CLI is tested separately)."""
    from hrdd.workspace import users
    with app.extensions["hrdd"].store.begin() as conn:
        users.create_user(conn, name, role, password, "test")


def csrf_from(client, path: str) -> str:
    """The CSRF token embedded in the form(s) of a page."""
    page = client.get(path)
    match = _TOKEN.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path} ({page.status_code})"
    return match.group(1)


def decision_form(client, case_id: str) -> dict:
    """The hidden fields of a case page's decision form: the CSRF token and the screening the page shows."""
    page = client.get(f"/workspace/cases/{case_id}").get_data(as_text=True)
    token, shown = _TOKEN.search(page), _SHOWN.search(page)
    assert token and shown, f"no decision form on the page of case {case_id}"
    return {"csrf_token": token.group(1), "screening_id": shown.group(1)}


def login(client, name: str = "alice", password: str = PASSWORD):
    """Sign in through the form; returns the response."""
    token = csrf_from(client, "/workspace/login")
    return client.post("/workspace/login", data={"name": name, "password": password, "csrf_token": token})


def screen(client, headers: dict, body: dict, **changes) -> dict:
    """POST /v1/screenings with ``body`` updated by ``changes``; asserts 201 and returns the JSON."""
    body = {**body, **changes}
    response = client.post("/v1/screenings", json=body, headers=headers)
    assert response.status_code in (200, 201), response.get_data(as_text=True)
    return response.get_json()


def case_of(app, transaction_id: str) -> dict | None:
    """The newest case of a transaction, or None."""
    import sqlalchemy as sa

    from hrdd.workspace.tables import cases
    with app.extensions["hrdd"].store.engine.connect() as conn:
        row = conn.execute(sa.select(cases).where(cases.c.transaction_id == transaction_id)
                           .order_by(cases.c.opened_at.desc())).first()
    return dict(row._mapping) if row else None


def load_party_list(app, csv: bytes, name: str = "own") -> None:
    """Load an organisation's own restricted-party list (CSV bytes) as its newest version."""
    from hrdd.parties import service, storage
    from hrdd.parties.loaders import load_bytes
    store = app.extensions["hrdd"].store
    loaded = load_bytes(csv, list_name=name, source_file=f"{name}.csv")
    storage.save_version(store, loaded, name, "test", sum(len(e.names()) for e in loaded.entries))
    service.invalidate(store)
