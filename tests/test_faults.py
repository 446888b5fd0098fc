"""Faults under load: kill -9 of a server and of the worker, a database outage, a CRM that times out.

Afterwards every 2xx a client saw is stored, no screening lacks its outbox row or review case, no
delivery is left half-processed, the outbox drains, and the service recovered without a restart
(readiness answered 503 during the outage and 200 after it).
"""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest

from tests.scaleout_support import (
    HRDD,
    ROOT,
    FakeCrm,
    Instance,
    LoadDriver,
    PlainDatabase,
    PrivatePostgres,
    Schema,
    adapters_file,
    base_env,
    create_key,
    pg_unavailable,
    private_postgres_unavailable,
    stuck_deliveries,
    transaction,
    verify_store,
    wait_for,
)

pytestmark = [pytest.mark.faults, pytest.mark.slow]


def _worker(env, workdir, name="worker"):
    log = (workdir / f"{name}.log").open("ab")
    return subprocess.Popen([*HRDD, "worker", "--interval", "0.5"], env=env, cwd=ROOT, stdout=log,
                            stderr=subprocess.STDOUT)


def _drained(schema):
    return lambda: schema.scalar("SELECT count(*) FROM outbox WHERE status <> 'delivered'") == 0


def test_kill_9_of_a_server_and_the_worker_mid_load_loses_nothing(tmp_path):
    reason = pg_unavailable()
    if reason:
        pytest.skip(reason)
    schema, crm = Schema(prefix="fk"), FakeCrm()
    env = base_env(schema.url, tmp_path, HRDD_ADAPTERS_FILE=str(adapters_file(tmp_path, crm.url, lease=3)))
    a, b = Instance("a", env, tmp_path), Instance("b", env, tmp_path)
    worker = None
    try:
        a.start(), b.start()
        a.wait_ready(), b.wait_ready()
        worker = _worker(env, tmp_path)
        driver = LoadDriver([a.url, b.url], create_key(env, "crm"), f"k{uuid.uuid4().hex[:6]}", rate=25).start()
        time.sleep(3)
        a.kill()
        worker.kill()
        worker.wait()
        time.sleep(2)
        a.start()
        worker = _worker(env, tmp_path)
        a.wait_ready()
        time.sleep(3)
        driver.stop()
        summary = driver.summary()
        assert summary["deliveries_without_2xx"] == [], summary
        assert summary["attempts_by_status"].get("0", 0) > 0, "instance a was down while deliveries went to it"
        report = verify_store(schema, driver.records())
        assert report["problems"] == []
        assert report["screenings_stored"] == summary["deliveries"]
        assert stuck_deliveries(schema) == 0
        # Rows the killed worker had leased come back when the lease ends; all are delivered.
        assert wait_for(_drained(schema), 60) is not None
        assert len(crm.received) >= summary["deliveries"]
    finally:
        if worker is not None:
            worker.kill()
        a.stop(), b.stop()
        crm.close()
        schema.drop()


def test_database_outage_gives_503_and_readiness_recovers_without_restart(tmp_path):
    reason = private_postgres_unavailable()
    if reason:
        pytest.skip(reason)
    pg = PrivatePostgres()
    crm = FakeCrm()
    worker = a = b = None
    try:
        pg.start()
        env = base_env(pg.url, tmp_path, HRDD_ADAPTERS_FILE=str(adapters_file(tmp_path, crm.url, lease=3)))
        a, b = Instance("a", env, tmp_path), Instance("b", env, tmp_path)
        a.start(), b.start()
        a.wait_ready(), b.wait_ready()
        worker = _worker(env, tmp_path)
        driver = LoadDriver([a.url, b.url], create_key(env, "crm"), f"o{uuid.uuid4().hex[:6]}", rate=15).start()
        time.sleep(2)
        pg.stop()
        outage = time.monotonic()
        during = [a.ready(), b.ready()]
        time.sleep(3)
        pg.start()
        recovered = wait_for(lambda: a.ready()[0] == 200 and b.ready()[0] == 200, 30)
        time.sleep(2)
        driver.stop()
        outage_s = time.monotonic() - outage
        assert [status for status, _ in during] == [503, 503]
        assert all(body["checks"]["store"] is False for _, body in during)
        assert recovered is not None, "readiness must recover without restarting the instances"
        assert a.proc.poll() is None and b.proc.poll() is None and worker.poll() is None
        summary = driver.summary()
        assert summary["deliveries_without_2xx"] == [], summary
        assert summary["attempts_by_status"].get("503", 0) > 0, "requests during the outage answer 503"
        assert set(summary["attempts_by_status"]) <= {"200", "201", "503"}, summary
        report = verify_store(PlainDatabase(pg.url), driver.records())
        assert report["problems"] == []
        assert report["screenings_stored"] == summary["deliveries"]
        assert wait_for(_drained(PlainDatabase(pg.url)), 60) is not None, "the worker survives the outage and drains"
        print(f"outage {outage_s:.1f} s, readiness back {recovered:.1f} s after restart; {summary}")
    finally:
        if worker is not None:
            worker.kill()
        for instance in (a, b):
            if instance is not None:
                instance.stop()
        crm.close()
        pg.destroy()


@pytest.mark.store
def test_crm_timing_out_during_writeback_is_retried_and_nothing_is_lost(app_config):
    """In-process: the worker's call times out, the row stays pending with the error; later it is delivered."""
    crm = FakeCrm(delay=1.5)
    try:
        app_config["HRDD_ADAPTERS"] = {
            "writeback": {"loadtest": {"url": crm.url + "/records/{object_id}", "kind": "generic"}},
            "worker": {"timeout": 0.3, "base_delay": 1, "lease": 30}}
        from hrdd.adapters import outbox
        from hrdd.adapters.config import settings_for
        from server import create_app

        app = create_app(app_config)
        services = app.extensions["hrdd"]
        _, key = services.store.create_api_key("crm", "crm")
        client = app.test_client()
        answer = client.post("/v1/screenings", json=transaction("to-1"), headers={"Authorization": f"Bearer {key}"})
        assert answer.status_code == 201
        with app.app_context():
            first = outbox.deliver_due(services, settings_for(app))
            rows = outbox.rows(services.store)
            assert first == {"delivered": 0, "retrying": 1, "failed": 0}
            assert rows[0]["status"] == "pending" and rows[0]["attempts"] == 1
            assert "timed out" in rows[0]["last_error"]
            assert services.store.get_screening(answer.json["id"]) is not None
            crm.delay = 0
            later = outbox.now() + outbox.backoff(1, outbox.worker_settings(settings_for(app)))
            assert outbox.deliver_due(services, settings_for(app), moment=later) == {
                "delivered": 1, "retrying": 0, "failed": 0}
            done = outbox.rows(services.store)[0]
        assert done["status"] == "delivered" and done["attempts"] == 2
        # The timed-out call reached the CRM too: write-back is at-least-once and the PATCH is idempotent.
        assert wait_for(lambda: len(crm.received) == 2, 5) is not None
        assert {r["body"]["screening_id"] for r in crm.received} == {answer.json["id"]}
        services.store.engine.dispose()
    finally:
        crm.close()
