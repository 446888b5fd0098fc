"""The plugin host: built-ins registered like third-party plugins; every hook documented and implemented."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from hrdd import hookspecs
from hrdd.plugins import make_plugin_manager

PLUGIN_DIR = Path(__file__).parent / "fixtures" / "thirdparty_plugins"
RECORDER_DIR = Path(__file__).parent / "fixtures" / "recorder_plugin"
ROOT = Path(__file__).resolve().parent.parent


def hook_names():
    return [name for name, fn in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("hrdd_")]


def test_every_hook_is_documented_in_hookspecs_and_docs():
    docs = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    for name in hook_names():
        assert (getattr(hookspecs, name).__doc__ or "").strip(), f"{name} has no docstring"
        assert f"`{name}" in docs, f"{name} is not described in docs/plugins.md"


def test_every_hook_has_a_builtin_implementation_and_is_exercised():
    builtin = make_plugin_manager(entry_points=False)
    recorder = make_plugin_manager(RECORDER_DIR, entry_points=False).get_plugin("recorder")
    for name in hook_names():
        assert getattr(builtin.hook, name).get_hookimpls(), f"no built-in plugin implements {name}"
        # test_core_calls_every_hook drives the recorder plugin through every hook it implements.
        assert hasattr(recorder, name), f"the recorder test plugin does not exercise {name}"


def test_third_party_plugin_adds_a_red_flag_without_touching_the_core(app_config, transaction):
    from server import create_app
    app = create_app({**app_config, "HRDD_PLUGINS_DIR": str(PLUGIN_DIR)})
    key = app.extensions["hrdd"].store.create_api_key("crm", "crm")[1]
    transaction["intended_use"] = "Matching against scraped social media photos"
    r = app.test_client().post("/v1/screenings", json=transaction, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 201
    flag = next(f for f in r.json["red_flags"] if f["id"] == "ORG-1")
    assert flag["raised_by"] == "facial_dataset_flag" and flag["severity"] == "high"
    assert r.json["versions"]["data"]["acme_policy"] == "HR-7 v3"
    names = {p["name"] for p in app.test_client().get("/v1/plugins").json["plugins"]}
    assert "facial_dataset_flag" in names


def test_builtins_are_plugins_and_can_be_unregistered(engine_services, transaction):
    from hrdd.engine import Engine
    from hrdd.model import Transaction
    pm = make_plugin_manager()
    pm.unregister(name="step2_end_user")
    engine = Engine(pm, engine_services.reference, engine_services.policy)
    flags = {f.id for f in engine.screen(Transaction.from_dict(transaction)).red_flags}
    assert "RF-2.1" not in flags and "RF-1.2" in flags


def test_entry_point_plugins_are_loaded(tmp_path, monkeypatch):
    dist = tmp_path / "acme_hrdd-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-hrdd\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[hrdd]\nacme = acme_hrdd_plugin\n")
    (tmp_path / "acme_hrdd_plugin.py").write_text((PLUGIN_DIR / "facial_dataset_flag.py").read_text())
    monkeypatch.syspath_prepend(str(tmp_path))
    pm = make_plugin_manager()
    assert pm.get_plugin("acme") is not None
    assert pm.get_plugin("acme").__name__ == "acme_hrdd_plugin"


def test_broken_plugin_refuses_start_up(tmp_path):
    (tmp_path / "bad.py").write_text(
        "from hrdd.hookspecs import hookimpl\n@hookimpl\ndef hrdd_not_a_hook(x):\n    pass\n")
    with pytest.raises(Exception, match="hrdd_not_a_hook"):
        make_plugin_manager(tmp_path)


def test_startup_hook_can_refuse_broken_data(app_config, tmp_path):
    (tmp_path / "guard.py").write_text(
        "from hrdd.hookspecs import hookimpl\n@hookimpl\ndef hrdd_startup(app):\n"
        "    raise ValueError('clauses/cut-off.md: front matter is not valid YAML')\n")
    from server import create_app
    with pytest.raises(ValueError, match="cut-off.md"):
        create_app({**app_config, "HRDD_PLUGINS_DIR": str(tmp_path)})


def test_core_calls_every_hook(app_config, transaction, monkeypatch):
    """hrdd_check, hrdd_safeguards, hrdd_safeguard_catalogue, hrdd_answer_ids, hrdd_answers_on_record, hrdd_versions, hrdd_screening_stored,
    hrdd_gate_factors, hrdd_gate_changed, hrdd_render_document, hrdd_webhook_adapter, hrdd_register_routes, hrdd_startup,
    hrdd_data_sources, hrdd_register_commands and hrdd_warm_up are each called where hookspecs.py says."""
    import sys

    from click.testing import CliRunner

    from hrdd.cli import cli
    from server import create_app
    app = create_app({**app_config, "HRDD_PLUGINS_DIR": str(RECORDER_DIR)})
    calls = sys.modules["hrdd_recorder_calls"].CALLS
    calls.clear()
    app = create_app({**app_config, "HRDD_PLUGINS_DIR": str(RECORDER_DIR)})
    seen = lambda: {c[0] for c in calls}  # noqa: E731
    assert {"hrdd_register_routes", "hrdd_startup"} <= seen()
    client = app.test_client()
    key = app.extensions["hrdd"].store.create_api_key("t", "admin")[1]
    h = {"Authorization": f"Bearer {key}"}
    quote = client.post("/v1/screenings", json={**transaction, "answers": {"recorder_checked": "yes"}},
                        headers=h).json
    assert {"recorder-audit"} <= {s["id"] for s in quote["safeguards"]}
    assert quote["transaction"]["answers"] == {"recorder_checked": "yes"}  # the plugin's own answer id
    assert quote["versions"]["data"]["recorder"] == "1"
    stored = [c for c in calls if c[0] == "hrdd_screening_stored"]
    assert stored[-1][1] == {"id": quote["id"], "in_transaction": True}
    # A reviewer's approval moves the quote's gate from hold to release without a new screening.
    case = client.get("/v1/cases", headers=h).json["cases"][0]
    # A safeguard of the recorder's catalogue that the screening did not call for may be required; one
    # no plugin knows may not.
    assert client.post(f"/v1/cases/{case['id']}/decision", headers=h, json={
        "decision": "approve_with_conditions", "rationale": "Access control at ministry buildings only",
        "safeguards": ["recorder-nothing"]}).status_code == 422
    assert client.post(f"/v1/cases/{case['id']}/decision", headers=h, json={
        "decision": "approve", "rationale": "Access control at ministry buildings only",
        "safeguards": ["recorder-escrow"]}).status_code == 201
    assert [c for c in calls if c[0] == "hrdd_gate_changed"] == [("hrdd_gate_changed", {
        "transaction_id": quote["transaction_id"], "gate": "release", "previous_gate": "hold",
        "in_transaction": True})]
    transaction["stage"] = "order"
    order = client.post("/v1/screenings", json=transaction, headers=h).json
    assert order["gate"] == "hold" and "recorder: rider not executed" in order["hold_reasons"]
    # The recorder's answer on record fills the question the order request left out.
    assert order["transaction"]["answers"]["recorder_checked"] == "yes"
    assert order["answers_on_record"]["recorder_checked"]["used"] is True
    assert ("hrdd_answers_on_record", {"source": "api", "has_store": True}) in calls
    assert "answers_on_record" not in quote  # the quote answered it the same way itself
    rider = client.get(f"/v1/screenings/{quote['id']}/rider.docx", headers=h)
    assert rider.data == b"RIDER " + quote["id"].encode()
    assert client.get(f"/v1/screenings/{quote['id']}/checklist.xlsx", headers=h).status_code in (200, 404)
    assert client.post("/v1/hooks/recorder", data=b"x").status_code == 202
    assert client.post("/v1/hooks/nobody", data=b"x").status_code == 404
    assert client.get("/v1/recorder").json == {"ok": True}

    from hrdd.plugins import make_plugin_manager
    pm = make_plugin_manager(RECORDER_DIR)
    pm.hook.hrdd_register_commands(cli=cli)
    runner = CliRunner()
    env = {"HRDD_DATABASE_URL": app_config["HRDD_DATABASE_URL"], "HRDD_PLUGINS_DIR": str(RECORDER_DIR)}
    assert "hello from recorder" in runner.invoke(cli, ["recorder-hello"], env=env).output
    info = runner.invoke(cli, ["data", "info"], env=env)
    assert info.exit_code == 0 and "Recorder data" in info.output and "CC0" in info.output
    import hrdd.serving
    monkeypatch.setattr(hrdd.serving, "serve", lambda app, **kwargs: calls.append(("served", kwargs)))
    served = runner.invoke(cli, ["serve", "--port", "8999"], env=env)
    assert served.exit_code == 0, served.output
    # Warmed up once, before serving begins.
    assert [c[0] for c in calls if c[0] in ("hrdd_warm_up", "served")] == ["hrdd_warm_up", "served"]
    assert {"hrdd_check", "hrdd_safeguards", "hrdd_safeguard_catalogue", "hrdd_answer_ids", "hrdd_versions",
            "hrdd_screening_stored",
            "hrdd_gate_factors", "hrdd_gate_changed", "hrdd_answers_on_record",
            "hrdd_render_document", "hrdd_webhook_adapter", "hrdd_data_sources", "hrdd_register_commands",
            "hrdd_warm_up"} <= seen()
    cli.commands.pop("recorder-hello", None)
