"""The store's guarantees: one screening per idempotency key under concurrency, migrations re-runnable."""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor

import pytest

pytestmark = pytest.mark.store


def test_concurrent_duplicate_deliveries_store_one_screening(app, auth_headers, transaction):
    headers = {**auth_headers("crm"), "Idempotency-Key": "hubspot-event-42"}

    def deliver(_):
        with app.test_client() as c:
            r = c.post("/v1/screenings", json=transaction, headers=headers)
            return r.status_code, r.json["id"]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(deliver, range(24)))
    assert sorted({s for s, _ in results}) in ([200, 201], [201])
    assert [s for s, _ in results].count(201) == 1
    assert len({i for _, i in results}) == 1
    assert app.extensions["hrdd"].store.count_screenings() == 1


def test_concurrent_new_references_create_one_transaction_each(app, auth_headers, transaction):
    headers = auth_headers("crm")

    def deliver(n):
        body = copy.deepcopy(transaction)
        body["stage"] = ["opportunity", "quote", "order"][n % 3]
        with app.test_client() as c:
            return c.post("/v1/screenings", json=body, headers=headers).json["transaction_id"]

    with ThreadPoolExecutor(6) as pool:
        ids = set(pool.map(deliver, range(12)))
    assert len(ids) == 1
    assert app.extensions["hrdd"].store.count_screenings() == 12


def test_upgrade_is_idempotent_and_keeps_data(app, auth_headers, transaction):
    client = app.test_client()
    sid = client.post("/v1/screenings", json=transaction, headers=auth_headers("crm")).json["id"]
    store = app.extensions["hrdd"].store
    store.upgrade()
    store.upgrade()
    assert store.get_screening(sid)["id"] == sid
    assert store.get_screening_request(sid)["end_user"]["country"] == "EG"


def test_screening_records_request_versions_and_source(app, auth_headers, transaction):
    import sqlalchemy as sa

    from hrdd.tables import screenings
    client = app.test_client()
    sid = client.post("/v1/screenings", json=transaction, headers=auth_headers("crm")).json["id"]
    with app.extensions["hrdd"].store.engine.connect() as conn:
        row = conn.execute(sa.select(screenings).where(screenings.c.id == sid)).one()
    assert row.source == "api" and row.decision == "escalate" and row.end_user_country == "EG"
    assert row.request["items"][0]["capabilities"] == ["biometric_identification"]
    assert row.result["versions"]["data"]["pts"] == "2023"
