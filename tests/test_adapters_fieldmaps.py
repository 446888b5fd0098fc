"""Field maps: an absent vendor field holds the deal, bad maps stop start-up, reasons name vendor fields."""

from __future__ import annotations

import json

import pytest

from tests.adapter_support import FakeServer, count_screenings, deliveries, fixture_bytes, fixture_json

ORG = "00D5e000000KQ2eEAG"
TOKEN = "s3cret-path-token"
XML = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
HIKVISION = b"Hangzhou Hikvision Digital Technology Co., Ltd."
EGYPT = "0065e00000BvRk1AAF"
TYPO_PARTY = [{"role": {"const": "distributor"}, "name": "HRDD_Distributer_Name__c",
               "country": "HRDD_Distributor_Country__c"}]


@pytest.fixture
def app_config(app_config):
    app_config["HRDD_ADAPTERS"] = {"adapters": {"salesforce": {"organization_ids": [ORG[:15]], "token": TOKEN}}}
    return app_config


def salesforce(app_config, **field_maps):
    from server import create_app

    app_config["HRDD_ADAPTERS"]["adapters"]["salesforce"]["field_maps"] = field_maps
    return create_app(app_config)


def hikvision_batch(object_type: str = "Opportunity") -> bytes:
    """The sample batch, its first deal distributed by a restricted Chinese party."""
    body = fixture_bytes("salesforce/opportunity_batch.xml").replace(b"Nile Integrated Systems", HIKVISION)
    body = body.replace(b"<sf:HRDD_Distributor_Country__c>AE", b"<sf:HRDD_Distributor_Country__c>CN")
    return body.replace(b'xsi:type="sf:Opportunity"', f'xsi:type="sf:{object_type}"'.encode())


def post(app, body: bytes):
    r = app.test_client().post(f"/v1/hooks/salesforce?token={TOKEN}", data=body, headers=XML)
    assert r.status_code == 200 and b"<Ack>true</Ack>" in r.data, r.data[:300]
    return {d["object_id"]: d for d in deliveries(app, "salesforce")}


def test_a_field_a_salesforce_message_leaves_out_reads_as_empty_not_as_a_hold(app):
    # Salesforce may leave a blank field out of an outbound message instead of sending xsi:nil: holding on
    # an absent field would hold every deal without a distributor. A misspelt map entry therefore reads as
    # empty for Salesforce (README, field maps); the vendors that send every field hold on it (below).
    body = hikvision_batch().replace(f"<sf:HRDD_Distributor_Name__c>{HIKVISION.decode()}</sf:HRDD_Distributor_Name__c>"
                                     .encode(), b"")
    row = post(app, body)[EGYPT]
    assert row["status"] == "screened"
    assert app.extensions["hrdd"].store.get_screening(row["screening_id"])["transaction"]["parties"] == []


def test_the_same_facts_with_the_default_map_block_the_deal(app):
    # A Quote's total is GrandTotal, which the default Quote map reads instead of Amount.
    rows = post(app, hikvision_batch("Quote").replace(b"sf:Amount", b"sf:GrandTotal"))
    stored = app.extensions["hrdd"].store.get_screening(rows[EGYPT]["screening_id"])
    assert stored["transaction"]["parties"][0]["name"] == HIKVISION.decode()
    assert stored["decision"] == "do_not_proceed" and stored["gate"] == "block"


def test_a_field_sent_as_nil_is_an_empty_field_not_a_hold(app):
    rows = post(app, fixture_bytes("salesforce/opportunity_batch.xml"))
    norway = rows["0065e00000BvRk2AAF"]
    assert norway["status"] == "screened"
    assert app.extensions["hrdd"].store.get_screening(norway["screening_id"])["transaction"]["parties"] == []


def test_a_property_hubspot_does_not_return_holds_the_deal(app_config):
    from hrdd_plugins.adapter_runtime import run_once

    from server import create_app

    app_config["HRDD_ADAPTERS"] = {"adapters": {"hubspot": {
        "client_secret": "s", "access_token": "pat", "field_maps": {"deal": {"parties": [
            {"role": {"const": "distributor"}, "name": "hrdd_distributer_name", "country": "hrdd_distributor_country"}]}}}}}
    app = create_app(app_config)
    from hrdd.adapters import pipeline
    from hrdd.adapters.events import VendorEvent

    deal = fixture_json("hubspot/deal_19184211867.json")
    routes = {("GET", "/crm/v3/objects/deals/19184211867"): (200, deal),
              ("POST", "/crm/v3/objects/line_items/batch/read"): (200, fixture_json("hubspot/line_items_batch_read.json"))}
    with FakeServer(routes) as fake, app.app_context():
        app.extensions["hrdd_adapters"]["adapters"]["hubspot"]["api_base_url"] = fake.url
        adapter = app.extensions["hrdd"].pm.hook.hrdd_webhook_adapter(name="hubspot", app=app)
        event = VendorEvent(delivery_id="1:2:19184211867", object_type="deal", object_id="19184211867")
        outcome = pipeline.receive_one(app.extensions["hrdd"], adapter, event, app.extensions["hrdd_adapters"],
                                       inline_thin=False)
        assert outcome["status"] == "queued"
        run_once(app)
    row = deliveries(app, "hubspot")[0]
    assert row["status"] == "invalid" and "vendor field hrdd_distributer_name is not in the record" in row["reason"]


def test_an_sap_order_without_a_ship_to_partner_is_screened_without_one(app_config):
    from server import create_app

    answer = json.loads(fixture_bytes("sap/a_salesorder.json").decode().replace("{id}", "1"))
    answer["d"]["to_Partner"]["results"] = [p for p in answer["d"]["to_Partner"]["results"]
                                            if p["PartnerFunction"] != "SH"]
    with FakeServer({("GET", "/sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder('1')"): (200, answer)}) as fake:
        app_config["HRDD_ADAPTERS"] = {"adapters": {"sap": {"bearer_token": "t", "api_base_url": fake.url}}}
        app = create_app(app_config)
        r = app.test_client().post("/v1/hooks/sap", data=fixture_bytes("sap/salesorder_created.json"), headers={
            "Authorization": "Bearer t", "Content-Type": "application/cloudevents+json"})
    outcome = r.json["results"][0]
    assert outcome["status"] == "screened", outcome
    assert app.extensions["hrdd"].store.get_screening(outcome["screening_id"])["transaction"]["parties"] == []


def test_an_sap_amount_with_a_decimal_comma_names_the_vendor_field(app_config):
    from server import create_app

    answer = json.loads(fixture_bytes("sap/a_salesorder.json").decode().replace("{id}", "1"))
    answer["d"]["to_Item"]["results"][0]["NetAmount"] = "250.000,00"
    with FakeServer({("GET", "/sap/opu/odata/sap/API_SALES_ORDER_SRV/A_SalesOrder('1')"): (200, answer)}) as fake:
        app_config["HRDD_ADAPTERS"] = {"adapters": {"sap": {"bearer_token": "t", "api_base_url": fake.url}}}
        r = create_app(app_config).test_client().post(
            "/v1/hooks/sap", data=fixture_bytes("sap/salesorder_created.json"),
            headers={"Authorization": "Bearer t", "Content-Type": "application/cloudevents+json"})
    outcome = r.json["results"][0]
    assert outcome["status"] == "invalid"
    assert ("field_maps.SalesOrder.items(line 1).unit_price (vendor field NetAmount): '250.000,00' is not a number"
            in outcome["reason"])


def test_empty_capabilities_name_the_vendor_field(app):
    body = fixture_bytes("salesforce/opportunity_batch.xml").replace(
        b"<sf:HRDD_Capabilities__c>biometric_identification</sf:HRDD_Capabilities__c>",
        b'<sf:HRDD_Capabilities__c xsi:nil="true"/>')
    held = post(app, body)[EGYPT]
    assert held["status"] == "invalid"
    assert "items.0.capabilities (vendor field HRDD_Capabilities__c, empty): Length must be" in held["reason"]


def test_a_closed_lost_opportunity_is_held_with_the_stage_in_salesforces_words(app):
    body = fixture_bytes("salesforce/opportunity_batch.xml").replace(b"Proposal/Price Quote", b"Closed Lost")
    held = post(app, body)[EGYPT]
    assert held["status"] == "invalid"
    assert held["reason"] == ("cannot screen: Salesforce StageName 'Closed Lost' is not a stage hrdd screens "
                              "(opportunity, quote, order, renewal, post_sale): map it in "
                              "field_maps.Opportunity.stage")


def test_a_closed_lost_hubspot_deal_is_held_with_the_stage_in_hubspots_words(app_config):
    from server import create_app
    from tests.test_adapters_hubspot import v3_headers

    app_config["HRDD_ADAPTERS"] = {"adapters": {"hubspot": {"client_secret": "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy"}}}
    body = fixture_json("hubspot/workflow_deal.json")
    body["properties"]["dealstage"]["value"] = "closedlost"
    raw = json.dumps(body).encode()
    r = create_app(app_config).test_client().post("/v1/hooks/hubspot", data=raw, headers=v3_headers(raw))
    assert r.json["status"] == "invalid" and r.json["gate"] == "hold"
    assert "HubSpot dealstage 'closedlost' is not a stage hrdd screens" in r.json["reason"]
    assert "field_maps.deal.stage" in r.json["reason"]


@pytest.mark.parametrize("yaml_map, message", [
    ("intended_use: {field: HRDD_Intended_Use__c, type: text}",
     "adapters.salesforce.field_maps.Opportunity.intended_use.type: unknown type 'text' "
     "(accepted: str, int, float, bool)"),
    ("items: {capabilities: {fiield: HRDD_Caps__c}}",
     "adapters.salesforce.field_maps.Opportunity.items.capabilities: unknown key(s) 'fiield' (accepted: field, "
     "const, values, default, split, type, lower, slug)"),
    ("end_user: {nationality: HRDD_Nat__c}",
     "adapters.salesforce.field_maps.Opportunity.end_user: 'nationality' is not a canonical field "
     "(accepted: name, country, type, sector)"),
    ("parties: [{role: {const: distributor}, name: {default: x}}]",
     "adapters.salesforce.field_maps.Opportunity.parties[0].name: needs field"),
])
def test_a_field_map_that_cannot_work_stops_start_up_naming_it(app_config, tmp_path, yaml_map, message):
    from hrdd.adapters.config import ConfigError
    from server import create_app

    path = tmp_path / "adapters.yaml"
    path.write_text(f"adapters:\n  salesforce:\n    token: {TOKEN}\n    organization_ids: [{ORG[:15]}]\n"
                    f"    field_maps:\n      Opportunity:\n        {yaml_map}\n")
    app_config.pop("HRDD_ADAPTERS")
    app_config["HRDD_ADAPTERS_FILE"] = str(path)
    with pytest.raises(ConfigError) as caught:
        create_app(app_config)
    assert str(caught.value).startswith(f"{path}: {message}")


def test_a_mapping_failure_holds_the_delivery_instead_of_a_500(app, monkeypatch):
    from hrdd.adapters import fieldmap

    def broken(*args, **kwargs):
        raise fieldmap.FieldMapError("field_map.intended_use: unknown type 'text' (use str, int, float or bool)")

    monkeypatch.setattr(fieldmap, "apply", broken)
    rows = post(app, fixture_bytes("salesforce/opportunity_batch.xml"))
    assert {row["status"] for row in rows.values()} == {"invalid"}
    assert "unknown type 'text'" in rows[EGYPT]["reason"] and count_screenings(app) == 0
