"""Salesforce Outbound Messages: allowlisted orgs, SOAP Ack, dedup on notification id, holds, write-back."""

from __future__ import annotations

import pytest

from tests.adapter_support import FakeServer, count_screenings, deliveries, fixture_bytes, outbox_rows

ORG = "00D5e000000KQ2eEAG"
XML = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
TOKEN = "s3cret-path-token"


@pytest.fixture
def app_config(app_config):
    app_config["HRDD_ADAPTERS"] = {"adapters": {"salesforce": {"organization_ids": [ORG[:15]], "token": TOKEN}}}
    return app_config


def post(client, body: bytes, query: str = f"?token={TOKEN}"):
    return client.post(f"/v1/hooks/salesforce{query}", data=body, headers=XML)


def test_batch_is_acknowledged_and_each_notification_screened_or_held(app, client):
    r = post(client, fixture_bytes("salesforce/opportunity_batch.xml"))
    assert r.status_code == 200 and r.mimetype == "text/xml"
    assert b"<Ack>true</Ack>" in r.data and b"notificationsResponse" in r.data
    rows = {d["object_id"]: d for d in deliveries(app, "salesforce")}
    assert len(rows) == 3
    egypt = rows["0065e00000BvRk1AAF"]
    assert egypt["status"] == "screened" and egypt["stage"] == "quote"
    assert egypt["delivery_id"] == f"{ORG}:04l5e00000Gx7QzAAJ"
    stored = app.extensions["hrdd"].store.get_screening(egypt["screening_id"])
    txn = stored["transaction"]
    assert txn["reference"] == {"system": "salesforce", "object_type": "Opportunity",
                                "object_id": "0065e00000BvRk1AAF"}
    assert txn["parties"][0]["name"] == "Nile Integrated Systems"
    assert txn["items"][0]["capabilities"] == ["biometric_identification"]
    assert txn["answers"] == {"past_misuse": "unknown", "end_user_disclosed": "yes"}
    assert stored["decision"] == "escalate"
    norway = rows["0065e00000BvRk2AAF"]
    assert norway["status"] == "screened" and norway["stage"] == "opportunity"
    assert app.extensions["hrdd"].store.get_screening(norway["screening_id"])["transaction"]["end_user"][
        "country"] == "NO"
    # The third lacks the end-user country: recorded, held, and the reason names the vendor field.
    missing = rows["0065e00000BvRk3AAF"]
    assert missing["status"] == "invalid"
    assert "end_user.country (vendor field HRDD_End_User_Country__c)" in missing["reason"]
    assert count_screenings(app) == 2


def test_replayed_message_gets_the_same_ack_and_no_second_screening(app, client):
    body = fixture_bytes("salesforce/opportunity_batch.xml")
    first = post(client, body)
    again = post(client, body)
    assert first.data == again.data
    assert count_screenings(app) == 2
    assert len(deliveries(app, "salesforce")) == 3


def test_unknown_organization_is_refused_with_a_soap_fault(app, client):
    body = fixture_bytes("salesforce/opportunity_batch.xml").replace(ORG.encode(), b"00D000000000001AAA")
    r = post(client, body)
    assert r.status_code == 401 and b"<faultstring>" in r.data and b"not on the allowlist" in r.data
    assert count_screenings(app) == 0 and deliveries(app, "salesforce") == []


def test_the_endpoint_token_is_required_even_from_an_allowlisted_org(app, client):
    body = fixture_bytes("salesforce/opportunity_batch.xml")
    for query in ("", "?token=", "?token=wrong", f"?token={TOKEN}x"):
        r = post(client, body, query)
        assert r.status_code == 401 and b"token in the endpoint URL is missing or wrong" in r.data
    assert count_screenings(app) == 0 and deliveries(app, "salesforce") == []
    assert post(client, body).status_code == 200


@pytest.mark.parametrize("token", [None, "", "  "])
def test_the_app_refuses_to_start_without_a_salesforce_token(app_config, token):
    from hrdd.adapters.config import ConfigError
    from server import create_app

    salesforce = app_config["HRDD_ADAPTERS"]["adapters"]["salesforce"]
    salesforce.pop("token")
    if token is not None:
        salesforce["token"] = token
    with pytest.raises(ConfigError, match=r"adapters\.salesforce\.token \(HRDD_ADAPTER_SALESFORCE_TOKEN\)"):
        create_app(app_config)


def test_a_switched_off_salesforce_adapter_needs_no_token(app_config):
    from server import create_app

    app_config["HRDD_ADAPTERS"]["adapters"]["salesforce"] = {"enabled": False, "organization_ids": [ORG[:15]]}
    r = post(create_app(app_config).test_client(), fixture_bytes("salesforce/opportunity_batch.xml"))
    assert r.status_code == 503


@pytest.mark.parametrize("body, reason", [
    (b"<soapenv:Envelope", b"not well-formed XML"),
    (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>', b"DOCTYPE"),
    (b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body/></soapenv:Envelope>',
     b"no soapenv:Body/notifications"),
])
def test_unparseable_payloads_get_400_with_the_reason(client, body, reason):
    r = post(client, body)
    assert r.status_code == 400 and reason in r.data


def test_notification_without_id_is_a_400(client):
    body = fixture_bytes("salesforce/opportunity_batch.xml").replace(b"<Id>04l5e00000Gx7QzAAJ</Id>", b"")
    r = post(client, body)
    assert r.status_code == 400 and b"Notification 1: Id is missing" in r.data


def test_decisions_and_holds_are_written_back_to_the_opportunity(app_config):
    from hrdd.adapters import outbox
    from hrdd.adapters.config import settings_for
    from server import create_app

    routes = {}
    for object_id in ("0065e00000BvRk1AAF", "0065e00000BvRk2AAF", "0065e00000BvRk3AAF"):
        routes[("PATCH", f"/services/data/v61.0/sobjects/Opportunity/{object_id}")] = (204, b"")
    with FakeServer(routes) as fake:
        app_config["HRDD_ADAPTERS"]["writeback"] = {"salesforce": {
            "url": fake.url + "/services/data/v61.0/sobjects/{object_type}/{object_id}",
            "access_token": "00Dxx!token-value"}}
        app = create_app(app_config)
        post(app.test_client(), fixture_bytes("salesforce/opportunity_batch.xml"))
        assert len(outbox_rows(app, "pending")) == 3
        with app.app_context():
            counts = outbox.deliver_due(app.extensions["hrdd"], settings_for(app))
        assert counts == {"delivered": 3, "retrying": 0, "failed": 0}
        sent = {r["path"].rsplit("/", 1)[-1]: r for r in fake.requests}
        import json

        egypt = json.loads(sent["0065e00000BvRk1AAF"]["body"])
        assert egypt["HRDD_Gate__c"] == "hold" and egypt["HRDD_Decision__c"] == "escalate"
        assert egypt["HRDD_Screening_Id__c"].startswith("scr_")
        assert sent["0065e00000BvRk1AAF"]["headers"]["authorization"] == "Bearer 00Dxx!token-value"
        held = json.loads(sent["0065e00000BvRk3AAF"]["body"])
        assert held["HRDD_Gate__c"] == "hold" and "HRDD_End_User_Country__c" in held["HRDD_Reason__c"]
        assert outbox_rows(app, "pending") == []
        # What was sent is kept, without the token.
        record = outbox_rows(app, "delivered")[0]["sent"]
        assert record["status"] == 204 and "token-value" not in str(record)


def test_quote_and_order_of_one_opportunity_are_one_deal(app_config, auth_headers):
    from server import create_app

    app_config["HRDD_ADAPTERS"]["writeback"] = {"salesforce": {
        "url": "http://127.0.0.1:9/services/data/v61.0/sobjects/{object_type}/{object_id}"}}
    app = create_app(app_config)
    client = app.test_client()
    post(client, fixture_bytes("salesforce/quote.xml"))
    post(client, fixture_bytes("salesforce/order.xml"))
    quote, order = (d["outcome"] for d in deliveries(app, "salesforce"))
    assert quote["stage"] == "quote" and order["stage"] == "order"
    assert order["transaction_id"] == quote["transaction_id"]
    record = app.extensions["hrdd"].store.get_transaction(order["transaction_id"])
    assert record["reference"] == {"system": "salesforce", "object_type": "Opportunity",
                                   "object_id": "0065e00000BvRk1AAF"}
    assert order["gate"] == "hold"
    assert any(r.startswith(f"material change since the quote ({quote['screening_id']}): new party: consignee "
                            "'Nile Integrated Systems Cairo' (EG)") for r in order["hold_reasons"])
    # The gates are written to the Quote and the Order that were delivered, not to the Opportunity.
    assert [(r["object_type"], r["object_id"]) for r in outbox_rows(app)] == [
        ("Quote", "0Q05e000000MyQ1CAK"), ("Order", "8015e000002Hk7QAAS")]


def test_quote_without_opportunity_id_is_its_own_deal(app):
    body = fixture_bytes("salesforce/quote.xml").replace(
        b"<sf:OpportunityId>0065e00000BvRk1AAF</sf:OpportunityId>", b"")
    post(app.test_client(), body)
    outcome = deliveries(app, "salesforce")[0]["outcome"]
    record = app.extensions["hrdd"].store.get_transaction(outcome["transaction_id"])
    assert record["reference"]["object_type"] == "Quote"
