"""The store's guarantees: one screening per idempotency key under concurrency, migrations re-runnable."""

from __future__ import annotations

import copy
import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import migrate_down

pytestmark = pytest.mark.store

# On SQLite the created_at index carries the dashboard's columns (migration 0003).
_CREATED_AT_INDEX = {"sqlite": ("created_at", "decision", "end_user_country", "capabilities"),
                     "postgresql": ("created_at",)}


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
    # A database from before 0002 (so before 0003 too): the two indexes exist and 0002 is not recorded.
    migrate_down(store, "0002_screening_indexes")
    with store.engine.begin() as conn:
        conn.execute(sa.text("CREATE INDEX ix_screenings_decision ON screenings (decision)"))
        conn.execute(sa.text("CREATE INDEX ix_screenings_end_user_country ON screenings (end_user_country)"))
        conn.execute(sa.text("DELETE FROM alembic_version WHERE version_num = '0002_screening_indexes'"))
    store.upgrade()
    indexed = {tuple(ix["column_names"]) for ix in sa.inspect(store.engine).get_indexes("screenings")}
    assert not {columns[0] for columns in indexed} & {"decision", "end_user_country"}
    # What queries filter or sort by stays indexed.
    assert {("transaction_id",), _CREATED_AT_INDEX[store.dialect]} <= indexed
    assert store.get_screening(sid)["id"] == sid
    status = store.schema_status()
    assert status["problem"] is None and "0004_screening_stage_index" in status["recorded"]


def test_upgrade_fills_in_the_capabilities_of_existing_screenings_and_downgrade_drops_them(app, auth_headers,
                                                                                           transaction):
    import sqlalchemy as sa

    from hrdd.tables import screenings
    store = app.extensions["hrdd"].store
    transaction["items"] = [
        {"sku": "CAM-1", "name": "Camera", "capabilities": ["location_tracking", "biometric_identification"]},
        {"sku": "CAM-2", "name": "Camera 2", "capabilities": ["biometric_identification"]}]
    sid = app.test_client().post("/v1/screenings", json=transaction, headers=auth_headers("crm")).json["id"]
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(screenings).where(screenings.c.id == sid)).one()._asdict()
    assert json.loads(row["capabilities"]) == ["biometric_identification", "location_tracking"]
    # More rows than the migration reads at a time, each with its own capabilities (some with none).
    sets = [[], ["data_storage"], ["intrusion_software", "data_storage"], ["cell_site_simulator"]]
    expected = {sid: ["biometric_identification", "location_tracking"]}
    copies = []
    for n in range(450):
        caps = sets[n % len(sets)]
        copy_id = f"scr_copy{n:05d}"
        copies.append({**row, "id": copy_id, "idempotency_key": None, "capabilities": None,
                       "request": {**row["request"], "items": [{"sku": f"S-{n}", "capabilities": caps},
                                                               {"sku": "X", "capabilities": caps[:1]}]}})
        expected[copy_id] = sorted(caps)
    with store.begin() as conn:
        conn.execute(screenings.insert(), copies)

    migrate_down(store, "0002_screening_indexes")
    inspector = sa.inspect(store.engine)
    assert "capabilities" not in {c["name"] for c in inspector.get_columns("screenings")}
    assert ("created_at",) in {tuple(ix["column_names"]) for ix in inspector.get_indexes("screenings")}
    assert store.count_screenings() == 451 and store.get_screening(sid)["id"] == sid
    store.upgrade()
    with store.engine.connect() as conn:
        stored = dict(conn.execute(sa.select(screenings.c.id, screenings.c.capabilities)).all())
    assert {k: json.loads(v) for k, v in stored.items()} == expected
    indexed = {tuple(ix["column_names"]) for ix in sa.inspect(store.engine).get_indexes("screenings")}
    assert _CREATED_AT_INDEX[store.dialect] in indexed and (store.dialect != "sqlite" or ("created_at",) not in indexed)
    assert store.get_screening_request(sid) == row["request"] and store.get_screening(sid) == row["result"]
    assert store.schema_status()["problem"] is None


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


def test_rider_execution_times_sent_with_offsets_are_stored_as_their_instant(app, client, auth_headers, transaction):
    import sqlalchemy as sa

    from hrdd.adapters.tables import rider_executions
    screened = client.post("/v1/screenings", json=transaction, headers=auth_headers("crm")).json
    txn = screened["transaction_id"]
    # Dated before the deal's first screening, so the screening is named (hrdd would not guess it).
    sent = {"2026-11-20T10:00:00+02:00": "2026-11-20T08:00:00.000000Z",
            "2026-11-20T08:00:00-05:00": "2026-11-20T13:00:00.000000Z",
            "2026-11-20T10:00:00+09:00": "2026-11-20T01:00:00.000000Z"}
    for executed_at, instant in sent.items():
        r = client.post(f"/v1/transactions/{txn}/rider-executed", headers=auth_headers("contracts"),
                        json={"executed_by": "Ingrid Berg (contracts)", "executed_at": executed_at,
                              "screening_id": screened["id"]})
        assert r.status_code == 201, r.json
        assert r.json["executed_at"] == instant
    with app.extensions["hrdd"].store.engine.connect() as conn:
        stored = conn.execute(sa.select(rider_executions.c.executed_at).where(rider_executions.c.transaction_id == txn)
                              .order_by(rider_executions.c.executed_at.desc())).scalars().all()
    assert [s.isoformat() for s in stored] == [
        "2026-11-20T13:00:00+00:00", "2026-11-20T08:00:00+00:00", "2026-11-20T01:00:00+00:00"]


def test_history_of_a_deal_lists_its_screenings_in_the_order_they_were_stored(app, auth_headers, transaction,
                                                                              monkeypatch):
    """A screening slowed down on its way to the database is not dated before one stored ahead of it."""
    import threading

    import hrdd.store
    from hrdd.hookspecs import hookimpl

    headers = auth_headers("crm")
    client = app.test_client()
    txn = client.post("/v1/screenings", json=transaction, headers=headers).json["transaction_id"]
    stored = [s["id"] for s in reversed(app.extensions["hrdd"].store.screenings_of(txn))]

    class StorageOrder:
        @hookimpl
        def hrdd_screening_stored(self, screening, connection, store):
            stored.append(screening["id"])

    app.extensions["hrdd"].pm.register(StorageOrder())
    paused, other_stored = threading.Event(), threading.Event()
    clock = hrdd.store.utcnow

    def slow_clock():
        moment = clock()
        if threading.current_thread().name == "slow" and not paused.is_set():
            paused.set()
            other_stored.wait(0.5)  # whichever lock it holds now keeps the other screening waiting
        return moment

    monkeypatch.setattr(hrdd.store, "utcnow", slow_clock)

    def slow_screening():
        with app.test_client() as c:
            assert c.post("/v1/screenings", json=transaction, headers=headers).status_code == 201

    slow = threading.Thread(target=slow_screening, name="slow")
    slow.start()
    assert paused.wait(10)
    assert client.post("/v1/screenings", json=transaction, headers=headers).status_code == 201
    other_stored.set()
    slow.join(10)
    history = client.get(f"/v1/transactions/{txn}", headers=headers).json
    assert len(stored) == 3
    assert [s["id"] for s in history["screenings"]] == stored[::-1]
    assert history["latest_screening_id"] == stored[-1]


# ---- schema revisions, migrations and database faults ----

def _record_revision(store, revision: str) -> None:
    import sqlalchemy as sa
    with store.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO alembic_version (version_num) VALUES (:rev)"), {"rev": revision})


def test_upgrade_refuses_a_database_migrated_by_a_newer_hrdd(app, app_config, auth_headers, transaction):
    from alembic.util import CommandError

    from server import create_app
    store = app.extensions["hrdd"].store
    sid = app.test_client().post("/v1/screenings", json=transaction, headers=auth_headers("crm")).json["id"]
    _record_revision(store, "0799_future")
    refusal = r"migrated by a newer hrdd \(unknown revision 0799_future\); upgrade hrdd or restore a backup"
    with pytest.raises(CommandError, match=refusal):
        store.upgrade()
    with pytest.raises(CommandError, match=refusal):
        create_app(app_config)
    assert store.get_screening(sid)["id"] == sid
    assert "0799_future" in store.schema_status()["recorded"]


@pytest.mark.parametrize("change, reason", [("newer", "migrated by a newer hrdd (unknown revision 0799_future)"),
                                            ("behind", "out of date")])
def test_readyz_is_not_ready_while_the_schema_is_not_this_hrdds(app, client, change, reason):
    import sqlalchemy as sa
    store = app.extensions["hrdd"].store
    if change == "newer":
        _record_revision(store, "0799_future")
    else:
        with store.engine.begin() as conn:
            conn.execute(sa.text("DELETE FROM alembic_version WHERE version_num = :rev"),
                         {"rev": store.schema_status()["heads"][0]})
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json["status"] == "not_ready"
    assert r.json["checks"] == {"store": False, "reference_data": True}
    assert reason in r.json["reasons"]["store"]


def test_readyz_is_ready_with_this_hrdds_schema(client):
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json["reasons"] == {}


@pytest.mark.parametrize("change", ["ALTER TABLE screenings RENAME TO screenings_gone",
                                    "ALTER TABLE screenings RENAME COLUMN result TO result_gone"])
def test_a_missing_table_or_column_is_a_500_telling_the_operator_to_upgrade(app, client, auth_headers, transaction,
                                                                            change):
    import sqlalchemy as sa
    sid = client.post("/v1/screenings", json=transaction, headers=auth_headers("crm")).json["id"]
    with app.extensions["hrdd"].store.engine.begin() as conn:
        conn.execute(sa.text(change))
    r = client.get(f"/v1/screenings/{sid}", headers=auth_headers("reviewer"))
    assert r.status_code == 500 and "Retry-After" not in r.headers
    assert set(r.json) == {"code", "status", "message", "errors"}
    assert r.json["code"] == "store_schema_mismatch" and r.json["status"] == 500
    assert "hrdd db upgrade" in r.json["message"]


def test_a_read_only_database_is_a_503_that_does_not_say_unreachable(app, client, auth_headers, transaction):
    import sqlalchemy as sa
    store = app.extensions["hrdd"].store
    headers = auth_headers("crm")
    statement = "PRAGMA query_only = ON" if store.dialect == "sqlite" else "SET default_transaction_read_only = on"

    @sa.event.listens_for(store.engine, "connect")
    def _read_only(dbapi_conn, _record):
        cursor = dbapi_conn.cursor()
        cursor.execute(statement)
        cursor.close()
        dbapi_conn.commit()

    store.engine.dispose()
    r = client.post("/v1/screenings", json=transaction, headers=headers)
    assert r.status_code == 503 and r.headers["Retry-After"]
    assert r.json["code"] == "store_read_only" and set(r.json) == {"code", "status", "message", "errors"}
    assert "read-only" in r.json["message"] and "reach" not in r.json["message"]
    assert client.get("/v1/whoami", headers=headers).status_code == 200  # reads still work


def test_a_table_hrdds_user_may_not_write_is_a_500_naming_the_grant(app, client, auth_headers, transaction):
    import uuid

    import sqlalchemy as sa
    store = app.extensions["hrdd"].store
    if store.dialect != "postgresql":
        pytest.skip("SQLite has no database users or grants")
    headers = auth_headers("crm")
    role = f"hrdd_test_reader_{uuid.uuid4().hex[:8]}"
    with store.engine.begin() as conn:
        schema = conn.execute(sa.text("SELECT current_schema()")).scalar()
        conn.execute(sa.text(f'CREATE ROLE "{role}" NOLOGIN'))
        conn.execute(sa.text(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"'))
        conn.execute(sa.text(f'GRANT SELECT ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"'))

    @sa.event.listens_for(store.engine, "connect")
    def _as_reader(dbapi_conn, _record):  # as if the tables had been restored by another user
        cursor = dbapi_conn.cursor()
        cursor.execute(f'SET ROLE "{role}"')
        cursor.close()
        dbapi_conn.commit()

    store.engine.dispose()
    try:
        r = client.post("/v1/screenings", json=transaction, headers=headers)
        assert r.status_code == 500 and "Retry-After" not in r.headers
        assert r.json["code"] == "store_permission_denied" and set(r.json) == {"code", "status", "message", "errors"}
        assert "grant" in r.json["message"] and "docs/operations.md" in r.json["message"]
        assert client.get("/v1/whoami", headers=headers).status_code == 200  # reads still work
    finally:
        sa.event.remove(store.engine, "connect", _as_reader)
        store.engine.dispose()
        with store.engine.begin() as conn:
            conn.execute(sa.text(f'DROP OWNED BY "{role}"'))
            conn.execute(sa.text(f'DROP ROLE "{role}"'))


def test_an_unreachable_database_is_a_retryable_503(app, client, auth_headers, tmp_path):
    import sqlalchemy as sa
    store = app.extensions["hrdd"].store
    headers = auth_headers("reviewer")
    (tmp_path / "not-a-directory").write_text("")
    away = (f"sqlite:///{tmp_path / 'not-a-directory' / 'hrdd.sqlite3'}" if store.dialect == "sqlite"
            else "postgresql+psycopg://hrdd@127.0.0.1:1/hrdd")
    store.engine.dispose()
    store.engine = sa.create_engine(away)
    r = client.get("/v1/screenings/scr_nope", headers=headers)
    assert r.status_code == 503 and r.headers["Retry-After"] == "5"
    assert r.json["code"] == "store_unavailable" and set(r.json) == {"code", "status", "message", "errors"}


def _migrations_plus(tmp_path, store, upgrade_body: str):
    """A copy of hrdd's migrations with one more revision on top of every head, running ``upgrade_body``."""
    import shutil
    import textwrap
    target = tmp_path / "migrations"
    shutil.copytree(store.migrations_dir, target, ignore=shutil.ignore_patterns("__pycache__"))
    heads = tuple(store.schema_status()["heads"])
    (target / "versions" / "9999_throwaway.py").write_text(
        "import sqlalchemy as sa\nfrom alembic import op\n\n"
        f"revision = '9999_throwaway'\ndown_revision = {heads!r}\nbranch_labels = None\ndepends_on = None\n\n\n"
        f"def upgrade():\n{textwrap.indent(upgrade_body, '    ')}\n")
    return target


_BATCH_ON_TRANSACTIONS = ('with op.batch_alter_table("transactions", recreate="always") as batch:\n'
                          '    batch.add_column(sa.Column("note", sa.String(20), nullable=True))\n')


def _sqlite_state(store):
    import sqlalchemy as sa
    inspector = sa.inspect(store.engine)
    with store.engine.connect() as conn:
        return {"tables": inspector.get_table_names(),
                "columns": {c["name"] for c in inspector.get_columns("transactions")},
                "foreign_keys": conn.exec_driver_sql("PRAGMA foreign_keys").scalar(),
                "dangling": conn.exec_driver_sql("PRAGMA foreign_key_check").all(),
                "recorded": store.schema_status()["recorded"]}


def test_sqlite_batch_migration_of_a_referenced_table_keeps_its_rows(app, auth_headers, transaction, tmp_path):
    store = app.extensions["hrdd"].store
    if store.dialect != "sqlite":
        pytest.skip("batch migrations copy tables on SQLite only")
    screening = app.test_client().post("/v1/screenings", json=transaction, headers=auth_headers("crm")).json
    store.migrations_dir = _migrations_plus(tmp_path, store, _BATCH_ON_TRANSACTIONS)
    store.engine.dispose()  # the migration's connection is the one pooled afterwards
    store.upgrade()
    state = _sqlite_state(store)
    assert "note" in state["columns"] and state["recorded"] == ["9999_throwaway"]
    assert state["foreign_keys"] == 1 and state["dangling"] == []
    assert not any(name.startswith("_alembic_tmp") for name in state["tables"])
    assert store.get_transaction(screening["transaction_id"]) is not None
    assert store.get_screening(screening["id"])["id"] == screening["id"]


@pytest.mark.parametrize("body, error", [
    (_BATCH_ON_TRANSACTIONS + "raise RuntimeError('the migration failed half-way')", "half-way"),
    ("op.execute('DELETE FROM transactions')", r"foreign key refers to no row \(first: screenings"),
])
def test_a_failed_sqlite_migration_changes_nothing(app, auth_headers, transaction, tmp_path, body, error):
    store = app.extensions["hrdd"].store
    if store.dialect != "sqlite":
        pytest.skip("PostgreSQL's DDL was always transactional")
    screening = app.test_client().post("/v1/screenings", json=transaction, headers=auth_headers("crm")).json
    before = _sqlite_state(store)
    store.migrations_dir = _migrations_plus(tmp_path, store, body)
    store.engine.dispose()
    with pytest.raises(Exception, match=error):
        store.upgrade()
    assert _sqlite_state(store) == before
    assert store.get_transaction(screening["transaction_id"]) is not None
