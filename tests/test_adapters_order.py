"""Deliveries out of order: a CRM record's older state, arriving after a newer one, never governs the deal."""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from tests.adapter_support import (
    FakeServer,
    count_screenings,
    deliveries,
    fixture_bytes,
    fixture_json,
    outbox_rows,
)
from tests.test_adapters_hubspot import v3_headers

ORG = "00D5e000000KQ2eEAG"
SF_TOKEN = "s3cret-path-token"
SF_HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
ODOO_TOKEN = "odoo-7c1e9d0b2a5f4e3c"
DV_KEY = "dv-3f8a1c5e9b"
DV_HEADERS = {"Content-Type": "application/json", "x-hrdd-key": DV_KEY}
HUBSPOT_SECRET = "hubspot-app-secret"


@pytest.fixture
def app_config(app_config):
    app_config["HRDD_ADAPTERS"] = {"adapters": {
        "salesforce": {"organization_ids": [ORG[:15]], "token": SF_TOKEN},
        "odoo": {"token": ODOO_TOKEN},
        "dynamics": {"auth_header": "x-hrdd-key", "auth_key": DV_KEY},
        "hubspot": {"client_secret": HUBSPOT_SECRET},
    }, "writeback": {name: {"url": "http://127.0.0.1:9/{object_type}/{object_id}", "access_token": "t"}
                     for name in ("salesforce", "odoo", "dynamics", "hubspot")}}
    return app_config


def salesforce_notification(notification_id: str, modified: str | None, *, country: str = "EG") -> bytes:
    """The fixture's Egypt notification alone, under its own id, with LastModifiedDate and end-user country."""
    xml = fixture_bytes("salesforce/opportunity_batch.xml").decode()
    first = re.search(r"<Notification>.*?</Notification>", xml, re.S).group(0)
    one = first.replace("04l5e00000Gx7QzAAJ", notification_id)
    one = one.replace("<sf:HRDD_End_User_Country__c>EG</sf:HRDD_End_User_Country__c>",
                      f"<sf:HRDD_End_User_Country__c>{country}</sf:HRDD_End_User_Country__c>")
    one = one.replace("<sf:HRDD_Deployment_Countries__c>EG</sf:HRDD_Deployment_Countries__c>",
                      f"<sf:HRDD_Deployment_Countries__c>{country}</sf:HRDD_Deployment_Countries__c>")
    if modified:
        one = one.replace("<sf:Name>", f"<sf:LastModifiedDate>{modified}</sf:LastModifiedDate>\n     <sf:Name>")
    body = re.sub(r"<Notification>.*</Notification>", lambda _: one, xml, flags=re.S)
    return body.encode()


def post_salesforce(client, body: bytes):
    r = client.post(f"/v1/hooks/salesforce?token={SF_TOKEN}", data=body, headers=SF_HEADERS)
    assert r.status_code == 200 and b"<Ack>true</Ack>" in r.data, r.data
    return r


def post_odoo(client, record: dict):
    r = client.post(f"/v1/hooks/odoo/{ODOO_TOKEN}", data=json.dumps(record), headers={"Content-Type": "application/json"})
    assert r.status_code == 202, r.json
    return r.json["results"][0]


def gate_of(client, auth_headers, transaction_id: str) -> str:
    return client.get(f"/v1/transactions/{transaction_id}", headers=auth_headers("reviewer")).json["gate"]


def by_id(app, vendor: str) -> dict:
    return {d["delivery_id"]: d for d in deliveries(app, vendor)}


def test_a_salesforce_retry_of_an_older_state_is_stale_and_the_newer_screening_governs(app, client, auth_headers):
    # The deal moved from Norway to Egypt at 10:00; the 09:00 notification (Norway) failed and is retried later.
    post_salesforce(client, salesforce_notification("04l000000000002AAA", "2026-11-20T10:00:00.000Z"))
    writebacks = len(outbox_rows(app))
    assert writebacks == 1
    post_salesforce(client, salesforce_notification("04l000000000001AAA", "2026-11-20T09:00:00.000Z", country="NO"))
    rows = by_id(app, "salesforce")
    newer, older = rows[f"{ORG}:04l000000000002AAA"], rows[f"{ORG}:04l000000000001AAA"]
    assert newer["status"] == "screened" and older["status"] == "stale"
    assert older["screening_id"] is None and count_screenings(app) == 1
    assert older["reason"] == (f"not screened: this delivery carries the record as modified at 2026-11-20T09:00:00Z, "
                               f"and delivery {ORG}:04l000000000002AAA already carried it as modified at "
                               "2026-11-20T10:00:00Z")
    assert older["outcome"]["gate"] == "hold" and older["outcome"]["screening_id"] == newer["screening_id"]
    assert gate_of(client, auth_headers, newer["transaction_id"]) == "hold"
    # No write-back for the stale delivery: the CRM hears only the newer screening's gate.
    assert len(outbox_rows(app)) == writebacks
    # Its own retry answers the same, and a later change is screened again.
    post_salesforce(client, salesforce_notification("04l000000000001AAA", "2026-11-20T09:00:00.000Z", country="NO"))
    assert by_id(app, "salesforce")[f"{ORG}:04l000000000001AAA"]["status"] == "stale"
    # An offset is read: 10:30+01:00 is 09:30 UTC, older than 10:00 UTC.
    post_salesforce(client, salesforce_notification("04l000000000003AAA", "2026-11-20T10:30:00+01:00", country="NO"))
    assert by_id(app, "salesforce")[f"{ORG}:04l000000000003AAA"]["status"] == "stale"
    post_salesforce(client, salesforce_notification("04l000000000004AAA", "2026-11-20T11:00:00.000Z", country="NO"))
    latest = by_id(app, "salesforce")[f"{ORG}:04l000000000004AAA"]
    assert latest["status"] == "screened" and count_screenings(app) == 2


def test_equal_times_are_screened_in_arrival_order_and_no_time_means_arrival_order(app, client):
    post_salesforce(client, salesforce_notification("04l000000000001AAA", "2026-11-20T10:00:00Z"))
    post_salesforce(client, salesforce_notification("04l000000000002AAA", "2026-11-20T10:00:00Z", country="NO"))
    post_salesforce(client, salesforce_notification("04l000000000003AAA", None))
    assert {d["status"] for d in deliveries(app, "salesforce")} == {"screened"}
    assert count_screenings(app) == 3


def test_a_dynamics_step_finishing_after_a_later_one_is_stale(app, client):
    update = client.post("/v1/hooks/dynamics", data=fixture_bytes("dynamics/opportunity_update_postimage.json"),
                         headers=DV_HEADERS).json["results"][0]
    create = client.post("/v1/hooks/dynamics", data=fixture_bytes("dynamics/opportunity_create.json"),
                         headers=DV_HEADERS).json["results"][0]
    assert update["status"] == "screened" and update["stage"] == "order"
    # OperationCreatedOn 2024-08-02T07:00:39Z, a day before the update's: the create's step ran late.
    assert create["status"] == "stale" and create["modified_at"] == "2024-08-02T07:00:39Z"
    assert create["newer_modified_at"] == "2024-08-03T07:00:39Z"
    assert create["screening_id"] == update["screening_id"]
    assert count_screenings(app) == 1


def _odoo(write_date, **changes) -> dict:
    record = {**fixture_json("odoo/sale_order.json"), **changes}
    if write_date is not None:
        record["write_date"] = write_date
    return record


def test_an_older_invalid_delivery_does_not_hold_the_deal(app, client, auth_headers):
    newer = post_odoo(client, _odoo("2026-11-20 10:00:00"))
    assert newer["status"] == "screened"
    holds = len(outbox_rows(app))
    older = post_odoo(client, _odoo("2026-11-20 09:30:00", x_hrdd_end_user_country=False))
    assert older["status"] == "stale" and older["newer_delivery_id"] == newer["delivery_id"]
    assert len(outbox_rows(app)) == holds  # no "hold" written back for a state the record has left
    assert gate_of(client, auth_headers, newer["transaction_id"]) == newer["gate"]


def test_an_older_complete_delivery_does_not_override_a_newer_invalid_one(app, client, auth_headers):
    first = post_odoo(client, _odoo("2026-11-20 08:00:00", x_hrdd_end_user_country="NO",
                                    x_hrdd_deployment_countries="NO"))
    invalid = post_odoo(client, _odoo("2026-11-20 10:00:00", x_hrdd_end_user_country=False))
    assert invalid["status"] == "invalid" and invalid["gate"] == "hold"
    older = post_odoo(client, _odoo("2026-11-20 09:00:00", x_hrdd_end_user_country="NO",
                                    x_hrdd_deployment_countries="NO"))
    assert older["status"] == "stale" and older["newer_delivery_id"] == invalid["delivery_id"]
    # The deal stays held by the newer, unscreenable delivery.
    assert gate_of(client, auth_headers, first["transaction_id"]) == "hold"
    assert count_screenings(app) == 1


def test_a_time_far_in_the_future_is_not_used_to_order_deliveries(app, client, caplog):
    post_odoo(client, _odoo("2099-01-01 00:00:00"))
    later = post_odoo(client, _odoo("2026-11-20 09:00:00", x_hrdd_intended_use="Visitor registration"))
    assert later["status"] == "screened"
    assert "lies in the future; not used to order deliveries" in caplog.text


@pytest.mark.parametrize("value", ["yesterday", "", "2026-13-45 25:00:00", True, {"x": 1}])
def test_an_unreadable_time_leaves_arrival_order(app, client, value):
    post_odoo(client, _odoo("2026-11-20 10:00:00"))
    later = post_odoo(client, _odoo(value, x_hrdd_intended_use="Visitor registration"))
    assert later["status"] == "screened"


def test_a_hubspot_workflow_call_carrying_older_property_changes_is_stale(app, client):
    newer = fixture_json("hubspot/workflow_deal.json")
    older = json.loads(json.dumps(newer))
    for prop in older["properties"].values():
        prop["timestamp"] -= 60_000
    older["properties"]["hrdd_end_user_country"]["value"] = "EG"
    answers = []
    for body in (newer, older):
        raw = json.dumps(body).encode()
        answers.append(client.post("/v1/hooks/hubspot", data=raw, headers=v3_headers(raw, secret=HUBSPOT_SECRET)))
    assert answers[0].status_code == 200 and answers[0].json["status"] == "screened"
    stale = answers[1].json
    assert answers[1].status_code == 200 and stale["status"] == "stale"
    # The workflow branches on the answer: it carries the deal's gate now.
    assert stale["gate"] == answers[0].json["gate"] and stale["screening_id"] == answers[0].json["screening_id"]


def test_the_migration_adds_record_versions_and_keeps_deliveries(app, client):
    from tests.conftest import migrate_down

    post_odoo(client, _odoo("2026-11-20 10:00:00"))
    store = app.extensions["hrdd"].store
    migrate_down(store, "0703_end_user_keys")
    store.upgrade()
    assert len(deliveries(app, "odoo")) == 1
    older = post_odoo(client, _odoo("2026-11-20 09:00:00", x_hrdd_intended_use="Visitor registration"))
    newer = post_odoo(client, _odoo("2026-11-20 11:00:00", x_hrdd_intended_use="Visitor registration, lobby"))
    assert older["status"] == "screened" and newer["status"] == "screened"  # no version was recorded before
    again = post_odoo(client, _odoo("2026-11-20 10:30:00", x_hrdd_intended_use="Lobby"))
    assert again["status"] == "stale"


def test_a_record_fetched_by_the_worker_is_stale_when_a_newer_state_was_screened(app, client):
    from hrdd_plugins.adapter_runtime import run_once as worker_pass

    # A workflow call carries the deal as changed at 10:00; the webhook event queued earlier is fetched
    # after it, and the API answers a state last modified at 09:07 (a read from a lagging replica, say).
    workflow = fixture_json("hubspot/workflow_deal.json")
    workflow["objectId"] = 19184211867
    # The record's own hs_lastmodifieddate wins over the properties' change timestamps (2024 here).
    workflow["properties"]["hs_lastmodifieddate"] = {"value": "2026-11-19T10:00:00.000Z", "timestamp": 1732000000000}
    events = fixture_bytes("hubspot/deal_batch.json")
    assert client.post("/v1/hooks/hubspot", data=events, headers=v3_headers(events, secret=HUBSPOT_SECRET)
                       ).status_code == 202
    raw = json.dumps(workflow).encode()
    screened = client.post("/v1/hooks/hubspot", data=raw, headers=v3_headers(raw, secret=HUBSPOT_SECRET)).json
    assert screened["status"] == "screened"
    routes = {("GET", "/crm/v3/objects/deals/19184211867"): (200, fixture_json("hubspot/deal_19184211867.json")),
              ("POST", "/crm/v3/objects/line_items/batch/read"): (200, fixture_json(
                  "hubspot/line_items_batch_read.json"))}
    with FakeServer(routes) as fake:
        app.extensions["hrdd_adapters"]["adapters"]["hubspot"].update(api_base_url=fake.url, access_token="pat-x")
        with app.app_context():
            counts = worker_pass(app)
    assert "hs_lastmodifieddate" in fake.requests[0]["url"]  # asked for, whatever the field map reads
    assert counts["events"]["stale"] == 1
    fetched = next(d for d in deliveries(app, "hubspot") if d["delivery_id"].startswith("62515:3816279340:"))
    assert fetched["status"] == "stale" and "2026-11-19T09:07:02.114Z" in fetched["reason"]
    assert count_screenings(app) == 1


def test_versions_delivered_at_once_leave_the_newest_governing(app):
    # Eight changes of one order arrive together, newest first, each on its own connection: whatever order
    # they are stored in, the deal ends on the newest state and no older state is screened after it.
    records = [_odoo(f"2026-11-20 10:0{n}:00", x_hrdd_intended_use=f"version {n}") for n in range(8)][::-1]

    def deliver(record):
        return post_odoo(app.test_client(), record)

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(deliver, records))
    assert outcomes[0]["status"] == "screened"  # the newest is never stale
    assert {o["status"] for o in outcomes} <= {"screened", "stale"}
    store = app.extensions["hrdd"].store
    latest = store.latest_screening(outcomes[0]["transaction_id"])
    assert latest["transaction"]["intended_use"] == "version 7"


@pytest.mark.parametrize("setting, value, named", [
    ("modified_fields", "write_date", "adapters.odoo.modified_fields: expected a list of record field names"),
    ("modified_fields", ["write_date", ""], "adapters.odoo.modified_fields"),
    ("max_clock_skew_seconds", "soon", "adapters.odoo.max_clock_skew_seconds: expected a number of seconds"),
    ("max_clock_skew_seconds", -1, "adapters.odoo.max_clock_skew_seconds"),
])
def test_unusable_ordering_settings_stop_start_up_naming_them(app_config, setting, value, named):
    from hrdd.adapters.config import ConfigError
    from server import create_app

    app_config["HRDD_ADAPTERS"]["adapters"]["odoo"][setting] = value
    with pytest.raises(ConfigError, match=re.escape(named)):
        create_app(app_config)


def test_modified_fields_from_the_environment_name_other_record_fields(app_config, monkeypatch):
    from server import create_app

    monkeypatch.setenv("HRDD_ADAPTER_ODOO_MODIFIED_FIELDS", "x_changed_at, write_date")
    client = create_app(app_config).test_client()
    newer = post_odoo(client, _odoo("2026-11-20 08:00:00", x_changed_at="2026-11-20 10:00:00"))
    older = post_odoo(client, _odoo("2026-11-20 11:00:00", x_changed_at="2026-11-20 09:00:00",
                                    x_hrdd_intended_use="Lobby"))
    assert newer["status"] == "screened" and older["status"] == "stale"


# ---- found by review: the CRM's view, mixed time sources, answers without a screening ----

SAP_TOKEN = "em-webhook-token-7f3"
SAP_HEADERS = {"Authorization": f"Bearer {SAP_TOKEN}", "Content-Type": "application/cloudevents+json"}


def _sap_quotation(record):
    # A quotation's items name their text SalesQuotationItemText, which the SalesQuotation map reads.
    body = fixture_bytes("sap/a_salesorder.json").decode().replace("{id}", "4501").replace(
        "SalesOrderItemText", "SalesQuotationItemText")
    return 200, json.loads(body.replace('"EG"', '"NO"').replace("biometric_identification", "recording_devices"))


def _sap_event(event_id: str, time: str) -> str:
    return json.dumps({"type": "sap.s4.beh.salesquotation.v1.SalesQuotation.Changed.v1", "specversion": "1.0",
                       "source": "/default/sap.s4.beh/DEV", "id": event_id, "time": time,
                       "data": {"SalesQuotation": "4501"}})


def test_a_delivery_held_for_a_failed_fetch_then_found_stale_gives_the_crm_the_gate_again(app_config):
    from datetime import timedelta

    from hrdd.adapters import pipeline
    from hrdd.adapters.config import settings_for
    from hrdd.adapters.tables import now
    from server import create_app

    path = "/sap/opu/odata/sap/API_SALES_QUOTATION_SRV/A_SalesQuotation('4501')"
    with FakeServer({("GET", path): _sap_quotation}) as fake:
        app_config["HRDD_ADAPTERS"]["adapters"]["sap"] = {"bearer_token": SAP_TOKEN, "api_base_url": fake.url}
        app_config["HRDD_ADAPTERS"]["writeback"]["sap"] = {"url": fake.url + "/wb/{object_id}"}
        app = create_app(app_config)
        client = app.test_client()
        newer = client.post("/v1/hooks/sap", data=_sap_event("e2", "2026-11-20T08:05:00Z"),
                            headers=SAP_HEADERS).json["results"][0]
        fake.fail_first = 1
        older = client.post("/v1/hooks/sap", data=_sap_event("e1", "2026-11-20T08:00:00Z"),
                            headers=SAP_HEADERS).json["results"][0]
        assert newer["status"] == "screened" and older["status"] == "pending_enrichment"
        assert outbox_rows(app)[-1]["gate"] == "hold"  # the ERP was told "hold: could not fetch"
        services = app.extensions["hrdd"]
        with app.app_context():
            counts = pipeline.process_due(services, lambda v: services.pm.hook.hrdd_webhook_adapter(name=v, app=app),
                                          settings_for(app), moment=now() + timedelta(minutes=5))
    assert counts["stale"] == 1
    last = outbox_rows(app)[-1]
    # The ERP hears the deal's gate again (the newer screening's), not the fetch failure's hold for ever.
    assert last["gate"] is None and last["screening_id"] == newer["screening_id"]


def test_times_from_different_sources_are_compared_to_the_second(app_config):
    from server import create_app

    opportunity = "3d1feef9-604d-ef11-bfe3-6045bd03d9d8"
    # The newest state: the Web API dates it to the second, as Dataverse does.
    row = {"opportunityid": opportunity, "modifiedon": "2024-08-03T07:00:39Z", "hrdd_enduser": "Fjord Retail AS",
           "hrdd_enduser_country": "NO", "hrdd_productcode": "ST-10", "hrdd_productname": "ArchiveBox 10",
           "hrdd_capabilities": "data_storage", "salesstage": 0,
           "salesstage@OData.Community.Display.V1.FormattedValue": "Qualify"}
    with FakeServer({("GET", f"/api/data/v9.2/opportunities({opportunity})"): (200, row)}) as fake:
        app_config["HRDD_ADAPTERS"]["adapters"]["dynamics"].update(api_base_url=fake.url, access_token="t")
        client = create_app(app_config).test_client()
        older = json.loads(fixture_bytes("dynamics/opportunity_update_postimage.json"))
        older["OperationCreatedOn"] = "/Date(1722668439600+0000)/"  # 07:00:39.600; no modifiedon in the image
        first = client.post("/v1/hooks/dynamics", data=json.dumps(older), headers=DV_HEADERS).json["results"][0]
        newer = dict(older, OperationId="9b22d4fa-0000-0000-0000-000000000002",
                     OperationCreatedOn="/Date(1722668439800+0000)/", InputParameters=[], PostEntityImages=[])
        second = client.post("/v1/hooks/dynamics", data=json.dumps(newer),
                             headers={**DV_HEADERS, "x-ms-dynamics-msg-size-exceeded": "true"}).json["results"][0]
        # A second or more older, even from another source, is stale.
        oldest = dict(older, OperationId="9b22d4fa-0000-0000-0000-000000000003",
                      OperationCreatedOn="/Date(1722668437000+0000)/")
        third = client.post("/v1/hooks/dynamics", data=json.dumps(oldest), headers=DV_HEADERS).json["results"][0]
    assert first["status"] == "screened" and first["stage"] == "order"
    assert second["status"] == "screened" and second["stage"] == "opportunity"
    assert third["status"] == "stale"


def test_a_stale_answer_gives_the_hold_when_the_newer_delivery_was_not_screened(app, client):
    newer = post_odoo(client, _odoo("2026-11-20 10:00:00", x_hrdd_end_user_country=False))
    older = post_odoo(client, _odoo("2026-11-20 09:00:00"))
    assert newer["status"] == "invalid" and older["status"] == "stale"
    assert older["gate"] == "hold" and older["hold_reasons"] == [newer["reason"]]
    workflow = fixture_json("hubspot/workflow_deal.json")
    earlier = json.loads(json.dumps(workflow))
    del workflow["properties"]["hrdd_end_user_country"]
    for prop in earlier["properties"].values():
        prop["timestamp"] -= 60_000
    answers = []
    for body in (workflow, earlier):
        raw = json.dumps(body).encode()
        answers.append(client.post("/v1/hooks/hubspot", data=raw, headers=v3_headers(raw, secret=HUBSPOT_SECRET)).json)
    assert [(a["status"], a["gate"]) for a in answers] == [("invalid", "hold"), ("stale", "hold")]


def test_configured_modified_fields_are_fetched_and_a_worker_stale_answer_has_the_deals_gate(app, client):
    from hrdd_plugins.adapter_runtime import run_once as worker_pass

    workflow = fixture_json("hubspot/workflow_deal.json")
    workflow["objectId"] = 19184211867
    workflow["properties"]["hrdd_changed_at"] = {"value": "2026-11-19T10:00:00.000Z", "timestamp": 1732000000000}
    app.extensions["hrdd_adapters"]["adapters"]["hubspot"]["modified_fields"] = ["hrdd_changed_at"]
    raw = json.dumps(workflow).encode()
    screened = client.post("/v1/hooks/hubspot", data=raw, headers=v3_headers(raw, secret=HUBSPOT_SECRET)).json
    events = fixture_bytes("hubspot/deal_batch.json")  # received after the screening, fetched later
    client.post("/v1/hooks/hubspot", data=events, headers=v3_headers(events, secret=HUBSPOT_SECRET))
    deal = fixture_json("hubspot/deal_19184211867.json")
    deal["properties"]["hrdd_changed_at"] = "2026-11-19T09:07:02.114Z"
    routes = {("GET", "/crm/v3/objects/deals/19184211867"): (200, deal),
              ("POST", "/crm/v3/objects/line_items/batch/read"): (200, fixture_json(
                  "hubspot/line_items_batch_read.json"))}
    with FakeServer(routes) as fake:
        app.extensions["hrdd_adapters"]["adapters"]["hubspot"].update(api_base_url=fake.url, access_token="pat-x")
        with app.app_context():
            worker_pass(app)
    assert "hrdd_changed_at" in fake.requests[0]["url"]
    row = next(d for d in deliveries(app, "hubspot") if d["delivery_id"].startswith("62515:3816279340:"))
    assert row["status"] == "stale" and "2026-11-19T09:07:02.114Z" in row["reason"]
    # Not held by itself: the stale delivery no longer counts as waiting to be screened.
    assert row["outcome"]["gate"] == screened["gate"] != "hold"


def test_a_downgrade_records_stale_deliveries_as_invalid_and_upgrading_again_works(app, client):
    from alembic import command

    post_odoo(client, _odoo("2026-11-20 10:00:00"))
    assert post_odoo(client, _odoo("2026-11-20 09:00:00", x_hrdd_intended_use="Lobby"))["status"] == "stale"
    store = app.extensions["hrdd"].store
    cfg = store._alembic_config()
    with store.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0703_end_user_keys")
    assert sorted(d["status"] for d in deliveries(app, "odoo")) == ["invalid", "screened"]
    store.engine.dispose()
    store.upgrade()
    with store.engine.connect() as conn:
        assert "adapter_record_versions" in sa.inspect(conn).get_table_names()


def test_the_recorded_time_never_goes_down_when_sources_alternate(app, client, auth_headers):
    # Egypt at 10:00:00.900 (LastModifiedDate); the same state stamped 10:00:00 (SystemModstamp, another
    # source, within its second: it passes); then an older Norway state at 10:00:00.100 must still be stale.
    def notification(number, field, stamp, country="EG"):
        body = salesforce_notification(f"04l00000000000{number}AAA", None, country=country).decode()
        return body.replace("<sf:Name>", f"<sf:{field}>{stamp}</sf:{field}>\n     <sf:Name>").encode()

    post_salesforce(client, notification(1, "LastModifiedDate", "2026-11-20T10:00:00.900Z"))
    post_salesforce(client, notification(2, "SystemModstamp", "2026-11-20T10:00:00.000Z"))
    post_salesforce(client, notification(3, "LastModifiedDate", "2026-11-20T10:00:00.100Z", country="NO"))
    rows = {d["delivery_id"][-4:]: d for d in deliveries(app, "salesforce")}
    assert [rows[k]["status"] for k in ("1AAA", "2AAA", "3AAA")] == ["screened", "screened", "stale"]
    assert "2026-11-20T10:00:00.900Z" in rows["3AAA"]["reason"]
    assert gate_of(client, auth_headers, rows["1AAA"]["transaction_id"]) == "hold"


def test_a_hubspot_workflow_names_its_object_type_either_way(app, client):
    body = fixture_json("hubspot/workflow_deal.json")
    answers = []
    for object_type, type_id in ((None, "0-2"), (" DEAL", None), ("DEALS", None)):
        body["objectType"], body["objectTypeId"] = object_type, type_id
        body["properties"]["dealname"]["value"] = f"Harbour cameras {len(answers)}"
        raw = json.dumps(body).encode()
        answers.append(client.post("/v1/hooks/hubspot", data=raw, headers=v3_headers(raw, secret=HUBSPOT_SECRET)).json)
    assert [a["status"] for a in answers] == ["ignored", "screened", "screened"]


@pytest.mark.parametrize("field, value, message", [
    ("amount_total", True, "True is not a number"),
    ("product_uom_qty", "1,000.5", "'1,000.5' is not a whole number"),
    ("product_uom_qty", 2.5, "2.5 is not a whole number"),
    # A German "1.000" is a thousand: it read as 1 item.
    ("product_uom_qty", "1.000", "'1.000' is not a number hrdd can read unambiguously"),
    ("product_uom_qty", "12.500.000", "'12.500.000' is not a number hrdd can read unambiguously"),
])
def test_a_number_hrdd_would_have_to_guess_at_is_an_invalid_delivery(app_config, field, value, message):
    from server import create_app

    app_config["HRDD_ADAPTERS"]["adapters"]["odoo"]["field_maps"] = {"sale.order": {"items": [{
        "sku": "x_hrdd_product_code", "name": "x_hrdd_product_name",
        "capabilities": {"field": "x_hrdd_capabilities", "split": ","},
        "unit_price": {"field": "amount_total", "type": "float"},
        "quantity": {"field": "product_uom_qty", "type": "int"}}]}}
    client = create_app(app_config).test_client()
    outcome = post_odoo(client, {**_odoo(None), "product_uom_qty": 3, field: value})
    assert outcome["status"] == "invalid" and outcome["gate"] == "hold" and message in outcome["reason"]
