"""Adapter configuration: environment variables, a YAML file with ${VAR} secrets, and secrets kept out of logs."""

from __future__ import annotations

import logging

import pytest

from tests.adapter_support import fixture_bytes


def test_environment_variables_configure_an_adapter(app_config):
    from server import create_app

    app_config.update(HRDD_ADAPTER_ODOO_TOKEN="from-env-token", HRDD_ADAPTER_SALESFORCE_ORGANIZATION_IDS="00D1, 00D2",
                      HRDD_ADAPTER_SALESFORCE_TOKEN="sf-env-token")
    app = create_app(app_config)
    from hrdd.adapters.config import settings_for

    settings = settings_for(app)["adapters"]
    assert settings["salesforce"]["organization_ids"] == ["00D1", "00D2"]
    r = app.test_client().post("/v1/hooks/odoo/from-env-token", data=fixture_bytes("odoo/sale_order.json"),
                               headers={"Content-Type": "application/json"})
    assert r.status_code == 202


def test_yaml_file_takes_secrets_from_the_environment(app_config, tmp_path, monkeypatch):
    from hrdd.adapters.config import load_settings

    monkeypatch.setenv("HUBSPOT_APP_SECRET", "hs-secret-1")
    path = tmp_path / "adapters.yaml"
    path.write_text("adapters:\n  hubspot:\n    client_secret: ${HUBSPOT_APP_SECRET}\n"
                    "writeback:\n  hubspot:\n    url: https://api.hubapi.com/crm/v3/objects/deals/{object_id}\n")
    settings = load_settings({"HRDD_ADAPTERS_FILE": str(path)})
    secret = settings["adapters"]["hubspot"]["client_secret"]
    assert secret.reveal() == "hs-secret-1"
    assert "hs-secret-1" not in repr(settings) and "hs-secret-1" not in f"{secret}"


@pytest.mark.parametrize("text, message", [
    ("adapters:\n  hubspot:\n    client_secret: ${NOT_SET_ANYWHERE}\n", "NOT_SET_ANYWHERE is not set"),
    ("adapters: [\n", "not valid YAML"),
    ("adaptors: {}\n", "unknown top-level section"),
])
def test_broken_configuration_refuses_to_start_naming_the_problem(app_config, tmp_path, text, message):
    from server import create_app

    path = tmp_path / "adapters.yaml"
    path.write_text(text)
    app_config["HRDD_ADAPTERS_FILE"] = str(path)
    with pytest.raises(Exception, match=message):
        create_app(app_config)


def test_unconfigured_adapter_says_so(client):
    r = client.post("/v1/hooks/hubspot", data=b"[]")
    assert r.status_code == 503 and "not configured" in r.json["message"]


def test_rejected_requests_never_log_the_secret(app_config, caplog):
    from server import create_app

    app_config["HRDD_ADAPTERS"] = {"adapters": {"odoo": {"token": "very-secret-token"}}}
    client = create_app(app_config).test_client()
    with caplog.at_level(logging.DEBUG):
        r = client.post("/v1/hooks/odoo/guess", data=fixture_bytes("odoo/sale_order.json"))
    assert r.status_code == 401
    assert "odoo webhook rejected" in caplog.text and "very-secret-token" not in caplog.text


def test_shared_secrets_rotate_with_the_old_and_new_one_both_accepted(app_config):
    # Salesforce, Odoo and Dynamics each take a list (tokens, auth_keys): the new secret goes in first,
    # senders change over, and the old one is removed; nothing is refused in between.
    from server import create_app

    app_config.update(HRDD_ADAPTER_SALESFORCE_ORGANIZATION_IDS="00D5e000000KQ2e",
                      HRDD_ADAPTER_SALESFORCE_TOKENS="sf-new, sf-old", HRDD_ADAPTER_ODOO_TOKENS="odoo-new,odoo-old",
                      HRDD_ADAPTER_DYNAMICS_AUTH_HEADER="x-hrdd-key", HRDD_ADAPTER_DYNAMICS_AUTH_KEYS="dv-new,dv-old")
    client = create_app(app_config).test_client()  # no `token`: the tokens list is enough to start
    soap = fixture_bytes("salesforce/opportunity_batch.xml")
    for token, status in (("sf-old", 200), ("sf-new", 200), ("sf-other", 401)):
        r = client.post(f"/v1/hooks/salesforce?token={token}", data=soap, headers={"Content-Type": "text/xml"})
        assert r.status_code == status, token
    odoo = fixture_bytes("odoo/sale_order.json")
    for token, status in (("odoo-old", 202), ("odoo-new", 202), ("odoo-other", 401)):
        r = client.post(f"/v1/hooks/odoo/{token}", data=odoo, headers={"Content-Type": "application/json"})
        assert r.status_code == status, token
    dynamics = fixture_bytes("dynamics/opportunity_create.json")
    for key, status in (("dv-old", 202), ("dv-new", 202), ("dv-other", 401)):
        r = client.post("/v1/hooks/dynamics", data=dynamics,
                        headers={"Content-Type": "application/json", "x-hrdd-key": key})
        assert r.status_code == status, key
