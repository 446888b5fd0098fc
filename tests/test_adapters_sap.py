"""SAP Event Mesh: OPTIONS handshake, binary/structured/batched CloudEvents, OData enrichment, retries."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.adapter_support import FakeServer, count_screenings, deliveries, fixture_bytes, outbox_rows

TOKEN = "em-webhook-token-7f3"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
STRUCTURED = {**AUTH, "Content-Type": "application/cloudevents+json"}


def odata(record):
    order = record["path"].split("'")[1]
    return 200, json.loads(fixture_bytes("sap/a_salesorder.json").decode().replace("{id}", order))


def quotation(record):
    number = record["path"].split("'")[1]
    return 200, json.loads(fixture_bytes("sap/a_salesquotation.json").decode().replace("{id}", number))


def order_from_quotation(record):
    # The order changed after the quotation: the end-user is another agency.
    order = record["path"].split("'")[1]
    text = fixture_bytes("sap/a_salesorder_from_quotation.json").decode().replace("{id}", order)
    return 200, json.loads(text.replace("Directorate of Public Security", "National Security Agency"))


ROUTES = {("GET", f"/sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder('{n}')"): odata for n in ("1", "4501", "4502")}
ROUTES[("GET", "/sap/opu/odata/sap/API_SALES_QUOTATION_SRV/A_SalesQuotation('20000012')")] = quotation
ROUTES[("GET", "/sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder('4601')")] = order_from_quotation


@pytest.fixture
def fake_s4():
    with FakeServer(dict(ROUTES)) as fake:
        yield fake


@pytest.fixture
def app_config(app_config, fake_s4):
    app_config["HRDD_ADAPTERS"] = {"adapters": {"sap": {
        "bearer_token": TOKEN, "allowed_origins": ["eventmesh.eu10.hana.ondemand.com"],
        "api_base_url": fake_s4.url, "odata_user": "HRDD_COMM", "odata_password": "pw-123"}},
        "writeback": {"sap": {"url": "http://127.0.0.1:9/A_SalesOrder('{object_id}')"}}}
    return app_config


@pytest.mark.parametrize("base, message", [
    (None, r"adapters\.sap\.api_base_url \(HRDD_ADAPTER_SAP_API_BASE_URL\) is required: the S/4HANA API host"),
    ("  ", r"adapters\.sap\.api_base_url \(HRDD_ADAPTER_SAP_API_BASE_URL\) is required"),
    ("my123456-api.s4hana.cloud.sap", r"adapters\.sap\.api_base_url is not an http\(s\) URL: 'my123456"),
])
def test_the_app_refuses_to_start_a_sap_adapter_without_its_odata_host(app_config, base, message):
    # Every business event carries only a key: without the host each would be held, retried and failed.
    from hrdd.adapters.config import ConfigError
    from server import create_app

    sap = app_config["HRDD_ADAPTERS"]["adapters"]["sap"]
    sap.pop("api_base_url")
    if base is not None:
        sap["api_base_url"] = base
    with pytest.raises(ConfigError, match=message):
        create_app(app_config)


def test_the_odata_host_can_come_from_the_environment_and_a_switched_off_adapter_needs_none(app_config, monkeypatch):
    from server import create_app

    sap = app_config["HRDD_ADAPTERS"]["adapters"]["sap"]
    url = sap.pop("api_base_url")
    monkeypatch.setenv("HRDD_ADAPTER_SAP_API_BASE_URL", url)
    assert create_app(app_config).test_client().get("/healthz").status_code == 200
    monkeypatch.delenv("HRDD_ADAPTER_SAP_API_BASE_URL")
    sap["enabled"] = False
    r = create_app(app_config).test_client().post("/v1/hooks/sap", data=b"{}", headers=STRUCTURED)
    assert r.status_code == 503


def test_options_handshake_allows_the_configured_origin(client):
    r = client.options("/v1/hooks/sap", headers={"WebHook-Request-Origin": "eventmesh.eu10.hana.ondemand.com"})
    assert r.status_code == 200
    assert r.headers["WebHook-Allowed-Origin"] == "eventmesh.eu10.hana.ondemand.com"
    assert "POST" in r.headers["Allow"]
    other = client.options("/v1/hooks/sap", headers={"WebHook-Request-Origin": "evil.example"})
    assert "WebHook-Allowed-Origin" not in other.headers


def test_documented_sales_order_event_is_enriched_through_odata_and_screened(app, client, fake_s4):
    r = client.post("/v1/hooks/sap", data=fixture_bytes("sap/salesorder_created.json"), headers=STRUCTURED)
    assert r.status_code == 202
    outcome = r.json["results"][0]
    assert outcome["status"] == "screened" and outcome["stage"] == "order"
    assert outcome["delivery_id"] == "/default/sap.s4.beh/DEVCLNT001:db13c94e-c20f-4b2e-8171-6970104721a0"
    request = fake_s4.requests[0]
    assert "$expand=to_Item,to_Partner/to_Address" in request["url"]
    assert request["headers"]["authorization"].startswith("Basic ")
    txn = app.extensions["hrdd"].store.get_screening(outcome["screening_id"])["transaction"]
    assert txn["reference"] == {"system": "sap", "object_type": "SalesOrder", "object_id": "1"}
    assert txn["items"][0]["sku"] == "FR-200" and txn["parties"][0]["country"] == "EG"


def test_binary_mode(app, client):
    headers = {**AUTH, "Content-Type": "application/json", "ce-specversion": "1.0",
               "ce-type": "sap.s4.beh.salesorder.v1.SalesOrder.Created.v1", "ce-source": "/default/sap.s4.beh/DEVCLNT001",
               "ce-id": "b1n4ry-0001"}
    r = client.post("/v1/hooks/sap", data=b'{"SalesOrder": "4501"}', headers=headers)
    assert r.status_code == 202 and r.json["results"][0]["status"] == "screened"


def test_batch_screens_sales_orders_and_ignores_other_objects(app, client):
    r = client.post("/v1/hooks/sap", data=fixture_bytes("sap/batch.json"),
                    headers={**AUTH, "Content-Type": "application/cloudevents-batch+json"})
    assert [o["status"] for o in r.json["results"]] == ["screened", "screened", "ignored"]
    again = client.post("/v1/hooks/sap", data=fixture_bytes("sap/batch.json"),
                        headers={**AUTH, "Content-Type": "application/cloudevents-batch+json"})
    assert [o.get("replayed") for o in again.json["results"][:2]] == [True, True]
    assert count_screenings(app) == 2


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic eDp5"}])
def test_bad_credentials_are_401(client, headers):
    r = client.post("/v1/hooks/sap", data=fixture_bytes("sap/salesorder_created.json"),
                    headers={**headers, "Content-Type": "application/cloudevents+json"})
    assert r.status_code == 401


@pytest.mark.parametrize("event, reason", [
    ({"specversion": "1.0", "source": "/s", "type": "sap.s4.beh.salesorder.v1.SalesOrder.Created.v1",
      "data": {"SalesOrder": "1"}}, "missing CloudEvents attribute(s) id"),
    ({"specversion": "1.0", "id": "1", "source": "/s", "type": "sap.s4.beh.salesorder.v1.SalesOrder.Created.v1",
      "data": {}}, "data.SalesOrder is missing"),
    ({"specversion": "0.3", "id": "1", "source": "/s", "type": "x"}, "specversion 0.3"),
])
def test_events_missing_fields_are_400(client, event, reason):
    r = client.post("/v1/hooks/sap", data=json.dumps(event), headers=STRUCTURED)
    assert r.status_code == 400 and reason in r.json["message"]


def test_s4_outage_keeps_the_event_holds_the_order_and_the_worker_recovers(app, client, fake_s4):
    from hrdd.adapters import pipeline
    from hrdd.adapters.config import settings_for
    from hrdd.adapters.tables import now

    fake_s4.fail_first = 1
    r = client.post("/v1/hooks/sap", data=fixture_bytes("sap/salesorder_created.json"), headers=STRUCTURED)
    outcome = r.json["results"][0]
    assert r.status_code == 202 and outcome["status"] == "pending_enrichment" and outcome["gate"] == "hold"
    assert "answered 503" in outcome["reason"]
    assert count_screenings(app) == 0
    services = app.extensions["hrdd"]
    resolve = lambda vendor: services.pm.hook.hrdd_webhook_adapter(name=vendor, app=app)  # noqa: E731
    with app.app_context():
        early = pipeline.process_due(services, resolve, settings_for(app))
        assert early == {"screened": 0, "pending": 0, "invalid": 0, "stale": 0, "failed": 0}  # back-off: not due yet
        later = pipeline.process_due(services, resolve, settings_for(app), moment=now() + timedelta(minutes=5))
    assert later == {"screened": 1, "pending": 0, "invalid": 0, "stale": 0, "failed": 0}
    assert deliveries(app, "sap")[0]["status"] == "screened"


def _event(kind: str, key: str, number: str, event_id: str) -> bytes:
    return json.dumps({"specversion": "1.0", "id": event_id, "source": "/default/sap.s4.beh/DEVCLNT001",
                       "type": f"sap.s4.beh.{kind.lower()}.v1.{kind}.Created.v1", "time": "2026-11-20T08:00:00Z",
                       "datacontenttype": "application/json", "data": {key: number}}).encode()


def test_order_made_from_a_quotation_is_the_quotations_deal(app, client, auth_headers):
    quote = client.post("/v1/hooks/sap", data=_event("SalesQuotation", "SalesQuotation", "20000012", "q-1"),
                        headers=STRUCTURED).json["results"][0]
    order = client.post("/v1/hooks/sap", data=_event("SalesOrder", "SalesOrder", "4601", "o-1"),
                        headers=STRUCTURED).json["results"][0]
    assert (quote["status"], order["status"]) == ("screened", "screened")
    # One deal: the order (created with reference to quotation 20000012) is compared with its quote.
    assert order["transaction_id"] == quote["transaction_id"]
    deal = client.get(f"/v1/transactions/{order['transaction_id']}", headers=auth_headers("reviewer")).json
    assert deal["reference"] == {"system": "sap", "object_type": "SalesQuotation", "object_id": "20000012"}
    assert [s["stage"] for s in deal["screenings"]] == ["order", "quote"]
    assert order["gate"] == "hold"
    change = [r for r in order["hold_reasons"] if r.startswith("material change since the quote")]
    assert change and "end-user changed from 'Directorate of Public Security' (EG) to 'National Security Agency'" \
        in change[0]
    cases = client.get("/v1/cases?status=all", headers=auth_headers("reviewer")).json["cases"]
    assert {c["transaction_id"] for c in cases} == {quote["transaction_id"]}
    # Each delivery's write-back goes to the document delivered, not to the quotation the deal is keyed on.
    targets = [(r["object_type"], r["object_id"]) for r in outbox_rows(app)]
    assert targets == [("SalesQuotation", "20000012"), ("SalesOrder", "4601")]


def test_order_entered_without_a_quotation_is_its_own_deal(app, client):
    r = client.post("/v1/hooks/sap", data=_event("SalesOrder", "SalesOrder", "4501", "o-2"), headers=STRUCTURED)
    outcome = r.json["results"][0]
    txn = app.extensions["hrdd"].store.get_screening(outcome["screening_id"])["transaction"]
    assert txn["reference"] == {"system": "sap", "object_type": "SalesOrder", "object_id": "4501"}


def quotation(record):
    number = record["path"].split("'")[1]
    text = fixture_bytes("sap/a_salesorder.json").decode().replace("{id}", number)
    return 200, json.loads(text.replace("SalesOrderItemText", "SalesQuotationItemText")
                           .replace("A_SalesOrder", "A_SalesQuotation"))


def sap_event(kind: str, number: str, event_id: str) -> bytes:
    event = json.loads(fixture_bytes("sap/salesorder_created.json"))
    event.update(id=event_id, type=f"sap.s4.beh.{kind.lower()}.v1.{kind}.Created.v1", data={kind: number})
    return json.dumps(event).encode()


def test_a_quotation_gate_goes_to_the_quotation_not_the_sales_order_with_its_number(app_config, fake_s4, tmp_path):
    """sap.md §3 as written: quotation 20000012 and sales order 20000012 are two documents."""
    from server import create_app
    from tests.test_adapters_oauth import guide_yaml

    quote_path = "/sap/opu/odata/sap/API_SALES_QUOTATION_SRV/A_SalesQuotation('20000012')"
    order_path = "/sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder('20000012')"
    fake_s4.routes.update({("GET", quote_path): quotation, ("PATCH", quote_path): (204, b""),
                           ("GET", order_path): odata, ("PATCH", order_path): (204, b"")})
    (tmp_path / "adapters.yaml").write_text(
        guide_yaml("sap", "3.").replace("https://my123456-api.s4hana.cloud.sap", fake_s4.url), encoding="utf-8")
    app_config.update(HRDD_ADAPTERS_FILE=str(tmp_path / "adapters.yaml"), SAP_COMM_BASIC="SFJERF9DT01NOnB3")
    app = create_app(app_config)
    client = app.test_client()
    for body in (sap_event("SalesQuotation", "20000012", "q-1"), sap_event("SalesOrder", "20000012", "o-1")):
        r = client.post("/v1/hooks/sap", data=body, headers=STRUCTURED)
        assert r.status_code == 202 and r.json["results"][0]["status"] == "screened", r.json
    screened = {d["object_type"]: d["screening_id"] for d in deliveries(app, "sap")}
    from hrdd_plugins.adapter_runtime import run_once

    with app.app_context():
        assert run_once(app)["writeback"] == {"delivered": 2, "retrying": 0, "failed": 0}
    patches = {q["path"]: json.loads(q["body"]) for q in fake_s4.requests if q["method"] == "PATCH"}
    assert set(patches) == {quote_path, order_path}
    assert patches[quote_path]["YY1_HRDD_Screening_SDH"] == screened["SalesQuotation"]
    assert patches[order_path]["YY1_HRDD_Screening_SDH"] == screened["SalesOrder"]
    csrf = [q for q in fake_s4.requests if q["headers"].get("x-csrf-token") == "fetch"]
    assert {q["path"] for q in csrf} == {quote_path, order_path}
    assert all(q["headers"]["authorization"] == "Basic SFJERF9DT01NOnB3" for q in csrf)


def test_a_sales_order_url_is_never_used_for_a_quotation_and_urls_name_one_per_type(app_config, fake_s4):
    from hrdd.adapters import outbox
    from hrdd.adapters.config import settings_for
    from server import create_app

    order_url = fake_s4.url + "/sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder('{object_id}')"
    app_config["HRDD_ADAPTERS"]["writeback"] = {"sap": {"url": order_url}}  # the guide's earlier set-up
    app = create_app(app_config)
    fake_s4.routes[("PATCH", "/sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder('20000012')")] = (204, b"")
    fake_s4.routes[("PATCH", "/q/20000012")] = (204, b"")
    services, settings = app.extensions["hrdd"], settings_for(app)
    with app.app_context():
        with services.store.begin() as conn:
            for kind in ("SalesQuotation", "SalesOrder"):
                outbox.enqueue(conn, settings, system="sap", object_type=kind, object_id="20000012", gate="hold",
                               reason="test")
        assert outbox.deliver_due(services, settings) == {"delivered": 1, "retrying": 0, "failed": 1}
        failed = outbox.rows(services.store, "failed")[0]
        assert failed["object_type"] == "SalesQuotation" and failed["attempts"] == 1
        assert "writeback.sap.url is the URL of SalesOrder records" in failed["last_error"]
        assert "writeback.sap.urls.SalesQuotation" in failed["last_error"]
        assert [q["path"] for q in fake_s4.requests] == ["/sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder('20000012')"]
        settings["writeback"]["sap"]["urls"] = {"SalesQuotation": fake_s4.url + "/q/{object_id}"}
        assert outbox.retry(services.store, failed["id"])
        assert outbox.deliver_due(services, settings) == {"delivered": 1, "retrying": 0, "failed": 0}
    assert fake_s4.requests[-1]["path"] == "/q/20000012"


def test_an_event_that_gave_up_is_reported_listed_and_can_be_queued_again(app, client, fake_s4):
    # S/4HANA down for longer than the retries: the worker says "failed" (not "pending"), the operator
    # finds the delivery with `hrdd deliveries`, fixes the cause and queues it again.
    from hrdd_plugins.adapter_runtime import deliveries_command

    from hrdd.adapters import pipeline
    from hrdd.adapters.config import settings_for
    from hrdd.adapters.tables import now

    fake_s4.fail_first = 100
    client.post("/v1/hooks/sap", data=fixture_bytes("sap/salesorder_created.json"), headers=STRUCTURED)
    services = app.extensions["hrdd"]
    resolve = lambda vendor: services.pm.hook.hrdd_webhook_adapter(name=vendor, app=app)  # noqa: E731
    moment, last = now(), None
    with app.app_context():
        for _ in range(8):
            moment += timedelta(hours=2)
            counts = pipeline.process_due(services, resolve, settings_for(app), moment=moment)
            last = counts if any(counts.values()) else last
    assert last["failed"] == 1 and last["pending"] == 0
    runner = app.test_cli_runner()
    listing = runner.invoke(deliveries_command, [])
    assert listing.exit_code == 0 and "failed" in listing.output and "SalesOrder/1" in listing.output
    assert "answered 503" in listing.output
    shown = json.loads(runner.invoke(deliveries_command, ["--vendor", "sap", "--json"]).output)
    assert [(r["status"], r["object_id"]) for r in shown] == [("failed", "1")]
    fake_s4.fail_first = 0
    retried = runner.invoke(deliveries_command, ["retry", "sap", shown[0]["delivery_id"]])
    assert retried.exit_code == 0 and "1 failed sap delivery queued again" in retried.output
    with app.app_context():
        assert pipeline.process_due(services, resolve, settings_for(app))["screened"] == 1
    assert deliveries(app, "sap")[0]["status"] == "screened"
    assert "No deliveries waiting, failed or invalid" in runner.invoke(deliveries_command, []).output
    again = runner.invoke(deliveries_command, ["retry", "sap", shown[0]["delivery_id"]])
    assert again.exit_code != 0 and "is not a failed delivery" in again.output


def test_metrics_count_events_waiting_for_the_vendor(client, fake_s4):
    fake_s4.fail_first = 1
    client.post("/v1/hooks/sap", data=fixture_bytes("sap/salesorder_created.json"), headers=STRUCTURED)
    scraped = client.get("/metrics").get_data(as_text=True)
    assert 'hrdd_adapter_deliveries{status="pending_enrichment",vendor="sap"} 1.0' in scraped
    assert 'hrdd_http_requests_total{endpoint="/v1/hooks/sap",method="POST",status="202"} 1.0' in scraped
