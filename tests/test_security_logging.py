"""No secret is ever logged: API keys, passwords, webhook secrets, tokens and signatures, sent right or wrong.

Every log record (all loggers, DEBUG and up, with tracebacks) is captured while the authentication,
adapter, enrichment and write-back flows run, and searched for each secret.
"""

from __future__ import annotations

import base64
import logging
import time

import pytest
import sqlalchemy as sa

from hrdd.adapters import signatures
from tests.adapter_support import FakeServer, fixture_bytes
from tests.workspace_helpers import csrf_from, make_user

pytestmark = pytest.mark.api
SECRETS = {
    "generic": "gen-SECRET-4a1f9c", "hubspot": "hub-SECRET-77b2e0", "dynamics": "dyn-SECRET-1c9d3e",
    "sap_token": "sap-SECRET-5e8a21", "sap_password": "sap-PASSWORD-0b7c44", "odoo": "odoo-SECRET-93f0aa",
    "sf_token": "sf-SECRET-2d6b11", "crm_token": "crm-ACCESS-TOKEN-6f1e2d", "password": "pw-SECRET-horse-battery",
}
WRONG = "wrong-SENT-value-8c3b5f"


@pytest.fixture
def fake_crm():
    with FakeServer({("PATCH", "/services/data/v61.0/sobjects/Opportunity/0065e00000BvRk1AAF"):
                     (401, {"error": "invalid token"})}, fail_first=0) as server:
        yield server


@pytest.fixture
def app_config(app_config, fake_crm):
    app_config["HRDD_SESSION_COOKIE_SECURE"] = "0"
    app_config["HRDD_ADAPTERS"] = {
        "adapters": {
            "generic": {"signing_secret": SECRETS["generic"]},
            "salesforce": {"organization_ids": ["00D5e000000KQ2e"], "token": SECRETS["sf_token"],
                           "instance_url": fake_crm.url, "access_token": SECRETS["crm_token"]},
            "hubspot": {"client_secret": SECRETS["hubspot"], "access_token": SECRETS["crm_token"],
                        "api_base_url": fake_crm.url},
            "dynamics": {"auth_header": "x-hrdd-key", "auth_key": SECRETS["dynamics"]},
            "sap": {"bearer_token": SECRETS["sap_token"], "basic_user": "HRDD", "basic_password": SECRETS["sap_password"],
                    "api_base_url": fake_crm.url, "odata_user": "HRDD_COMM", "odata_password": SECRETS["sap_password"]},
            "odoo": {"token": SECRETS["odoo"]}},
        "writeback": {"salesforce": {"instance_url": fake_crm.url, "access_token": SECRETS["crm_token"]}},
    }
    return app_config


def _everything_logged(records) -> str:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    return "\n".join(formatter.format(r) + repr(getattr(r, "args", "")) for r in records)


def _webhooks(client):
    stamp = str(int(time.time()))
    body = fixture_bytes("generic/transaction.json")
    for secret in (SECRETS["generic"], WRONG):
        client.post("/v1/hooks/generic", data=body, headers={
            "Content-Type": "application/json", "X-HRDD-Timestamp": stamp,
            "X-HRDD-Signature": "sha256=" + signatures.hmac_sha256_hex(secret, stamp.encode() + b"." + body)})
    workflow = fixture_bytes("hubspot/workflow_deal.json")
    ms = str(int(time.time() * 1000))
    for secret in (SECRETS["hubspot"], WRONG):
        client.post("/v1/hooks/hubspot", data=workflow, headers={
            "Content-Type": "application/json", "X-HubSpot-Request-Timestamp": ms,
            "X-HubSpot-Signature-v3": signatures.hubspot_v3(secret, "POST", "http://localhost/v1/hooks/hubspot",
                                                            workflow, ms)})
    client.post("/v1/hooks/hubspot", data=fixture_bytes("hubspot/deal_batch.json"), headers={
        "Content-Type": "application/json", "X-HubSpot-Request-Timestamp": ms,
        "X-HubSpot-Signature-v3": signatures.hubspot_v3(SECRETS["hubspot"], "POST", "http://localhost/v1/hooks/hubspot",
                                                        fixture_bytes("hubspot/deal_batch.json"), ms)})
    for key in (SECRETS["dynamics"], WRONG):
        client.post("/v1/hooks/dynamics", data=fixture_bytes("dynamics/opportunity_create.json"),
                    headers={"Content-Type": "application/json", "x-hrdd-key": key})
    event = fixture_bytes("sap/salesorder_created.json")
    for auth in (f"Bearer {SECRETS['sap_token']}", f"Bearer {WRONG}",
                 "Basic " + base64.b64encode(f"HRDD:{SECRETS['sap_password']}".encode()).decode(),
                 "Basic " + base64.b64encode(f"HRDD:{WRONG}".encode()).decode()):
        client.post("/v1/hooks/sap", data=event,
                    headers={"Content-Type": "application/cloudevents+json", "Authorization": auth})
    for token in (SECRETS["odoo"], WRONG):
        client.post(f"/v1/hooks/odoo/{token}", data=fixture_bytes("odoo/sale_order.json"),
                    content_type="application/json")
    for token in (SECRETS["sf_token"], WRONG):
        client.post(f"/v1/hooks/salesforce?token={token}", data=fixture_bytes("salesforce/opportunity_batch.xml"),
                    headers={"Content-Type": "text/xml"})


def test_no_secret_reaches_the_logs(app, client, auth_headers, caplog):
    caplog.set_level(logging.DEBUG)
    key = auth_headers("crm")["Authorization"].split(" ", 1)[1]
    client.get("/v1/whoami", headers={"Authorization": f"Bearer {key}"})
    client.get("/v1/cases", headers={"Authorization": f"Bearer {key}"})  # wrong role
    client.get("/v1/whoami", headers={"Authorization": f"Bearer {WRONG}"})
    _webhooks(client)
    # The worker: HubSpot enrichment and SAP OData calls, then write-back to a CRM that refuses the token.
    from hrdd_plugins.adapter_runtime import run_once

    with app.app_context():
        run_once(app)
    make_user(app, "logger-test", "reviewer", SECRETS["password"])
    for password in (SECRETS["password"], WRONG):
        browser = app.test_client()
        browser.post("/workspace/login", data={"name": "logger-test", "password": password,
                                               "csrf_token": csrf_from(browser, "/workspace/login")})
    logged = _everything_logged(caplog.records)
    assert caplog.records, "the flows above log (rejections, holds, write-back failures)"
    assert "webhook rejected" in logged
    for secret in [key, key[5:], WRONG, *SECRETS.values()]:
        assert secret not in logged, f"{secret!r} appeared in the logs"


def test_database_errors_never_carry_the_values_bound_to_them(app):
    engine = app.extensions["hrdd"].store.engine
    with pytest.raises(sa.exc.SQLAlchemyError) as raised, engine.connect() as conn:
        conn.execute(sa.text("SELECT * FROM no_such_table WHERE secret = :s"), {"s": SECRETS["password"]})
    assert SECRETS["password"] not in str(raised.value)
