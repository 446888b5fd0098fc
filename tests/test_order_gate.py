"""The quote-to-order gate: each hold reason, the rider-executed record, and holds for unscreened events."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

import pytest

BERGEN = {
    "reference": {"system": "salesforce", "object_type": "Opportunity", "object_id": "0065e00000BERGEN"},
    "stage": "quote",
    "end_user": {"name": "Port Authority of Bergen", "country": "NO", "type": "government",
                 "sector": "civil_administration"},
    "parties": [{"role": "integrator", "name": "Vestland Systems", "country": "NO"}],
    "items": [{"sku": "CAM-4K", "name": "HarbourCam 4K", "capabilities": ["recording_devices"]}],
    "deployment_countries": ["NO"],
    "answers": {"past_misuse": "no", "exports_to_abusers": "no", "end_user_disclosed": "yes",
                "accepts_safeguards": "yes"},
}


def screen(client, headers, body, stage):
    body = copy.deepcopy(body)
    body["stage"] = stage
    r = client.post("/v1/screenings", json=body, headers=headers)
    assert r.status_code == 201, r.json
    return r.json


def gate(client, headers, txn):
    r = client.get(f"/v1/transactions/{txn}", headers=headers)
    assert r.status_code == 200
    return r.json["gate"], r.json["hold_reasons"]


def executed(client, headers, txn, **body):
    # Signed now: after the screenings so far, as a rider generated from one of them is.
    payload = {"executed_by": "Ingrid Berg (contracts)", "executed_at": datetime.now(UTC).isoformat(), **body}
    return client.post(f"/v1/transactions/{txn}/rider-executed", json=payload, headers=headers)


@pytest.fixture
def crm(auth_headers):
    return auth_headers("crm")


def test_order_holds_until_the_rider_is_recorded_as_executed(client, crm, auth_headers):
    quote = screen(client, crm, BERGEN, "quote")
    assert quote["decision"] == "proceed_with_safeguards" and "rider_executed" in quote["conditions"]
    assert gate(client, crm, quote["transaction_id"])[0] == "release_with_conditions"  # quotes are not held
    order = screen(client, crm, BERGEN, "order")
    assert order["gate"] == "hold"
    state, reasons = gate(client, crm, order["transaction_id"])
    assert state == "hold" and len(reasons) == 1
    assert "rider required by screening" in reasons[0] and order["id"] in reasons[0]
    signed = datetime.now(UTC).isoformat()
    r = executed(client, auth_headers("contracts"), order["transaction_id"], executed_at=signed,
                 document_ref="DocuSign 5f1c-2b")
    assert r.status_code == 201
    assert r.json["executed_by"] == "Ingrid Berg (contracts)" and r.json["executed_at"].startswith(signed[:19])
    assert r.json["recorded_by"] == "test-contracts"
    assert r.json["gate"] == "release_with_conditions" and r.json["hold_reasons"] == []
    assert gate(client, crm, order["transaction_id"]) == ("release_with_conditions", [])


@pytest.mark.parametrize("change, expected", [
    (lambda t: t["parties"].append({"role": "distributor", "name": "Bosphorus Trade", "country": "TR"}),
     ["new party: distributor 'Bosphorus Trade' (TR)", "new country: TR"]),
    (lambda t: t["end_user"].update(name="Norwegian Police Service", sector="law_enforcement"),
     ["end-user changed from 'Port Authority of Bergen' (NO) to 'Norwegian Police Service' (NO)"]),
    (lambda t: t["items"].append({"sku": "DR-1", "name": "SkyEye", "capabilities": ["drones"]}),
     ["new item: DR-1 (drones)"]),
    (lambda t: t["deployment_countries"].append("SE"), ["new country: SE"]),
    (lambda t: t["items"].append({"sku": "CAM-4K", "name": "HarbourCam 4K with drone", "capabilities": ["drones"]}),
     ["item CAM-4K capabilities changed from ['recording_devices'] to ['drones', 'recording_devices']"]),
])
def test_material_change_since_the_quote_holds_the_order_and_says_which(client, crm, auth_headers, change, expected):
    quote = screen(client, crm, BERGEN, "quote")
    executed(client, auth_headers("contracts"), quote["transaction_id"])
    changed = copy.deepcopy(BERGEN)
    change(changed)
    order = screen(client, crm, changed, "order")
    state, reasons = gate(client, crm, order["transaction_id"])
    assert state in ("hold", "block")
    material = [r for r in reasons if r.startswith("material change since the quote")]
    assert len(material) == 1 and quote["id"] in material[0]
    for words in expected:
        assert words in material[0]


def test_the_end_user_spelt_differently_is_no_material_change(client, crm, auth_headers):
    # The rider's coverage, the answers on record and grievances already took them for one end-user.
    quote = screen(client, crm, BERGEN, "quote")
    executed(client, auth_headers("contracts"), quote["transaction_id"])
    respelt = copy.deepcopy(BERGEN)
    respelt["end_user"]["name"] = "The Port Authority of  Bergen."
    order = screen(client, crm, respelt, "order")
    assert gate(client, crm, order["transaction_id"]) == ("release_with_conditions", [])


def test_a_party_spelt_differently_is_no_material_change_but_another_country_or_role_is(client, crm, auth_headers):
    quote = screen(client, crm, BERGEN, "quote")
    executed(client, auth_headers("contracts"), quote["transaction_id"])
    respelt = copy.deepcopy(BERGEN)
    respelt["parties"][0]["name"] = "Vestland Systems AS."
    order = screen(client, crm, respelt, "order")
    assert gate(client, crm, order["transaction_id"]) == ("release_with_conditions", [])
    for field, value in (("country", "SE"), ("role", "distributor")):
        moved = copy.deepcopy(respelt)
        moved["parties"][0][field] = value
        screen(client, crm, moved, "order")
        state, reasons = gate(client, crm, order["transaction_id"])
        (material,) = [r for r in reasons if r.startswith("material change since the quote")]
        assert state == "hold" and "new party: " in material
        assert "party removed: integrator 'Vestland Systems' (NO)" in material


def test_a_party_country_becoming_a_deployment_country_holds_the_order(client, crm, auth_headers):
    with_consignee = copy.deepcopy(BERGEN)
    with_consignee["parties"].append({"role": "consignee", "name": "Malmo Freight", "country": "SE"})
    quote = screen(client, crm, with_consignee, "quote")
    executed(client, auth_headers("contracts"), quote["transaction_id"])
    deployed = copy.deepcopy(with_consignee)
    deployed["deployment_countries"] = ["NO", "SE"]
    order = screen(client, crm, deployed, "order")
    state, reasons = gate(client, crm, order["transaction_id"])
    (material,) = [r for r in reasons if r.startswith("material change since the quote")]
    assert state == "hold" and "new deployment country: SE" in material and "new country" not in material


def test_requoting_on_the_new_facts_clears_the_material_change_hold(client, crm, auth_headers):
    screen(client, crm, BERGEN, "quote")
    changed = copy.deepcopy(BERGEN)
    changed["deployment_countries"] = ["NO", "SE"]
    order = screen(client, crm, changed, "order")
    executed(client, auth_headers("contracts"), order["transaction_id"])
    assert any("material change" in r for r in gate(client, crm, order["transaction_id"])[1])
    screen(client, crm, changed, "quote")
    again = screen(client, crm, changed, "order")
    assert gate(client, crm, again["transaction_id"]) == ("release_with_conditions", [])


def test_both_holds_at_once_are_both_listed(client, crm):
    screen(client, crm, BERGEN, "quote")
    changed = copy.deepcopy(BERGEN)
    changed["items"][0]["sku"] = "CAM-8K"
    order = screen(client, crm, changed, "order")
    reasons = gate(client, crm, order["transaction_id"])[1]
    assert len(reasons) == 2 and "rider" in reasons[0] and "new item: CAM-8K" in reasons[1]


def test_rider_executed_needs_the_contracts_role_and_valid_fields(client, crm, auth_headers):
    order = screen(client, crm, BERGEN, "order")
    txn = order["transaction_id"]
    assert executed(client, {}, txn).status_code == 401
    assert executed(client, crm, txn).status_code == 403
    contracts = auth_headers("contracts")
    future = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    r = executed(client, contracts, txn, executed_at=future)
    assert r.status_code == 422 and "executed_at" in r.json["message"]
    r = client.post(f"/v1/transactions/{txn}/rider-executed", json={"executed_at": "2026-11-20T10:00:00Z"},
                    headers=contracts)
    assert r.status_code == 422 and "executed_by" in r.json["message"]
    r = executed(client, contracts, txn, screening_id="scr_NOTTHISONE")
    assert r.status_code == 422 and "screening_id" in r.json["message"]
    another = screen(client, crm, {**BERGEN, "reference": {**BERGEN["reference"], "object_id": "OTHER"}}, "order")
    r = executed(client, contracts, txn, screening_id=another["id"])
    assert r.status_code == 422 and f"not a screening of transaction {txn}" in str(r.json["errors"])
    assert executed(client, contracts, "txn_UNKNOWN").status_code == 404
    assert gate(client, crm, txn)[0] == "hold"


def test_an_unscreened_crm_event_holds_the_deal_with_its_reason(app, client, crm):
    order = screen(client, crm, {**BERGEN, "reference": {"system": "odoo", "object_type": "sale.order",
                                                         "object_id": "42"}}, "quote")
    app.config["HRDD_ADAPTERS"] = {"adapters": {"odoo": {"token": "t0k3n"}}}
    app.extensions.pop("hrdd_adapters", None)  # settings are read again on the next request
    r = client.post("/v1/hooks/odoo/t0k3n", json={"_model": "sale.order", "_id": 42, "state": "sale",
                                                  "x_hrdd_end_user": "Port Authority of Bergen"})
    assert r.json["results"][0]["status"] == "invalid"
    state, reasons = gate(client, crm, order["transaction_id"])
    assert state == "hold"
    assert any("odoo event for this deal" in r and "x_hrdd_end_user_country" in r for r in reasons)


def test_a_rider_executed_for_another_end_user_does_not_release_the_order(client, crm, auth_headers):
    quote = screen(client, crm, BERGEN, "quote")
    signed = datetime.now(UTC).isoformat()
    record = executed(client, auth_headers("contracts"), quote["transaction_id"], executed_at=signed).json
    assert record["screening_id"] == quote["id"]
    # Re-quoted for another end-user (no material change since that quote), then ordered.
    changed = copy.deepcopy(BERGEN)
    changed["end_user"].update(name="Port of Stavanger")
    requote = screen(client, crm, changed, "quote")
    order = screen(client, crm, changed, "order")
    state, reasons = gate(client, crm, order["transaction_id"])
    assert state == "hold" and len(reasons) == 1
    assert reasons[0].startswith(f"the contract rider executed {signed[:19]}") and quote["id"] in reasons[0]
    assert "end-user changed from 'Port Authority of Bergen' (NO) to 'Port of Stavanger' (NO)" in reasons[0]
    assert f"GET /v1/screenings/{order['id']}/rider.docx" in reasons[0]
    # The new quote's rider, executed and recorded, covers the order.
    r = executed(client, auth_headers("contracts"), order["transaction_id"], screening_id=requote["id"])
    assert r.status_code == 201 and r.json["gate"] == "release_with_conditions"


def test_a_rider_without_a_clause_the_order_now_requires_does_not_release_it(client, crm, auth_headers):
    quote = screen(client, crm, BERGEN, "quote")
    executed(client, auth_headers("contracts"), quote["transaction_id"])
    # Same facts, but the end-user is no longer disclosed: the rider now needs audit, diversion controls
    # and training clauses the executed one does not have.
    changed = copy.deepcopy(BERGEN)
    changed["answers"]["end_user_disclosed"] = "no"
    screen(client, crm, changed, "quote")
    order = screen(client, crm, changed, "order")
    reasons = gate(client, crm, order["transaction_id"])[1]  # also escalated now: RF-4.1 and its case
    rider = next(r for r in reasons if "does not cover screening" in r)
    assert "clause audit is not in it; clause diversion-controls is not in it; clause training is not in it" in rider


def test_a_rider_naming_more_than_the_order_still_covers_it(client, crm, auth_headers):
    wider = copy.deepcopy(BERGEN)
    wider["items"].append({"sku": "CAM-2", "name": "HarbourCam 2", "capabilities": ["recording_devices"]})
    quote = screen(client, crm, wider, "quote")
    executed(client, auth_headers("contracts"), quote["transaction_id"])
    screen(client, crm, BERGEN, "quote")
    order = screen(client, crm, BERGEN, "order")
    assert gate(client, crm, order["transaction_id"]) == ("release_with_conditions", [])


def test_an_execution_recorded_before_executions_named_their_screening_counts_for_the_screening_then(
        app, client, crm, auth_headers):
    import sqlalchemy as sa

    from hrdd.adapters.tables import rider_executions

    quote = screen(client, crm, BERGEN, "quote")
    executed(client, auth_headers("contracts"), quote["transaction_id"])
    with app.extensions["hrdd"].store.engine.begin() as conn:  # as rows recorded without a screening id
        conn.execute(sa.update(rider_executions).values(screening_id=None))
    order = screen(client, crm, BERGEN, "order")
    assert gate(client, crm, order["transaction_id"]) == ("release_with_conditions", [])
    changed = copy.deepcopy(BERGEN)
    changed["end_user"].update(name="Port of Stavanger")
    screen(client, crm, changed, "quote")
    order = screen(client, crm, changed, "order")
    assert "does not cover screening" in gate(client, crm, order["transaction_id"])[1][0]


def test_a_rider_signed_before_the_deal_grew_is_for_the_screening_then(client, crm, auth_headers):
    quote = screen(client, crm, BERGEN, "quote")
    signed = datetime.now(UTC).isoformat()
    grown = copy.deepcopy(BERGEN)
    grown["parties"].append({"role": "distributor", "name": "Bosphorus Trade", "country": "TR"})
    screen(client, crm, grown, "order")
    # Recorded after the order was screened, without naming a screening: it is the quote's rider.
    record = executed(client, auth_headers("contracts"), quote["transaction_id"], executed_at=signed).json
    assert record["screening_id"] == quote["id"]
    screen(client, crm, grown, "quote")
    order = screen(client, crm, grown, "order")
    reasons = gate(client, crm, order["transaction_id"])[1]
    assert len(reasons) == 1 and "new party: distributor 'Bosphorus Trade' (TR); new country: TR" in reasons[0]


@pytest.mark.parametrize("change, covered, gap", [
    (lambda t: t["items"][0].update(capabilities=["recording_devices"]), True, None),  # a capability removed
    (lambda t: t["end_user"].update(name="Port Authority of Bergen."), True, None),
    (lambda t: t["parties"].clear(), True, None),
    (lambda t: t["end_user"].update(sector="law_enforcement"), False,
     "end-user changed from government/civil_administration to government/law_enforcement"),
    (lambda t: t["items"][0]["capabilities"].append("location_tracking"), False, "item CAM-4K adds location_tracking"),
])
def test_what_an_executed_rider_covers(client, crm, auth_headers, change, covered, gap):
    wide = copy.deepcopy(BERGEN)
    wide["items"][0]["capabilities"] = ["recording_devices", "data_storage"]
    quote = screen(client, crm, wide, "quote")
    executed(client, auth_headers("contracts"), quote["transaction_id"], screening_id=quote["id"])
    changed = copy.deepcopy(wide)
    change(changed)
    screen(client, crm, changed, "quote")
    order = screen(client, crm, changed, "order")
    reasons = [r for r in gate(client, crm, order["transaction_id"])[1] if "contract rider" in r]
    assert (reasons == []) is covered, reasons
    if gap:
        assert gap in reasons[0]


def dry(client, headers, body, stage):
    body = copy.deepcopy(body)
    body["stage"] = stage
    r = client.post("/v1/screenings?dry_run=true", json=body, headers=headers)
    assert r.status_code == 200 and r.json["dry_run"] is True, r.json
    return r.json


def test_a_dry_run_at_order_previews_the_gate_the_order_would_get(app, client, crm, auth_headers):
    store = app.extensions["hrdd"].store
    # A deal never stored: its order would be held for the rider.
    preview = dry(client, crm, BERGEN, "order")
    assert (preview["engine_gate"], preview["gate"]) == ("release_with_conditions", "hold")
    assert preview["hold_reasons"] == [
        "the contract rider this order requires is not recorded as executed (the deal is not stored yet)"]
    quote = screen(client, crm, BERGEN, "quote")
    preview = dry(client, crm, BERGEN, "order")
    assert preview["gate"] == "hold" and "not recorded as executed" in preview["hold_reasons"][0]
    assert f"/v1/transactions/{quote['transaction_id']}/rider-executed" in preview["hold_reasons"][0]
    assert executed(client, auth_headers("contracts"), quote["transaction_id"],
                    executed_at=datetime.now(UTC).isoformat()).status_code == 201
    preview = dry(client, crm, BERGEN, "order")
    assert (preview["gate"], preview["hold_reasons"]) == ("release_with_conditions", [])
    # A new distributor since the quote: the rider does not name it and the facts changed.
    changed = copy.deepcopy(BERGEN)
    changed["parties"].append({"role": "distributor", "name": "Bosphorus Trade", "country": "TR"})
    preview = dry(client, crm, changed, "order")
    assert preview["gate"] == "hold" and len(preview["hold_reasons"]) == 2
    assert "would not cover this order" in preview["hold_reasons"][0]
    assert preview["hold_reasons"][1].startswith(f"material change since the quote ({quote['id']}): new party: "
                                                 "distributor 'Bosphorus Trade' (TR)")
    # The previews stored nothing: the deal still has its one screening, and the stored order agrees.
    assert len(store.screenings_of(quote["transaction_id"])) == 1
    order = screen(client, crm, changed, "order")
    assert order["gate"] == "hold" and len(order["hold_reasons"]) == 2


def test_an_execution_dated_before_the_deals_first_screening_must_name_its_screening(client, crm, auth_headers):
    quote = screen(client, crm, BERGEN, "quote")
    order = screen(client, crm, BERGEN, "order")
    txn, contracts = order["transaction_id"], auth_headers("contracts")
    r = executed(client, contracts, txn, executed_at="2020-01-01T00:00:00Z")
    assert r.status_code == 422
    message = r.json["message"]
    assert message.startswith("executed_at 2020-01-01T00:00:00") and "executed_at" in r.json["errors"]
    assert f"before the deal's first screening {quote['id']} ({quote['created_at'][:19]}" in message
    assert "give screening_id, the screening whose rider was executed" in message
    assert gate(client, crm, txn)[0] == "hold"
    # Naming the screening whose rider was signed (outside hrdd, before the deal was screened) is accepted.
    r = executed(client, contracts, txn, executed_at="2020-01-01T00:00:00Z", screening_id=order["id"])
    assert r.status_code == 201 and r.json["screening_id"] == order["id"]
    assert r.json["gate"] == "release_with_conditions"


def test_an_execution_dated_before_the_screening_it_names_while_an_older_one_existed_is_refused(
        client, crm, auth_headers):
    quote = screen(client, crm, BERGEN, "quote")
    signed = datetime.now(UTC).isoformat()
    grown = copy.deepcopy(BERGEN)
    grown["parties"].append({"role": "distributor", "name": "Bosphorus Trade", "country": "TR"})
    order = screen(client, crm, grown, "order")
    contracts = auth_headers("contracts")
    # The rider signed then was the quote's: it cannot be the order's, which names a party the quote did not.
    r = executed(client, contracts, order["transaction_id"], executed_at=signed, screening_id=order["id"])
    assert r.status_code == 422 and "executed_at" in r.json["errors"]
    assert f"is before screening {order['id']} was created" in r.json["message"]
    assert f"the deal's screening then was {quote['id']}" in r.json["message"]
    r = executed(client, contracts, order["transaction_id"], executed_at=signed, screening_id=quote["id"])
    assert r.status_code == 201 and r.json["gate"] == "hold"
    assert "new party: distributor 'Bosphorus Trade' (TR)" in r.json["hold_reasons"][0]


def colombia() -> dict:
    """The Colombia sample deal (proceed with safeguards: a rider is required)."""
    from tests.conftest import load_fixture
    return copy.deepcopy(load_fixture("screening_safeguards_co.json")["transaction"])


@pytest.mark.parametrize("stage", ["renewal", "post_sale"])
def test_a_renewal_or_post_sale_screening_keeps_the_order_gates_rider_hold(client, crm, stage):
    order = screen(client, crm, colombia(), "order")
    assert order["gate"] == "hold" and "not recorded as executed" in order["hold_reasons"][0]
    later = screen(client, crm, colombia(), stage)
    assert later["engine_gate"] == "release_with_conditions" and later["gate"] == "hold"
    state, reasons = gate(client, crm, order["transaction_id"])
    assert state == "hold" and len(reasons) == 1
    assert f"the contract rider required by screening {later['id']} is not recorded as executed" in reasons[0]


@pytest.mark.parametrize("stage, noun", [("renewal", "renewal"), ("post_sale", "post-sale order")])
def test_a_deal_first_screened_at_renewal_or_post_sale_is_held_for_its_rider(client, crm, auth_headers, stage, noun):
    assert dry(client, crm, colombia(), stage)["hold_reasons"] == [
        f"the contract rider this {noun} requires is not recorded as executed (the deal is not stored yet)"]
    first = screen(client, crm, colombia(), stage)
    state, reasons = gate(client, crm, first["transaction_id"])
    assert state == "hold" and "not recorded as executed" in reasons[0] and first["id"] in reasons[0]
    r = executed(client, auth_headers("contracts"), first["transaction_id"])
    assert r.status_code == 201 and (r.json["gate"], r.json["hold_reasons"]) == ("release_with_conditions", [])


def test_a_renewal_covered_by_the_executed_rider_is_held_only_once_it_no_longer_covers_it(client, crm, auth_headers):
    screen(client, crm, BERGEN, "quote")
    order = screen(client, crm, BERGEN, "order")
    txn = order["transaction_id"]
    assert executed(client, auth_headers("contracts"), txn).json["gate"] == "release_with_conditions"
    renewal = screen(client, crm, BERGEN, "renewal")
    assert (renewal["gate"], renewal["hold_reasons"]) == ("release_with_conditions", [])
    grown = copy.deepcopy(BERGEN)
    grown["parties"].append({"role": "distributor", "name": "Bosphorus Trade", "country": "TR"})
    renewal = screen(client, crm, grown, "renewal")
    state, reasons = gate(client, crm, txn)
    assert state == "hold" and len(reasons) == 2
    assert "does not cover screening" in reasons[0] and "new party: distributor 'Bosphorus Trade' (TR)" in reasons[0]
    assert reasons[1].startswith("material change since the quote") and "new country: TR" in reasons[1]


def test_the_conditions_written_back_name_the_renewal(client, crm, auth_headers):
    from hrdd.gate import conditions_in_words
    quote = screen(client, crm, BERGEN, "quote")
    executed(client, auth_headers("contracts"), quote["transaction_id"])
    renewal = screen(client, crm, BERGEN, "renewal")
    assert renewal["gate"] == "release_with_conditions"
    assert conditions_in_words(renewal, renewal["gate"], []) == [
        "the contract rider with the human rights clauses is executed and covers this renewal"]
    held = {**renewal, "stage": "post_sale"}
    assert conditions_in_words(held, "hold", []) == [
        "the customer must sign the contract rider with the human rights clauses before the post-sale order"]


ACCESS = {**BERGEN, "intended_use": "Access control at the port gates",
          "items": [{**BERGEN["items"][0], "quantity": 4, "unit_price": 1000, "currency": "NOK"}]}


def covered_quote(client, crm, auth_headers) -> dict:
    quote = screen(client, crm, ACCESS, "quote")
    executed(client, auth_headers("contracts"), quote["transaction_id"])
    assert screen(client, crm, ACCESS, "order")["gate"] == "release_with_conditions"
    return quote


def test_another_intended_use_lapses_the_riders_coverage_and_holds_the_order(client, crm, auth_headers):
    quote = covered_quote(client, crm, auth_headers)
    # A CRM re-saving the same words with other case, spaces or punctuation changes nothing.
    resaved = screen(client, crm, {**ACCESS, "intended_use": "  access control at the port-gates. "}, "order")
    assert (resaved["gate"], resaved["hold_reasons"]) == ("release_with_conditions", [])
    order = screen(client, crm, {**ACCESS, "intended_use": "City-wide face search"}, "order")
    words = "intended use changed from 'Access control at the port gates' to 'City-wide face search'"
    assert order["gate"] == "hold" and len(order["hold_reasons"]) == 2
    rider, since_quote = order["hold_reasons"]
    assert "does not cover screening" in rider and words in rider
    assert since_quote.startswith(f"material change since the quote ({quote['id']}): {words}")


def test_a_quantity_or_value_more_than_doubled_lapses_the_riders_coverage_a_smaller_deal_does_not(
        client, crm, auth_headers):
    covered_quote(client, crm, auth_headers)
    for quantity, unit_price, held in [
        (8, 1000, []),  # double is not more than double
        (1, 1000, []),  # a smaller deal is covered
        (9, 1000, ["item CAM-4K quantity rose from 4 to 9 (more than 2 times)",
                   "deal value rose from NOK 4,000 to NOK 9,000 (more than 2 times)"]),
        (4, 2500, ["deal value rose from NOK 4,000 to NOK 10,000 (more than 2 times)"]),
    ]:
        grown = copy.deepcopy(ACCESS)
        grown["items"][0].update(quantity=quantity, unit_price=unit_price)
        order = screen(client, crm, grown, "order")
        assert order["gate"] == ("hold" if held else "release_with_conditions"), quantity
        assert len(order["hold_reasons"]) == (2 if held else 0)
        for reason in order["hold_reasons"]:
            assert "; ".join(held) in reason


@pytest.fixture
def policy_file(tmp_path, app_config):
    """Write a copy of the default policy with its material_changes section replaced; use it for the app."""
    from hrdd.config import load_config

    def write(section: str):
        text = load_config()["HRDD_POLICY_FILE"].read_text(encoding="utf-8")
        start = text.index("material_changes:\n")
        end = text.index("\nreports:", start)
        path = tmp_path / "policy.yaml"
        path.write_text(text[:start] + section + "\n" + text[end:], encoding="utf-8")
        app_config["HRDD_POLICY_FILE"] = str(path)
        return path
    return write


def test_what_is_material_beyond_the_facts_is_the_policys(policy_file, request):
    policy_file("material_changes:\n  intended_use: false\n  quantity_increase_factor: 10\n"
                "  value_increase_factor: null\n")
    client = request.getfixturevalue("client")
    crm, contracts = request.getfixturevalue("auth_headers")("crm"), request.getfixturevalue("auth_headers")("contracts")
    quote = screen(client, crm, ACCESS, "quote")
    executed(client, contracts, quote["transaction_id"])
    grown = copy.deepcopy(ACCESS)
    grown["intended_use"] = "City-wide face search"
    grown["items"][0].update(quantity=40, unit_price=5000)
    assert screen(client, crm, grown, "order")["hold_reasons"] == []
    grown["items"][0]["quantity"] = 41
    (rider, _) = screen(client, crm, grown, "order")["hold_reasons"]
    assert "item CAM-4K quantity rose from 4 to 41 (more than 10 times)" in rider and "intended use" not in rider


@pytest.mark.parametrize("section, words", [
    ("material_changes:\n  quantity_increase_factor: 0.5\n", "material_changes.quantity_increase_factor must be"),
    ("material_changes:\n  intended_use: sometimes\n", "material_changes.intended_use must be true or false"),
    ("material_changes:\n  quantity_factor: 3\n", "unknown setting(s) quantity_factor"),
])
def test_a_material_changes_setting_that_cannot_work_stops_start_up(policy_file, app_config, section, words):
    from hrdd.policy import PolicyError
    from server import create_app
    path = policy_file(section)
    with pytest.raises(PolicyError, match=r"policy file .*") as raised:
        create_app(app_config)
    assert str(path) in str(raised.value) and words in str(raised.value)
