"""The write-back outbox: atomic with the screening, retries with back-off, recovers, hrdd outbox/worker."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from hrdd.hookspecs import hookimpl
from tests.adapter_support import FakeServer, count_screenings, fixture_json, outbox_rows

PATH = "/api/hrdd/decisions"


@pytest.fixture
def fake_crm():
    with FakeServer({("POST", PATH): (200, {"ok": True})}) as fake:
        yield fake


@pytest.fixture
def app_config(app_config, fake_crm):
    app_config["HRDD_ADAPTERS"] = {
        "writeback": {"netsuite": {"url": fake_crm.url + PATH, "method": "POST", "signing_secret": "wb-secret",
                                   "headers": {"Authorization": "NLAuth nlauth_account=123"}}},
        "worker": {"base_delay": 10, "max_delay": 60, "max_attempts": 4}}
    return app_config


def netsuite_transaction():
    body = fixture_json("generic/transaction.json")
    body["reference"] = {"system": "netsuite", "object_type": "estimate", "object_id": "1187"}
    return body


def verify_writeback(request, secret: bytes, max_age: int = 300) -> bool:
    """What a RESTlet does (docs/integrations/generic.md): check the signed timestamp, then the signature."""
    import hashlib
    import hmac
    import time

    stamp = request["headers"].get("x-hrdd-timestamp", "")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > max_age:
        return False
    expected = hmac.new(secret, stamp.encode() + b"." + request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(request["headers"].get("x-hrdd-signature", ""), f"sha256={expected}")


def deliver(app, moment=None):
    from hrdd.adapters import outbox
    from hrdd.adapters.config import settings_for

    with app.app_context():
        return outbox.deliver_due(app.extensions["hrdd"], settings_for(app), moment=moment)


def test_outbox_row_is_written_with_the_screening(app, client, auth_headers):
    r = client.post("/v1/screenings", json=netsuite_transaction(), headers=auth_headers("crm"))
    rows = outbox_rows(app)
    assert len(rows) == 1 and rows[0]["screening_id"] == r.json["id"] and rows[0]["status"] == "pending"
    other = fixture_json("generic/transaction.json")  # system "salesforce": no write-back configured
    client.post("/v1/screenings", json=other, headers=auth_headers("crm"))
    assert len(outbox_rows(app)) == 1


class FailAfterOutbox:
    """A plugin whose hook runs after the outbox's and fails, as a crash before commit would."""

    seen: list[int] = []

    @hookimpl(trylast=True)
    def hrdd_screening_stored(self, screening, connection, store):
        import sqlalchemy as sa

        from hrdd.adapters.tables import outbox

        # The outbox row is already there, inside the same uncommitted transaction.
        self.seen.append(connection.execute(sa.select(sa.func.count()).select_from(outbox)).scalar())
        raise RuntimeError("crash before commit")


def test_screening_and_outbox_row_commit_or_roll_back_together(app, auth_headers):
    from hrdd.model import Transaction

    services = app.extensions["hrdd"]
    crash = FailAfterOutbox()
    services.pm.register(crash)
    data = services.validate(netsuite_transaction())
    screening = services.screen(Transaction.from_dict(data))
    with app.test_request_context(), pytest.raises(RuntimeError):
        services.store.save_screening(screening, data, request_hash="x" * 64, source="api")
    assert crash.seen == [1]
    assert count_screenings(app) == 0 and outbox_rows(app) == []


def test_crm_outage_is_retried_with_back_off_and_nothing_is_lost(app, client, auth_headers, fake_crm):
    from hrdd.adapters.tables import now

    fake_crm.fail_first = 2
    r = client.post("/v1/screenings", json=netsuite_transaction(), headers=auth_headers("crm"))
    start = now()
    assert deliver(app, start) == {"delivered": 0, "retrying": 1, "failed": 0}
    row = outbox_rows(app)[0]
    assert row["attempts"] == 1 and row["last_status"] == 503 and "answered 503" in row["last_error"]
    assert deliver(app, start + timedelta(seconds=5)) == {"delivered": 0, "retrying": 0, "failed": 0}  # not due
    assert deliver(app, start + timedelta(seconds=11)) == {"delivered": 0, "retrying": 1, "failed": 0}
    assert outbox_rows(app)[0]["attempts"] == 2  # next try 20 s later (10 s doubled)
    assert deliver(app, start + timedelta(seconds=25)) == {"delivered": 0, "retrying": 0, "failed": 0}
    assert deliver(app, start + timedelta(seconds=32)) == {"delivered": 1, "retrying": 0, "failed": 0}
    delivered = outbox_rows(app, "delivered")[0]
    assert delivered["attempts"] == 3 and delivered["sent"]["status"] == 200
    request = fake_crm.requests[-1]
    body = json.loads(request["body"])
    assert body["reference"] == {"system": "netsuite", "object_type": "estimate", "object_id": "1187"}
    assert body["gate"] == "hold" and body["decision"] == "escalate" and body["screening_id"] == r.json["id"]
    assert "RF-" in body["red_flags"]
    assert verify_writeback(request, b"wb-secret")
    assert request["headers"]["authorization"] == "NLAuth nlauth_account=123"
    assert "nlauth" not in json.dumps(delivered["sent"]).lower()


def test_gives_up_after_max_attempts_and_an_operator_can_retry(app, client, auth_headers, fake_crm):
    from hrdd.adapters.tables import now

    fake_crm.fail_first = 10
    client.post("/v1/screenings", json=netsuite_transaction(), headers=auth_headers("crm"))
    moment = now()
    for _ in range(4):
        deliver(app, moment)
        moment += timedelta(minutes=2)
    assert outbox_rows(app, "failed")[0]["attempts"] == 4
    runner = app.test_cli_runner()
    from hrdd_plugins.adapter_runtime import outbox_command

    listing = runner.invoke(outbox_command, [])
    assert listing.exit_code == 0 and "failed" in listing.output and "answered 503" in listing.output
    row_id = outbox_rows(app, "failed")[0]["id"]
    assert runner.invoke(outbox_command, ["retry", row_id]).exit_code == 0
    fake_crm.fail_first = 0
    assert deliver(app) == {"delivered": 1, "retrying": 0, "failed": 0}
    assert "No write-backs pending or failed" in runner.invoke(outbox_command, []).output
    shown = json.loads(runner.invoke(outbox_command, ["--status", "all", "--json"]).output)
    assert [r["status"] for r in shown] == ["delivered"]


def test_worker_command_runs_one_pass(app, client, auth_headers, fake_crm):
    from hrdd_plugins.adapter_runtime import worker_command

    client.post("/v1/screenings", json=netsuite_transaction(), headers=auth_headers("crm"))
    result = app.test_cli_runner().invoke(worker_command, ["--once"])
    assert result.exit_code == 0
    assert json.loads(result.output)["writeback"] == {"delivered": 1, "retrying": 0, "failed": 0}
    assert len(fake_crm.requests) == 1


def test_commands_are_registered_on_the_hrdd_group():
    from hrdd.cli import cli
    from hrdd.plugins import make_plugin_manager

    make_plugin_manager().hook.hrdd_register_commands(cli=cli)
    assert {"worker", "outbox"} <= set(cli.commands)


def test_a_signed_write_back_replayed_later_is_refused_by_the_receiver(app, client, auth_headers, fake_crm,
                                                                       monkeypatch):
    # A captured "release" replayed an hour later must not verify, or it could overwrite a newer hold.
    import time

    client.post("/v1/screenings", json=netsuite_transaction(), headers=auth_headers("crm"))
    assert deliver(app) == {"delivered": 1, "retrying": 0, "failed": 0}
    captured = fake_crm.requests[-1]
    assert verify_writeback(captured, b"wb-secret")
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() + 3600)
    assert not verify_writeback(captured, b"wb-secret")
    # Nor can the timestamp be refreshed without the secret: it is signed with the body.
    replayed = {**captured, "headers": {**captured["headers"], "x-hrdd-timestamp": str(int(time.time()))}}
    assert not verify_writeback(replayed, b"wb-secret")


def test_after_a_crm_outage_every_failed_write_back_is_queued_again_at_once(app, client, auth_headers,
                                                                            fake_crm):
    from hrdd_plugins.adapter_runtime import outbox_command

    from hrdd.adapters.tables import now

    fake_crm.fail_first = 100
    for number in ("1187", "1188", "1189"):
        body = netsuite_transaction()
        body["reference"]["object_id"] = number
        client.post("/v1/screenings", json=body, headers=auth_headers("crm"))
    moment = now()
    for _ in range(4):
        deliver(app, moment)
        moment += timedelta(minutes=2)
    assert len(outbox_rows(app, "failed")) == 3
    runner = app.test_cli_runner()
    listing = runner.invoke(outbox_command, [])
    # A failed row has no next attempt: none will happen until it is queued again.
    failed_lines = [line for line in listing.output.splitlines() if " failed " in line]
    assert len(failed_lines) == 3 and not any(re.search(r"\d{4}-\d\d-\d\dT", line) for line in failed_lines)
    assert runner.invoke(outbox_command, ["retry"]).exit_code != 0  # neither an id nor --all-failed
    result = runner.invoke(outbox_command, ["retry", "--all-failed", "--system", "netsuite"])
    assert result.exit_code == 0 and "3 failed write-back(s) to netsuite queued again" in result.output
    fake_crm.fail_first = 0
    assert deliver(app) == {"delivered": 3, "retrying": 0, "failed": 0}


def test_metrics_count_write_backs_waiting_and_given_up(app, client, auth_headers, fake_crm):
    # A write-back that gave up leaves the CRM showing an older gate: monitoring must be able to see it.
    from hrdd.adapters.tables import now

    fake_crm.fail_first = 100
    client.post("/v1/screenings", json=netsuite_transaction(), headers=auth_headers("crm"))
    scraped = client.get("/metrics").get_data(as_text=True)
    assert 'hrdd_outbox_rows{status="pending",system="netsuite"} 1.0' in scraped
    moment = now()
    for _ in range(4):
        deliver(app, moment)
        moment += timedelta(minutes=2)
    scraped = client.get("/metrics").get_data(as_text=True)
    assert 'hrdd_outbox_rows{status="failed",system="netsuite"} 1.0' in scraped
    assert 'status="pending",system="netsuite"' not in scraped
