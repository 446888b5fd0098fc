"""The audit log: every reviewer action is chained, and `hrdd audit verify` catches tampering."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from hrdd import audit
from hrdd.audit import audit_log
from tests.workspace_helpers import fixture, login, make_user, screen

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(database_url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HRDD_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-c", "from hrdd.cli import main; main()", *args], input=stdin,
                          capture_output=True, text=True, env=env, timeout=120, cwd=ROOT)


@pytest.fixture
def store(app):
    return app.extensions["hrdd"].store


def _record_some(store, count=5):
    with store.begin() as conn:
        for i in range(count):
            audit.record(conn, "user:alice", "test.action", f"thing-{i}", {"n": i, "text": "ünïcode"})


def test_entries_are_chained_and_verify_passes(store):
    _record_some(store)
    with store.engine.connect() as conn:
        result = audit.verify(conn)
        rows = conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)).all()
    assert result.ok, result.problems
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    for prev, row in zip(rows, rows[1:], strict=False):
        assert row.prev_hash == prev.hash
    assert result.head_hash == rows[-1].hash


def test_verify_detects_an_edited_entry(store):
    _record_some(store)
    with store.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.subject == "thing-2")
                     .values(details=json.dumps({"n": 99})))
        seq = conn.execute(sa.select(audit_log.c.seq).where(audit_log.c.subject == "thing-2")).scalar_one()
    with store.engine.connect() as conn:
        result = audit.verify(conn)
    assert not result.ok
    assert any(f"entry {seq}: content does not match" in p for p in result.problems)


def test_verify_detects_a_removed_entry_in_the_middle_and_at_the_end(store):
    _record_some(store)
    with store.begin() as conn:
        middle = conn.execute(sa.select(audit_log.c.seq).where(audit_log.c.subject == "thing-1")).scalar_one()
        conn.execute(audit_log.delete().where(audit_log.c.seq == middle))
    with store.engine.connect() as conn:
        problems = audit.verify(conn).problems
    assert any(f"entry {middle} is missing" in p for p in problems)
    with store.begin() as conn:
        conn.execute(audit_log.insert().values(seq=middle, at="x", actor="x", action="x", subject="x",
                                               details="{}", prev_hash="0" * 64, hash="0" * 64))
        last = conn.execute(sa.select(sa.func.max(audit_log.c.seq))).scalar_one()
        conn.execute(audit_log.delete().where(audit_log.c.seq == last))
    with store.engine.connect() as conn:
        problems = audit.verify(conn).problems
    assert any("entries were removed from the end" in p for p in problems)


def test_hrdd_audit_verify_command_exit_codes(app, database_url):
    store = app.extensions["hrdd"].store
    _record_some(store, 3)
    ok = _cli(database_url, "audit", "verify")
    assert ok.returncode == 0, ok.stderr
    assert "audit log intact" in ok.stdout
    with store.begin() as conn:
        conn.execute(audit_log.update().where(audit_log.c.subject == "thing-1").values(actor="user:mallory"))
    bad = _cli(database_url, "audit", "verify")
    assert bad.returncode == 1
    assert "TAMPERED" in bad.stderr and "edited" in bad.stderr


def test_reviewer_actions_and_configuration_are_recorded(app, client, auth_headers):
    make_user(app)
    assert login(client).status_code == 302
    result = screen(client, auth_headers("crm"), fixture("transaction_egypt_biometric.json"))
    case_id = client.get("/v1/cases", headers=auth_headers("reviewer")).get_json()["cases"][0]["id"]
    r = client.post(f"/v1/cases/{case_id}/decision", headers=auth_headers("reviewer"),
                    json={"decision": "decline", "rationale": "End-user's record of surveilling protesters"})
    assert r.status_code == 201
    with app.extensions["hrdd"].store.engine.connect() as conn:
        actions = [e["action"] for e in audit.entries(conn, limit=100)]
        decision = audit.entries(conn, subject=case_id)
    assert "config.change" in actions and "user.create" in actions and "case.open" in actions
    entry = next(e for e in decision if e["action"] == "case.decision")
    assert entry["actor"] == "key:test-reviewer"
    assert entry["details"]["outcome"] == "decline"
    assert entry["details"]["transaction_id"] == result["transaction_id"]


@pytest.mark.store
def test_a_new_policy_file_is_recorded_as_a_configuration_change(app_config, tmp_path):
    from server import create_app
    first = create_app(app_config)
    first.extensions["hrdd"].store.engine.dispose()
    policy = tmp_path / "policy.yaml"
    original = open(first.config["HRDD_POLICY_FILE"], encoding="utf-8").read()
    policy.write_text(original.replace("small_cell_threshold: 5", "small_cell_threshold: 10"), encoding="utf-8")
    second = create_app({**app_config, "HRDD_POLICY_FILE": str(policy)})
    with second.extensions["hrdd"].store.engine.connect() as conn:
        changes = [e for e in audit.entries(conn) if e["action"] == "config.change"]
    second.extensions["hrdd"].store.engine.dispose()
    assert len(changes) == 2
    assert "policy_sha256" in changes[0]["details"]["changed"]
    assert changes[0]["details"]["now"]["policy_file"] == str(policy)


def _entries(app, action: str) -> list[dict]:
    with app.extensions["hrdd"].store.engine.connect() as conn:
        return [e for e in audit.entries(conn, limit=1000) if e["action"] == action]


def _intact(app) -> None:
    with app.extensions["hrdd"].store.engine.connect() as conn:
        result = audit.verify(conn)
    assert result.ok, result.problems


def test_a_checklist_upload_is_an_audit_entry(app, client, auth_headers):
    from tests.test_checklists import XLSX, download, fill, upload
    quote = screen(client, auth_headers("crm"), fixture("transaction_egypt_biometric.json"))
    data = download(client, auth_headers, quote["id"])
    assert upload(client, auth_headers, quote["id"], data[:100], XLSX).status_code >= 400
    assert _entries(app, "checklist.upload") == []  # a refused upload changed nothing
    response = upload(client, auth_headers, quote["id"], fill(data, {"past_misuse": "Yes"}), XLSX)
    assert response.status_code == 201, response.get_json()
    uploaded = response.get_json()
    [entry] = _entries(app, "checklist.upload")
    assert entry["actor"] == "key:test-export" and entry["subject"] == uploaded["checklist_upload"]["id"]
    details = entry["details"]
    assert (details["transaction_id"], details["screening_id"], details["new_screening_id"]) == (
        quote["transaction_id"], quote["id"], uploaded["id"])
    assert details["template"].startswith("state-dept-2020 ") and details["answers"]["past_misuse"] == "yes"
    assert details["changed"] == {"past_misuse": {"from": "unknown", "to": "yes"}}
    assert details["decision"] == {"from": "escalate", "to": "do_not_proceed"}
    assert details["engine_gate"] == {"from": "hold", "to": "block"} and len(details["sha256"]) == 64
    _intact(app)


def test_a_rider_execution_is_an_audit_entry(app, client, auth_headers):
    from tests.test_order_gate import BERGEN, executed
    from tests.test_order_gate import screen as screen_at
    screen_at(client, auth_headers("crm"), BERGEN, "quote")
    order = screen_at(client, auth_headers("crm"), BERGEN, "order")
    r = executed(client, auth_headers("contracts"), order["transaction_id"], document_ref="DocuSign 5f1c-2b")
    assert r.status_code == 201, r.json
    [entry] = _entries(app, "rider.executed")
    assert entry["actor"] == "key:test-contracts" and entry["subject"] == r.json["id"]
    assert entry["details"]["transaction_id"] == order["transaction_id"]
    assert entry["details"]["screening_id"] == order["id"]
    assert entry["details"]["executed_by"] == "Ingrid Berg (contracts)"
    assert entry["details"]["document_ref"] == "DocuSign 5f1c-2b" and entry["details"]["executed_at"].endswith("Z")
    _intact(app)


@pytest.mark.store
def test_api_keys_and_list_loads_from_the_command_line_are_audit_entries(app, database_url):
    created = _cli(database_url, "keys", "create", "Salesforce production", "--role", "crm")
    assert created.returncode == 0, created.stderr
    key_id, plaintext = created.stdout.split()[2], created.stdout.strip().splitlines()[-1]
    assert _cli(database_url, "keys", "revoke", key_id).returncode == 0
    loaded = _cli(database_url, "lists", "load", os.path.join(ROOT, "tests", "fixtures", "parties", "own_list.csv"),
                  "--name", "own-list")
    assert loaded.returncode == 0, loaded.stderr
    [create] = _entries(app, "api_key.create")
    [revoke] = _entries(app, "api_key.revoke")
    assert create["subject"] == revoke["subject"] == key_id and create["actor"].startswith("cli:")
    assert create["details"] == revoke["details"] == {"name": "Salesforce production", "role": "crm"}
    [load] = [e for e in _entries(app, "party_list.load") if e["subject"] == "party-list:own-list"]
    assert load["actor"].startswith("cli:") and load["details"]["entries"] > 0
    assert len(load["details"]["sha256"]) == 64 and load["details"]["supersedes_version"] is None
    with app.extensions["hrdd"].store.engine.connect() as conn:
        everything = json.dumps(audit.entries(conn, limit=1000))
    assert plaintext not in everything and plaintext[5:20] not in everything  # never the key itself
    assert _cli(database_url, "audit", "verify").returncode == 0


@pytest.mark.store
def test_a_changed_clause_library_is_recorded_at_start_up(app_config, tmp_path):
    import shutil

    from server import create_app
    clauses = tmp_path / "clauses"
    shutil.copytree(os.path.join(ROOT, "clauses"), clauses)
    config = {**app_config, "HRDD_CLAUSES_DIR": str(clauses)}
    create_app(config).extensions["hrdd"].store.engine.dispose()
    edited = clauses / "cut-off.md"
    edited.write_text(edited.read_text(encoding="utf-8") + "\nA lawyer's added sentence.\n", encoding="utf-8")
    again = create_app(config)
    with again.extensions["hrdd"].store.engine.connect() as conn:
        changes = [e for e in audit.entries(conn) if e["action"] == "config.change"]
        assert audit.verify(conn).ok
    again.extensions["hrdd"].store.engine.dispose()
    assert len(changes) == 2 and changes[0]["details"]["changed"] == ["clauses"]
    assert changes[0]["details"]["files"] == {"clauses": {"added": [], "removed": [], "edited": ["cut-off.md"]}}


@pytest.mark.store
def test_a_changed_crm_field_map_is_recorded_at_start_up_without_any_secret(app_config):
    # Mapping Salesforce's "Closed Won" to the quote stage would skip the order gate: an auditor must see it.
    from server import create_app

    adapters = {"adapters": {"salesforce": {"organization_ids": ["00D5e000000KQ2e"], "token": "sf-token-secret-1"}},
                "writeback": {"netsuite": {"url": "https://1234.restlets.api.netsuite.com/r?script=1&h=sig-in-url",
                                           "signing_secret": "wb-secret-1"}}}
    create_app({**app_config, "HRDD_ADAPTERS": adapters}).extensions["hrdd"].store.engine.dispose()
    changed = {**adapters, "adapters": {"salesforce": {
        **adapters["adapters"]["salesforce"], "token": "sf-token-secret-2",
        "field_maps": {"Opportunity": {"stage": {"values": {"Closed Won": "quote"}}}}}}}
    again = create_app({**app_config, "HRDD_ADAPTERS": changed})
    with again.extensions["hrdd"].store.engine.connect() as conn:
        changes = [e for e in audit.entries(conn) if e["action"] == "config.change"]
        assert audit.verify(conn).ok
    again.extensions["hrdd"].store.engine.dispose()
    assert len(changes) == 2 and changes[0]["details"]["changed"] == ["adapters"]
    now = changes[0]["details"]["now"]["adapters"]
    assert now["adapters"]["salesforce"]["field_maps"]["Opportunity"]["stage"]["values"] == {"Closed Won": "quote"}
    assert now["adapters"]["salesforce"]["token"] == "(set)"
    recorded = json.dumps([c["details"] for c in changes])
    for secret in ("sf-token-secret-1", "sf-token-secret-2", "wb-secret-1", "sig-in-url"):
        assert secret not in recorded
