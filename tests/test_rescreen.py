"""Re-screening screens a changed deal once, with the answers on record the stored screening uses."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from hrdd.hookspecs import hookimpl
from hrdd.tables import screenings
from tests.test_checklists import XLSX, download, fill, upload
from tests.workspace_helpers import case_of


class EngineRuns:
    """A check plugin that counts the engine's screenings (not its tailoring re-runs), per thread."""

    def __init__(self):
        self.by_thread: dict[int, int] = {}
        self.after_first: list = []  # callables run once, right after this thread's first screening

    @property
    def here(self) -> int:
        """Screenings run in the calling thread."""
        return self.by_thread.get(threading.get_ident(), 0)

    @property
    def total(self) -> int:
        """Screenings run in every thread."""
        return sum(self.by_thread.values())

    @hookimpl(trylast=True)
    def hrdd_check(self, transaction, context):
        if "test.counted" not in context.cache:  # one context per screening, shared by its tailoring re-runs
            context.cache["test.counted"] = True
            self.by_thread[threading.get_ident()] = self.here + 1
        return None

    @hookimpl
    def hrdd_versions(self, context):
        # Called once per screening, after the checks: the point "the deal has been screened".
        if self.after_first:
            self.after_first.pop()()
        return None


@pytest.fixture
def runs(app):
    """The app's engine screenings, counted (register after the stored deals are set up to count only the run)."""
    counter = EngineRuns()
    app.extensions["hrdd"].pm.register(counter)
    yield counter
    app.extensions["hrdd"].pm.unregister(counter)


def screen(client, auth_headers, body) -> dict:
    response = client.post("/v1/screenings", json=body, headers=auth_headers("crm"))
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def made_stale(app, screening_id: str) -> None:
    """Record a screening as made by an older ruleset, so the next re-screening differs from it."""
    services = app.extensions["hrdd"]
    with services.store.begin() as conn:
        result = conn.execute(sa.select(screenings.c.result).where(screenings.c.id == screening_id)).scalar_one()
        conn.execute(screenings.update().where(screenings.c.id == screening_id)
                     .values(result={**result, "versions": {**result["versions"], "ruleset": "2000.1"}}))


def rescreened(app, transaction_id: str) -> list[dict]:
    """The re-screenings stored for a transaction."""
    with app.extensions["hrdd"].store.engine.connect() as conn:
        return list(conn.execute(sa.select(screenings.c.result).where(
            screenings.c.transaction_id == transaction_id, screenings.c.source == "rescreen")).scalars())


@pytest.fixture
def post_sale(client, auth_headers, transaction):
    """The DESIGN example stored at post-sale (escalated)."""
    transaction["stage"] = "post_sale"
    stored = screen(client, auth_headers, transaction)
    assert stored["decision"] == "escalate"
    return stored


@pytest.fixture
def with_yes(client, auth_headers, transaction, post_sale):
    """The post-sale deal's checklist uploaded with past_misuse = Yes, then the CRM's request (unknown) again."""
    filled = fill(download(client, auth_headers, post_sale["id"]), {"past_misuse": "Yes"})
    assert upload(client, auth_headers, post_sale["id"], filled, XLSX).status_code == 201
    crm = screen(client, auth_headers, transaction)
    assert transaction["answers"]["past_misuse"] == "unknown"
    assert crm["decision"] == "do_not_proceed" and crm["answers_on_record"]["past_misuse"]["used"] is True
    return crm


def test_a_changed_deal_is_validated_and_screened_once(app, post_sale, runs, monkeypatch):
    from hrdd.rescreen import rescreen
    services = app.extensions["hrdd"]
    made_stale(app, post_sale["id"])
    validations = []
    load = services.schema.load
    monkeypatch.setattr(services.schema, "load", lambda *a, **k: validations.append(1) or load(*a, **k))
    result = rescreen(services, stages=("post_sale",))
    assert (result.examined, result.stored, result.replayed, result.errors) == (1, 1, 0, [])
    assert runs.total == 1 and len(validations) == 1
    assert [c.summary for c in result.changes] == ["versions changed: ruleset 2000.1 -> "
                                                   + result.changes[0].current["versions"]["ruleset"]]
    [stored] = rescreened(app, post_sale["transaction_id"])
    assert stored["id"] == result.changes[0].current["id"] and stored["decision"] == "escalate"
    # Still escalated: the deal's open case is told what changed.
    notes = _notes(app, case_of(app, post_sale["transaction_id"])["id"])
    told = f"Screening {stored['id']} (post_sale): escalate. Post-sale re-screening: versions changed: ruleset 2000.1 -> "
    assert any(n.startswith(told) for n in notes), notes


def test_the_comparison_uses_the_answers_on_record_and_so_does_the_one_screening_stored(app, with_yes, runs):
    from hrdd.rescreen import rescreen
    services = app.extensions["hrdd"]
    # The stored request says "unknown"; compared with the uploaded Yes laid under it, nothing changed.
    result = rescreen(services, stages=("post_sale",))
    assert (result.examined, result.stored, result.changes, result.errors) == (1, 0, [], [])
    assert runs.total == 1
    # Once something else changed, the re-screening stored carries the Yes, screened once (not once
    # without the answers on record and again with them).
    made_stale(app, with_yes["id"])
    result = rescreen(services, stages=("post_sale",))
    assert (result.stored, result.errors, runs.total) == (1, [], 2)
    [stored] = rescreened(app, with_yes["transaction_id"])
    assert stored["decision"] == "do_not_proceed" and stored["transaction"]["answers"]["past_misuse"] == "yes"
    assert stored["answers_on_record"] == with_yes["answers_on_record"]
    assert services.store.get_screening_request(stored["id"])["answers"]["past_misuse"] == "unknown"


def test_an_upload_landing_after_the_comparison_is_screened_in_under_the_lock(app, client, auth_headers,
                                                                             post_sale, runs):
    from hrdd.rescreen import rescreen
    services = app.extensions["hrdd"]
    made_stale(app, post_sale["id"])
    filled = fill(download(client, auth_headers, post_sale["id"]), {"past_misuse": "Yes"})
    uploads = []

    def upload_from_elsewhere():  # a compliance officer's upload commits between comparing and storing
        thread = threading.Thread(target=lambda: uploads.append(upload(
            app.test_client(), auth_headers, post_sale["id"], filled, XLSX)))
        thread.start()
        thread.join(60)

    runs.after_first.append(upload_from_elsewhere)
    result = rescreen(services, stages=("post_sale",))
    assert uploads[0].status_code == 201 and uploads[0].get_json()["decision"] == "do_not_proceed"
    assert (result.stored, result.errors) == (1, [])
    # Screened for the comparison, then once more under the deal's lock with the upload's Yes.
    assert runs.here == 2
    [stored] = rescreened(app, post_sale["transaction_id"])
    assert stored["decision"] == "do_not_proceed" and stored["answers_on_record"]["past_misuse"]["used"] is True
    assert services.store.latest_screening(post_sale["transaction_id"])["id"] == stored["id"]
    # What changed is told from the screening stored, not the one compared.
    [change] = result.changes
    assert change.current["id"] == stored["id"] and change.decision_changed
    case = case_of(app, post_sale["transaction_id"])
    notes = _notes(app, case["id"])
    assert any(stored["id"] in n and "decision escalate -> do_not_proceed" in n for n in notes), notes


def _notes(app, case_id: str) -> list[str]:
    from hrdd.workspace.tables import case_notes
    with app.extensions["hrdd"].store.engine.connect() as conn:
        return list(conn.execute(sa.select(case_notes.c.text).where(case_notes.c.case_id == case_id)).scalars())


def test_a_run_overtaken_by_another_replays_its_rescreening(app, post_sale, runs):
    from hrdd.rescreen import rescreen
    services = app.extensions["hrdd"]
    made_stale(app, post_sale["id"])
    other = []

    def another_run():  # a second machine's run stores this deal's re-screening after ours compared it
        thread = threading.Thread(target=lambda: other.append(rescreen(services, stages=("post_sale",))))
        thread.start()
        thread.join(60)

    runs.after_first.append(another_run)
    ours = rescreen(services, stages=("post_sale",))
    assert (other[0].stored, other[0].replayed) == (1, 0)
    assert (ours.examined, ours.stored, ours.replayed, ours.changes, ours.errors) == (1, 0, 1, [], [])
    assert len(rescreened(app, post_sale["transaction_id"])) == 1
    assert runs.total == 2  # each run screened the deal once; the replay screened nothing


def test_a_screening_is_stored_only_as_it_was_screened(app, transaction):
    services = app.extensions["hrdd"]
    screened = services.prescreen(transaction, "rescreen", stored_request=True)
    with pytest.raises(ValueError, match="stored as"):
        services.screen_and_store(transaction, source="api", screened=screened)
    assert services.store.count_screenings() == 0


def test_a_late_quote_does_not_take_a_deal_out_of_post_sale_monitoring(app, transaction):
    from hrdd.rescreen import active_screenings

    services = app.extensions["hrdd"]
    with app.test_request_context():
        monitored, _ = services.screen_and_store({**transaction, "stage": "post_sale"})
        late, _ = services.screen_and_store({**transaction, "stage": "quote", "intended_use": "retried quote"})
    assert late["superseded_by"] == monitored["id"]
    assert [s["id"] for s in active_screenings(services.store, ("post_sale",))] == [monitored["id"]]


def test_a_deal_at_order_is_monitored_by_default_and_its_rescreening_keeps_the_rider_hold(
        app, client, auth_headers, transaction):
    from hrdd.rescreen import rescreen
    from tests.conftest import load_fixture

    services = app.extensions["hrdd"]
    sold = screen(client, auth_headers, {**load_fixture("screening_safeguards_co.json")["transaction"],
                                         "stage": "order"})
    assert sold["gate"] == "hold"  # the rider is not recorded as executed
    after_sale = screen(client, auth_headers, {**transaction, "stage": "post_sale"})
    made_stale(app, sold["id"])
    result = rescreen(services)
    assert (result.examined, result.stored, result.errors) == (2, 1, [])
    [stored] = rescreened(app, sold["transaction_id"])
    assert stored["stage"] == "order" and rescreened(app, after_sale["transaction_id"]) == []
    gate, reasons = services.gate_of(sold["transaction_id"], stored)
    assert gate == "hold" and reasons == [f"the contract rider required by screening {stored['id']} is not "
                                          f"recorded as executed (POST /v1/transactions/{sold['transaction_id']}"
                                          "/rider-executed)"]


def test_a_post_sale_rescreening_is_held_for_the_rider_as_the_order_was(app, client, auth_headers):
    from hrdd.rescreen import rescreen
    from tests.conftest import load_fixture

    services = app.extensions["hrdd"]
    deal = load_fixture("screening_safeguards_co.json")["transaction"]
    assert screen(client, auth_headers, {**deal, "stage": "order"})["gate"] == "hold"
    monitored = screen(client, auth_headers, {**deal, "stage": "post_sale"})
    made_stale(app, monitored["id"])
    assert rescreen(services, stages=("post_sale",)).stored == 1
    current = client.get(f"/v1/transactions/{monitored['transaction_id']}", headers=auth_headers("crm")).get_json()
    assert current["screenings"][0]["id"] != monitored["id"] and current["gate"] == "hold"
    assert "not recorded as executed" in current["hold_reasons"][0]


def test_after_a_data_update_a_dry_run_lists_the_changed_deals_then_the_run_records_them(app_config, tmp_path):
    import shutil

    from click.testing import CliRunner

    from hrdd import audit
    from hrdd.cli import cli
    from hrdd.config import DEFAULT_DATA_DIR
    from hrdd.plugins import make_plugin_manager
    from server import create_app
    from tests.conftest import load_fixture
    from tests.test_data_update import add_fiw_2026
    make_plugin_manager(entry_points=False).hook.hrdd_register_commands(cli=cli)  # as `hrdd` (main) does
    old, new = tmp_path / "data-2025", tmp_path / "data-2026"
    shutil.copytree(DEFAULT_DATA_DIR, old)
    shutil.copytree(DEFAULT_DATA_DIR, new)
    add_fiw_2026(new)  # Georgia: Partly Free -> Not Free
    deal = load_fixture("transaction_egypt_biometric.json")
    deal["end_user"].update({"country": "GE", "type": "private", "sector": "commercial", "name": "Tbilisi Mall LLC"})
    deal.update({"deployment_countries": ["GE"], "parties": [], "stage": "order"})
    app = create_app({**app_config, "HRDD_DATA_DIR": str(old)})
    _, key = app.extensions["hrdd"].store.create_api_key("crm", "crm")
    stored = app.test_client().post("/v1/screenings", json=deal, headers={"Authorization": f"Bearer {key}"}).get_json()
    assert stored["decision"] == "proceed_with_safeguards" and stored["versions"]["data"]["fiw"] == "2025"
    store = app.extensions["hrdd"].store

    def recorded():
        with store.engine.connect() as conn:
            return (store.count_screenings(), [e for e in audit.entries(conn) if e["action"] == "rescreen.run"])

    env = {"HRDD_DATABASE_URL": app_config["HRDD_DATABASE_URL"], "HRDD_DATA_DIR": str(new)}
    before = recorded()
    dry = CliRunner().invoke(cli, ["rescreen", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    txn = stored["transaction_id"]
    assert f"{txn}: decision proceed_with_safeguards -> escalate; new red flags RF-1.2" in dry.output
    assert "fiw 2025 -> 2026" in dry.output
    assert "1 with a changed decision (each would open a case)" in dry.output and "nothing was stored" in dry.output
    assert recorded() == before
    run = CliRunner().invoke(cli, ["rescreen"], env=env)
    assert run.exit_code == 0 and "1 changed decisions (each opened a case)" in run.output, run.output
    count, runs = recorded()
    assert count == before[0] + 1 and len(runs) == 1
    details = runs[0]["details"]
    assert details["changed_transactions"] == [txn] and details["versions"]["data"]["fiw"] == "2026"
    store.close()
