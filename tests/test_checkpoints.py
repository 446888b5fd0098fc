"""Background WAL checkpoints (what `hrdd serve` runs on SQLite): the log stays bounded, nothing is lost."""

from __future__ import annotations

import time

import sqlalchemy as sa

from hrdd import checkpoints


def test_background_checkpoints_keep_the_log_bounded_and_every_screening(tmp_path, transaction):
    from server import create_app
    db = tmp_path / "hrdd.sqlite3"
    app = create_app({"HRDD_DATABASE_URL": f"sqlite:///{db}", "TESTING": True, "HRDD_VAR_DIR": str(tmp_path)})
    store = app.extensions["hrdd"].store
    key = store.create_api_key("t", "crm")[1]
    # About 14 pages per stored screening: without restarts 300 screenings leave a log of ~17 MB.
    assert checkpoints.start(store, interval=0.01, restart_pages=100) is not None
    with store.engine.connect() as conn:
        # Requests no longer checkpoint inside their commits.
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
    client = app.test_client()
    ids = []
    for n in range(300):
        body = {**transaction, "reference": {**transaction["reference"], "object_id": f"opp-{n}"}}
        answer = client.post("/v1/screenings", json=body, headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 201, answer.json
        ids.append(answer.json["id"])
    time.sleep(0.2)
    assert (tmp_path / "hrdd.sqlite3-wal").stat().st_size < 4_000_000
    with store.engine.connect() as conn:
        stored = set(conn.execute(sa.text("SELECT id FROM screenings")).scalars())
    assert stored == set(ids)
    store.engine.dispose()


def test_server_databases_and_memory_get_no_checkpoint_thread(tmp_path):
    class FakeStore:
        def __init__(self, url):
            self.engine = sa.create_engine(url)
            self.write_lock = None

    assert checkpoints.start(FakeStore("sqlite://")) is None
    assert checkpoints.start(FakeStore("postgresql+psycopg://nobody@127.0.0.1:1/none")) is None
