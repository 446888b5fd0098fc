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


def test_upgrade_drops_the_unread_screening_indexes_and_keeps_screenings(app, auth_headers, transaction):
    import sqlalchemy as sa
    store = app.extensions["hrdd"].store
    sid = app.test_client().post("/v1/screenings", json=transaction, headers=auth_headers("crm")).json["id"]
    # A database from before 0002: the two indexes exist and 0002 is not recorded.
    with store.engine.begin() as conn:
        conn.execute(sa.text("CREATE INDEX ix_screenings_decision ON screenings (decision)"))
        conn.execute(sa.text("CREATE INDEX ix_screenings_end_user_country ON screenings (end_user_country)"))
        conn.execute(sa.text("DELETE FROM alembic_version WHERE version_num = '0002_screening_indexes'"))
    store.upgrade()
    indexed = {tuple(ix["column_names"]) for ix in sa.inspect(store.engine).get_indexes("screenings")}
    assert ("decision",) not in indexed and ("end_user_country",) not in indexed
    # What queries filter or sort by stays indexed.
    assert {("transaction_id",), ("created_at",)} <= indexed
    assert store.get_screening(sid)["id"] == sid
    with store.engine.connect() as conn:
        assert "0002_screening_indexes" in conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()


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


def test_order_is_compared_with_the_newest_quote_stored_before_it(app, client, auth_headers, transaction):
    """The order gate's "material change since the quote" uses the last quote before that order."""
    headers = auth_headers("crm")

    def screen(stage, quantity):
        body = copy.deepcopy(transaction)
        body["stage"] = stage
        body["items"][0]["quantity"] = quantity
        r = client.post("/v1/screenings", json=body, headers=headers)
        assert r.status_code == 201, r.json
        return r.json

    first_quote, second_quote = screen("quote", 10), screen("quote", 20)
    order = screen("order", 20)
    later_quote = screen("quote", 30)
    store = app.extensions["hrdd"].store
    txn = order["transaction_id"]
    assert store.latest_screening_before(txn, order["id"], "quote")["id"] == second_quote["id"]
    assert store.latest_screening_before(txn, second_quote["id"], "quote")["id"] == first_quote["id"]
    assert store.latest_screening_before(txn, first_quote["id"], "quote") is None
    assert store.latest_screening_before(txn, later_quote["id"], "order")["id"] == order["id"]
    assert store.latest_screening_before(txn, "scr_unknown", "quote") is None
    # Same quantity as the second quote: no material-change hold at order (the first quote differed).
    assert not any("material change" in reason for reason in order["hold_reasons"])
