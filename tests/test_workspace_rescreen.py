"""Post-sale monitoring: `hrdd rescreen` re-screens active deals; a changed decision opens a case."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from hrdd import audit
from hrdd.tables import screenings
from tests.workspace_helpers import case_of, fixture

pytestmark = pytest.mark.store  # uses the store through its own apps
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _india(object_id: str, stage: str = "post_sale") -> dict:
    body = fixture("transaction_norway_storage.json")
    return {**body, "reference": {"system": "erp", "object_type": "order", "object_id": object_id}, "stage": stage,
            "end_user": {"name": "State Records Office", "country": "IN", "type": "government",
                         "sector": "civil_administration"}, "deployment_countries": ["IN"]}


@pytest.fixture
def lenient_policy(tmp_path):
    """The default policy, except that RF-2.1 (government end-user, high-risk country) is only medium."""
    from hrdd.config import load_config
    text = load_config()["HRDD_POLICY_FILE"].read_text(encoding="utf-8")
    assert "  RF-2.1: high\n" in text
    path = tmp_path / "lenient.yaml"
    path.write_text(text.replace("  RF-2.1: high\n", "  RF-2.1: medium\n")
                    .replace('version: "', 'version: "lenient-', 1), encoding="utf-8")
    return path


def _app(app_config, **extra):
    from server import create_app
    return create_app({**app_config, **extra})


def _rescreen_cli(database_url: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HRDD_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-c", "from hrdd.cli import main; main()", "rescreen", *args],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def test_a_policy_change_reopens_review_and_says_what_changed(app_config, database_url, lenient_policy):
    before = _app(app_config, HRDD_POLICY_FILE=str(lenient_policy))
    svc = before.extensions["hrdd"]
    sold, _ = svc.screen_and_store(_india("SO-1"))
    quoted, _ = svc.screen_and_store(_india("SO-2", stage="quote"))  # not yet sold: not monitored
    svc.store.engine.dispose()
    assert sold["decision"] == "proceed_with_safeguards" and case_of(before, sold["transaction_id"]) is None

    done = _rescreen_cli(database_url)  # the default policy is back in force
    assert done.returncode == 0, done.stderr
    assert "Re-screening" in done.stderr  # the progress bar
    assert "1 examined, 1 new screenings, 1 changed decisions" in done.stdout
    assert f"{sold['transaction_id']}: decision proceed_with_safeguards -> escalate" in done.stdout

    after = _app(app_config)
    case = case_of(after, sold["transaction_id"])
    assert case is not None and case["status"] == "open"
    assert "proceed_with_safeguards -> escalate" in case["reason"] and "policy lenient-" in case["reason"]
    assert case_of(after, quoted["transaction_id"]) is None
    latest = after.extensions["hrdd"].store.latest_screening(sold["transaction_id"])
    assert latest["decision"] == "escalate" and latest["stage"] == "post_sale"
    with after.extensions["hrdd"].store.engine.connect() as conn:
        source = conn.execute(sa.select(screenings.c.source).where(screenings.c.id == latest["id"])).scalar_one()
        runs = [e for e in audit.entries(conn) if e["action"] == "rescreen.run"]
    assert source == "rescreen" and runs[0]["details"]["decision_changes"] == 1

    again = _rescreen_cli(database_url)  # nothing changed since: nothing stored, no case
    assert "1 examined, 0 new screenings, 0 changed decisions" in again.stdout
    after.extensions["hrdd"].store.engine.dispose()


def test_stage_and_list_version_select_what_is_rescreened(app_config, database_url, lenient_policy):
    from hrdd import rescreen
    application = _app(app_config, HRDD_POLICY_FILE=str(lenient_policy))
    svc = application.extensions["hrdd"]
    old, _ = svc.screen_and_store(_india("L-3"))
    new, _ = svc.screen_and_store(_india("L-5"))
    order, _ = svc.screen_and_store(_india("L-O", stage="order"))
    with svc.store.begin() as conn:
        for screening, version in ((old, "3"), (new, "5")):
            result = conn.execute(sa.select(screenings.c.result).where(screenings.c.id == screening["id"])).scalar_one()
            result = {**result, "versions": {**result["versions"], "data": {**result["versions"]["data"],
                                                                            "parties": version}}}
            conn.execute(screenings.update().where(screenings.c.id == screening["id"]).values(result=result))
    svc.store.engine.dispose()

    picked = [s["transaction_id"] for s in rescreen.active_screenings(svc.store, ["post_sale"], "5")]
    assert picked == [old["transaction_id"]]
    picked = [s["transaction_id"] for s in rescreen.active_screenings(svc.store, ["order"])]
    assert picked == [order["transaction_id"]]

    done = _rescreen_cli(database_url, "--since-list-version", "5", "--stage", "post_sale")
    assert "1 examined" in done.stdout and old["transaction_id"] in done.stdout
    assert new["transaction_id"] not in done.stdout
    done = _rescreen_cli(database_url, "--stage", "order", "--store-unchanged")
    assert "1 examined, 1 new screenings" in done.stdout
    assert _rescreen_cli(database_url, "--stage", "bogus").returncode == 2


def test_many_deals_are_read_a_batch_at_a_time_in_order(app_config, monkeypatch):
    from hrdd import rescreen
    svc = _app(app_config).extensions["hrdd"]
    stored = [svc.screen_and_store(_india(f"B-{n}"))[0]["transaction_id"] for n in range(7)]
    monkeypatch.setattr(rescreen, "BATCH", 3)
    assert [s["transaction_id"] for s in rescreen.active_screenings(svc.store, ["post_sale"])] == stored
    assert rescreen.rescreen(svc, stages=["post_sale"]).examined == 7
    svc.store.engine.dispose()
