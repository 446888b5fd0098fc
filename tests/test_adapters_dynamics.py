"""Dynamics 365 / Dataverse: header or code authentication, RemoteExecutionContext parsing, dedup."""

from __future__ import annotations

import json

import pytest

from tests.adapter_support import FakeServer, count_screenings, deliveries, fixture_bytes

KEY = "dv-3f8a1c5e9b"
H = {"Content-Type": "application/json", "x-hrdd-key": KEY}


@pytest.fixture
def app_config(app_config):
    app_config["HRDD_ADAPTERS"] = {"adapters": {"dynamics": {"auth_header": "x-hrdd-key", "auth_key": KEY}}}
    return app_config


def test_create_context_is_screened_with_lookups_labels_and_money(app, client):
    r = client.post("/v1/hooks/dynamics", data=fixture_bytes("dynamics/opportunity_create.json"), headers=H)
    assert r.status_code == 202
    outcome = r.json["results"][0]
    assert outcome["status"] == "screened" and outcome["stage"] == "quote"  # salesstage "Propose"
    assert outcome["delivery_id"] == "1a14c3ec-9c50-ef11-bfe3-00224802dbb1:3d1feef9-604d-ef11-bfe3-6045bd03d9d8"
    txn = app.extensions["hrdd"].store.get_screening(outcome["screening_id"])["transaction"]
    assert txn["end_user"] == {"name": "Directorate of Public Security", "country": "EG", "type": "government",
                               "sector": "law_enforcement"}
    assert txn["parties"][0]["name"] == "Nile Integrated Systems"  # EntityReference Name
    assert txn["items"][0]["unit_price"] == 250000.0  # Money


def test_update_with_post_image_moves_the_deal_to_order(app, client):
    client.post("/v1/hooks/dynamics", data=fixture_bytes("dynamics/opportunity_create.json"), headers=H)
    r = client.post("/v1/hooks/dynamics", data=fixture_bytes("dynamics/opportunity_update_postimage.json"), headers=H)
    outcome = r.json["results"][0]
    assert outcome["status"] == "screened" and outcome["stage"] == "order"
    assert count_screenings(app) == 2
    assert len({d["transaction_id"] for d in deliveries(app, "dynamics")}) == 1


def test_quote_and_order_of_an_opportunity_are_its_deal(app, client, auth_headers):
    opportunity = client.post("/v1/hooks/dynamics", data=fixture_bytes("dynamics/opportunity_create.json"),
                              headers=H).json["results"][0]
    quote = client.post("/v1/hooks/dynamics", data=fixture_bytes("dynamics/quote_create.json"),
                        headers=H).json["results"][0]
    order = client.post("/v1/hooks/dynamics", data=fixture_bytes("dynamics/salesorder_create.json"),
                        headers=H).json["results"][0]
    assert [o["status"] for o in (opportunity, quote, order)] == ["screened"] * 3
    # One deal, keyed on the opportunity the quote and the order name in their opportunityid lookup.
    assert opportunity["transaction_id"] == quote["transaction_id"] == order["transaction_id"]
    deal = client.get(f"/v1/transactions/{order['transaction_id']}", headers=auth_headers("reviewer")).json
    assert deal["reference"] == {"system": "dynamics", "object_type": "opportunity",
                                 "object_id": "3d1feef9-604d-ef11-bfe3-6045bd03d9d8"}
    assert [s["stage"] for s in deal["screenings"]] == ["order", "quote", "quote"]
    # The order names another end-user than the quote: held for the change, on the one case of the deal.
    assert order["gate"] == "hold"
    change = [r for r in order["hold_reasons"] if r.startswith("material change since the quote")]
    assert change and "to 'National Security Agency'" in change[0]
    cases = client.get("/v1/cases?status=all", headers=auth_headers("reviewer")).json["cases"]
    assert {c["transaction_id"] for c in cases} == {quote["transaction_id"]}


def test_a_quote_without_an_opportunity_is_its_own_deal(app, client):
    body = json.loads(fixture_bytes("dynamics/quote_create.json"))
    target = body["InputParameters"][0]["value"]
    target["Attributes"] = [a for a in target["Attributes"] if a["key"] != "opportunityid"]
    outcome = client.post("/v1/hooks/dynamics", data=json.dumps(body).encode(), headers=H).json["results"][0]
    txn = app.extensions["hrdd"].store.get_screening(outcome["screening_id"])["transaction"]
    assert txn["reference"] == {"system": "dynamics", "object_type": "quote",
                                "object_id": "8b7e2a41-7f51-ef11-bfe3-6045bd03d9d8"}


def test_a_burst_of_contexts_each_screened_once_even_when_redelivered(app, client):
    bodies = [fixture_bytes("dynamics/opportunity_create.json"),
              fixture_bytes("dynamics/opportunity_update_postimage.json")]
    other = json.loads(bodies[0])
    other.update(OperationId="0c0c0c0c-0000-4000-8000-000000000001",
                 PrimaryEntityId="11111111-2222-4333-8444-555555555555")
    bodies.append(json.dumps(other).encode())
    for body in bodies + bodies:  # Dataverse retries asynchronous steps: every context arrives twice
        assert client.post("/v1/hooks/dynamics", data=body, headers=H).status_code == 202
    assert count_screenings(app) == 3
    assert len(deliveries(app, "dynamics")) == 3


def test_wrong_or_missing_key_is_401(client):
    body = fixture_bytes("dynamics/opportunity_create.json")
    assert client.post("/v1/hooks/dynamics", data=body, headers={"x-hrdd-key": "nope"}).status_code == 401
    assert client.post("/v1/hooks/dynamics", data=body).status_code == 401


def test_webhook_key_in_code_parameter(app_config):
    from server import create_app

    app_config["HRDD_ADAPTERS"] = {"adapters": {"dynamics": {"auth_key": KEY}}}
    client = create_app(app_config).test_client()
    body = fixture_bytes("dynamics/opportunity_create.json")
    assert client.post("/v1/hooks/dynamics?code=wrong", data=body).status_code == 401
    assert client.post(f"/v1/hooks/dynamics?code={KEY}", data=body).status_code == 202


def test_context_missing_ids_is_400_and_missing_fields_are_held(app, client):
    context = json.loads(fixture_bytes("dynamics/opportunity_create.json"))
    del context["OperationId"]
    r = client.post("/v1/hooks/dynamics", data=json.dumps(context), headers=H)
    assert r.status_code == 400 and "OperationId" in r.json["message"]
    context = json.loads(fixture_bytes("dynamics/opportunity_create.json"))
    attrs = context["InputParameters"][0]["value"]["Attributes"]
    context["InputParameters"][0]["value"]["Attributes"] = [a for a in attrs if a["key"] != "hrdd_enduser_country"]
    r = client.post("/v1/hooks/dynamics", data=json.dumps(context), headers=H)
    assert r.status_code == 202
    outcome = r.json["results"][0]
    assert outcome["status"] == "invalid" and outcome["gate"] == "hold"
    assert "hrdd_enduser_country" in outcome["reason"]


def test_context_trimmed_for_size_is_read_from_the_web_api(app_config):
    from server import create_app

    row = {"@odata.etag": 'W/"1"', "opportunityid": "3d1feef9-604d-ef11-bfe3-6045bd03d9d8",
           "hrdd_enduser": "Fjord Retail AS", "hrdd_enduser_country": "NO", "hrdd_productcode": "ST-10",
           "hrdd_productname": "ArchiveBox 10", "hrdd_capabilities": "data_storage", "salesstage": 0,
           "salesstage@OData.Community.Display.V1.FormattedValue": "Qualify"}
    path = "/api/data/v9.2/opportunities(3d1feef9-604d-ef11-bfe3-6045bd03d9d8)"
    with FakeServer({("GET", path): (200, row)}) as fake:
        app_config["HRDD_ADAPTERS"]["adapters"]["dynamics"].update(api_base_url=fake.url, access_token="eyJ0")
        app = create_app(app_config)
        context = json.loads(fixture_bytes("dynamics/opportunity_create.json"))
        context["InputParameters"] = []
        r = app.test_client().post("/v1/hooks/dynamics", data=json.dumps(context),
                                   headers={**H, "x-ms-dynamics-msg-size-exceeded": "true"})
        assert fake.requests[0]["headers"]["authorization"] == "Bearer eyJ0"
        assert "$select=" in fake.requests[0]["url"]
    outcome = r.json["results"][0]
    assert outcome["status"] == "screened" and outcome["stage"] == "opportunity"
