"""HubSpot: v3/v2/v1 signatures, batches recorded at once and enriched by the worker, workflow calls."""

from __future__ import annotations

import json
import time

import pytest

from hrdd.adapters import signatures
from tests.adapter_support import (
    FakeServer,
    count_screenings,
    deliveries,
    fixture_bytes,
    fixture_json,
    outbox_rows,
)

SECRET = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"
URL = "http://localhost/v1/hooks/hubspot"


@pytest.fixture
def app_config(app_config):
    app_config["HRDD_ADAPTERS"] = {"adapters": {"hubspot": {"client_secret": SECRET, "access_token": "pat-na1-x"}}}
    return app_config


def v3_headers(body: bytes, *, stamp: int | None = None, secret: str = SECRET, uri: str = URL) -> dict:
    stamp = stamp if stamp is not None else int(time.time() * 1000)
    return {"Content-Type": "application/json", "X-HubSpot-Request-Timestamp": str(stamp),
            "X-HubSpot-Signature-v3": signatures.hubspot_v3(secret, "POST", uri, body, str(stamp))}


def test_documented_v1_example_verifies_and_a_contact_event_is_ignored(app, client):
    body = fixture_bytes("hubspot/v1_documented_example.json")
    r = client.post("/v1/hooks/hubspot", data=body, headers={
        "Content-Type": "application/json", "X-HubSpot-Signature-Version": "v1",
        "X-HubSpot-Signature": "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"})
    assert r.status_code == 202
    assert r.json["results"][0]["status"] == "ignored"
    assert "contact.creation is not a deal event" in r.json["results"][0]["reason"]


def test_documented_v2_vectors():
    assert signatures.hubspot_v2(SECRET, "POST", "https://www.example.com/webhook_uri",
                                 b'{"example_field":"example_value"}') == (
        "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900")


def test_batch_is_recorded_at_once_then_the_worker_enriches_and_screens(app, client):
    body = fixture_bytes("hubspot/deal_batch.json")
    r = client.post("/v1/hooks/hubspot", data=body, headers=v3_headers(body))
    assert r.status_code == 202
    statuses = [o["status"] for o in r.json["results"]]
    assert statuses == ["queued", "queued", "ignored", "ignored"]
    assert count_screenings(app) == 0
    deal = fixture_json("hubspot/deal_19184211867.json")
    routes = {("GET", "/crm/v3/objects/deals/19184211867"): (200, deal),
              ("POST", "/crm/v3/objects/line_items/batch/read"): (200, fixture_json("hubspot/line_items_batch_read.json"))}
    with FakeServer(routes) as fake:
        app.extensions["hrdd_adapters"]["adapters"]["hubspot"]["api_base_url"] = fake.url
        from hrdd_plugins.adapter_runtime import run_once as worker_pass

        with app.app_context():
            counts = worker_pass(app)
        assert counts["events"] == {"screened": 1, "pending": 1, "invalid": 0, "stale": 0, "failed": 0}
        get = fake.requests[0]
        assert get["headers"]["authorization"] == "Bearer pat-na1-x"
        assert "hrdd_end_user_country" in get["url"] and "associations=line_items" in get["url"]
        read = json.loads(next(q for q in fake.requests if q["method"] == "POST")["body"])
        assert read["inputs"] == [{"id": "7791823310"}] and "hs_sku" in read["properties"]
    rows = {d["object_id"]: d for d in deliveries(app, "hubspot")}
    screened = rows["19184211867"]
    assert screened["status"] == "screened" and screened["stage"] == "opportunity"
    txn = app.extensions["hrdd"].store.get_screening(screened["screening_id"])["transaction"]
    assert txn["items"][0]["sku"] == "FR-200" and txn["items"][0]["quantity"] == 1
    # The second deal is unknown to the fake HubSpot: kept, held with the reason, retried later.
    pending = rows["19184211868"]
    assert pending["status"] == "pending_enrichment" and "answered 404" in pending["reason"]
    assert pending["next_attempt_at"] is not None


def test_replayed_batch_creates_nothing_new(app, client):
    body = fixture_bytes("hubspot/deal_batch.json")
    first = client.post("/v1/hooks/hubspot", data=body, headers=v3_headers(body))
    again = client.post("/v1/hooks/hubspot", data=body, headers=v3_headers(body))
    assert again.status_code == 202
    assert [o.get("replayed") for o in again.json["results"][:2]] == [True, True]
    assert len(deliveries(app, "hubspot")) == 2 == len(first.json["results"]) - 2


@pytest.mark.parametrize("change", ["secret", "body", "stale", "uri"])
def test_bad_v3_signatures_are_401(client, change):
    body = fixture_bytes("hubspot/deal_batch.json")
    headers = v3_headers(body, secret="wrong" if change == "secret" else SECRET,
                         stamp=int(time.time() * 1000) - 6 * 60 * 1000 if change == "stale" else None,
                         uri="http://localhost/elsewhere" if change == "uri" else URL)
    sent = body.replace(b"3816279340", b"3816279349") if change == "body" else body
    r = client.post("/v1/hooks/hubspot", data=sent, headers=headers)
    assert r.status_code == 401


def test_unsigned_request_is_401(client):
    r = client.post("/v1/hooks/hubspot", data=b"[]", headers={"Content-Type": "application/json"})
    assert r.status_code == 401 and "signature" in r.json["message"]


def test_public_url_is_what_gets_signed(app_config):
    from server import create_app

    app_config["HRDD_ADAPTERS"]["adapters"]["hubspot"]["public_url"] = "https://hrdd.example.com/v1/hooks/hubspot"
    client = create_app(app_config).test_client()
    body = fixture_bytes("hubspot/deal_batch.json")
    r = client.post("/v1/hooks/hubspot", data=body,
                    headers=v3_headers(body, uri="https://hrdd.example.com/v1/hooks/hubspot"))
    assert r.status_code == 202


def test_workflow_webhook_is_screened_at_once_and_answers_with_the_gate(app, client):
    body = fixture_bytes("hubspot/workflow_deal.json")
    r = client.post("/v1/hooks/hubspot", data=body, headers=v3_headers(body))
    assert r.status_code == 200
    assert r.json["status"] == "screened" and r.json["stage"] == "quote"
    assert r.json["gate"] in ("release", "release_with_conditions", "hold", "block")
    txn = app.extensions["hrdd"].store.get_screening(r.json["screening_id"])["transaction"]
    assert txn["items"] == [{"sku": "CAM-4K", "name": "HarbourCam 4K", "capabilities": ["recording_devices"],
                             "unit_price": 42000.0, "quantity": 1, "eccn": None, "currency": None,
                             "component_of_surveillance_system": False}]


@pytest.mark.parametrize("body, reason", [
    (b"not json", "not JSON"),
    (b"[]", "empty"),
    (json.dumps([{"eventId": 1, "subscriptionType": "deal.creation", "portalId": 1}]).encode(), "missing objectId"),
    (json.dumps({"properties": {}}).encode(), "no objectId"),
])
def test_payloads_missing_fields_are_400(client, body, reason):
    r = client.post("/v1/hooks/hubspot", data=body, headers=v3_headers(body))
    assert r.status_code == 400 and reason in r.json["message"]


def test_enrichment_failure_holds_the_deal_in_the_crm(app_config):
    from server import create_app

    with FakeServer({}, fail_first=100) as crm:
        app_config["HRDD_ADAPTERS"]["adapters"]["hubspot"]["api_base_url"] = crm.url
        app_config["HRDD_ADAPTERS"]["writeback"] = {"hubspot": {
            "url": crm.url + "/crm/v3/objects/deals/{object_id}", "access_token": "pat-na1-x"}}
        app = create_app(app_config)
        body = fixture_bytes("hubspot/deal_batch.json")
        app.test_client().post("/v1/hooks/hubspot", data=body, headers=v3_headers(body))
        from hrdd_plugins.adapter_runtime import run_once

        with app.app_context():
            run_once(app)
    rows = deliveries(app, "hubspot")
    assert {r["status"] for r in rows} == {"pending_enrichment"}
    assert all("answered 503" in r["reason"] for r in rows)
    # The CRM is told "hold" with the reason once per deal, not once per retry.
    holds = outbox_rows(app, "pending")
    assert sorted(h["object_id"] for h in holds) == ["19184211867", "19184211868"]
    assert all(h["gate"] == "hold" and "could not fetch the record from hubspot" in h["reason"] for h in holds)


def test_a_workflow_body_changed_back_is_screened_again_not_replayed(app, client):
    a = fixture_bytes("hubspot/workflow_deal.json")
    changed = fixture_json("hubspot/workflow_deal.json")
    changed["properties"]["hrdd_end_user_country"]["value"] = "EG"
    b = json.dumps(changed).encode()
    post = [client.post("/v1/hooks/hubspot", data=body, headers=v3_headers(body)).json for body in (a, b, a)]
    assert [p["status"] for p in post] == ["screened"] * 3 and not any(p.get("replayed") for p in post)
    assert post[2]["screening_id"] != post[0]["screening_id"]
    retry = client.post("/v1/hooks/hubspot", data=a, headers=v3_headers(a)).json
    assert retry["replayed"] is True and retry["screening_id"] == post[2]["screening_id"]
    assert count_screenings(app) == 3


@pytest.mark.parametrize("object_type", ["COMPANY", "CONTACT", "0-2", "TICKET"])
def test_a_workflow_call_for_another_object_type_is_not_screened_as_a_deal(app, client, object_type):
    body = fixture_json("hubspot/workflow_deal.json")
    body["objectType"] = object_type
    raw = json.dumps(body).encode()
    r = client.post("/v1/hooks/hubspot", data=raw, headers=v3_headers(raw))
    assert r.status_code == 200 and r.json["status"] == "ignored"
    assert r.json["reason"] == f"a workflow call for a {object_type} record; hrdd screens deals only"
    assert count_screenings(app) == 0


@pytest.mark.parametrize("object_type", ["DEAL", "deal", "0-3"])
def test_a_workflow_call_for_a_deal_is_screened_however_the_type_is_written(app, client, object_type):
    body = fixture_json("hubspot/workflow_deal.json")
    body["objectType"] = object_type
    raw = json.dumps(body).encode()
    assert client.post("/v1/hooks/hubspot", data=raw, headers=v3_headers(raw)).json["status"] == "screened"


def test_a_retried_workflow_call_answers_with_the_deals_gate_now(app, client, auth_headers):
    body = fixture_bytes("hubspot/workflow_deal.json")
    first = client.post("/v1/hooks/hubspot", data=body, headers=v3_headers(body)).json
    assert first["status"] == "screened" and first["gate"] == "release_with_conditions"
    # Meanwhile the deal is screened again through the API (say an integration user's call) on Egypt facts.
    egypt = fixture_json("transaction_egypt_biometric.json")
    egypt["reference"] = {"system": "hubspot", "object_type": "deal", "object_id": "19184211870"}
    newer = client.post("/v1/screenings", json=egypt, headers=auth_headers("crm")).json
    assert newer["gate"] == "hold"
    # HubSpot timed out on the first call and retries it: the workflow must branch on "hold", not "release".
    retry = client.post("/v1/hooks/hubspot", data=body, headers=v3_headers(body)).json
    assert retry["replayed"] is True and retry["screening_id"] == first["screening_id"]
    assert retry["gate"] == "hold" and retry["superseded_by"] == newer["id"]
    assert retry["hold_reasons"] and count_screenings(app) == 2


def test_a_timestamp_from_the_future_is_named_as_a_clock_problem(client):
    body = fixture_bytes("hubspot/workflow_deal.json")
    ahead = client.post("/v1/hooks/hubspot", data=body,
                        headers=v3_headers(body, stamp=int(time.time() * 1000) + 10 * 60 * 1000))
    assert ahead.status_code == 401 and "ahead of this server's clock" in ahead.json["message"]
    old = client.post("/v1/hooks/hubspot", data=body,
                      headers=v3_headers(body, stamp=int(time.time() * 1000) - 10 * 60 * 1000))
    assert old.status_code == 401 and "more than 5 minutes old" in old.json["message"]
