"""What reviewers' approvals leave to do at the order: the rider after a two-person approval or a plain
approval, and a second approval judged by the organisation's policy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.test_riders import _rider_text
from tests.test_workspace_cases import _decide, _iran, _second_reviewer
from tests.workspace_helpers import case_of, fixture, screen

pytestmark = pytest.mark.store

LICENCE = "OFAC IR-2026-1187"


def _executed(client, contracts, txn):
    return client.post(f"/v1/transactions/{txn}/rider-executed", headers=contracts,
                       json={"executed_by": "Hospital procurement office", "executed_at": datetime.now(UTC).isoformat()})


def _record(client, headers, txn) -> dict:
    r = client.get(f"/v1/transactions/{txn}", headers=headers)
    assert r.status_code == 200
    return r.get_json()


def _approved_by_two(app, client, auth_headers, body: dict) -> tuple[dict, str]:
    """An embargoed deal (engine do_not_proceed) approved with conditions, a licence and a second approver."""
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    quote = screen(client, crm, body)
    assert quote["decision"] == "do_not_proceed" and quote["gate"] == "block"
    case_id = case_of(app, quote["transaction_id"])["id"]
    first = _decide(client, reviewer, case_id, decision="approve_with_conditions",
                    rationale="Humanitarian exemption applies", conditions="Hospital access control only",
                    licence_reference=LICENCE)
    assert first.status_code == 201, first.get_json()
    second = client.post(f"/v1/cases/{case_id}/second-approval", headers=_second_reviewer(app), json={
        "decision_id": first.get_json()["decision"]["id"], "rationale": "Licence checked against the OFAC letter"})
    assert second.status_code == 201, second.get_json()
    return quote, case_id


# ---- an approval by two reviewers needs the executed rider at the order ----

@pytest.mark.parametrize("stage", ["order", "renewal", "post_sale"])
def test_a_deal_approved_by_two_reviewers_holds_at_the_order_until_its_rider_is_executed(
        app, client, auth_headers, stage):
    crm, contracts = auth_headers("crm"), auth_headers("contracts")
    quote, _ = _approved_by_two(app, client, auth_headers, _iran())
    # The engine's conditions for do_not_proceed (policy conditions.rider_on) name no rider; the approval does.
    assert "rider_executed" not in quote["conditions"]
    at_quote = _record(client, crm, quote["transaction_id"])
    assert at_quote["gate"] == "release_with_conditions"  # a quote is not held for the rider...
    assert "rider_executed" in at_quote["outstanding_conditions"]  # ...but the CRM sees it is still to come

    order = screen(client, crm, _iran(stage=stage))
    assert order["conditions"] == quote["conditions"]  # the record as screened is not rewritten
    assert order["gate"] == "hold", order["hold_reasons"]
    rider = [r for r in order["hold_reasons"] if "contract rider" in r]
    assert len(rider) == 1 and order["id"] in rider[0] and "not recorded as executed" in rider[0]
    assert "rider_executed" in order["outstanding_conditions"]
    # The rider to execute carries the reviewers' conditions of approval.
    text, headings = _rider_text(client, auth_headers, order["id"])
    assert "Conditions of approval" in headings and "Hospital access control only" in text

    r = _executed(client, contracts, order["transaction_id"])
    assert r.status_code == 201 and r.get_json()["gate"] == "release_with_conditions", r.get_json()
    record = _record(client, crm, order["transaction_id"])
    assert record["gate"] == "release_with_conditions" and "rider_executed" not in record["outstanding_conditions"]
    assert all("contract rider" not in h for h in record["hold_reasons"])


def test_a_rider_executed_before_the_second_approval_lacks_its_conditions(app, client, auth_headers):
    crm, reviewer, contracts = auth_headers("crm"), auth_headers("reviewer"), auth_headers("contracts")
    quote = screen(client, crm, _iran())
    case_id = case_of(app, quote["transaction_id"])["id"]
    first = _decide(client, reviewer, case_id, decision="approve_with_conditions", rationale="Humanitarian exemption",
                    conditions="Hospital access control only", licence_reference=LICENCE).get_json()
    # Signed while the approval awaited its second approver: the rider then had no conditions of approval.
    assert _executed(client, contracts, quote["transaction_id"]).status_code == 201
    assert client.post(f"/v1/cases/{case_id}/second-approval", headers=_second_reviewer(app), json={
        "decision_id": first["decision"]["id"], "rationale": "Licence checked against the OFAC letter"}
    ).status_code == 201
    order = screen(client, crm, _iran(stage="order"))
    assert order["gate"] == "hold"
    assert any("executed before the reviewer's conditions of approval" in h for h in order["hold_reasons"])


def test_a_declined_embargoed_deal_asks_for_no_rider(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    quote = screen(client, crm, _iran())
    assert _decide(client, reviewer, case_of(app, quote["transaction_id"])["id"], decision="decline",
                   rationale="Comprehensive embargo on Iran").status_code == 201
    order = screen(client, crm, _iran(stage="order"))
    assert order["gate"] == "block" and "rider_executed" not in order["outstanding_conditions"]
    assert all("contract rider" not in h for h in order["hold_reasons"])


# ---- a plain approval does not release an order whose rider is outstanding ----

@pytest.mark.parametrize("stage", ["quote", "order", "renewal", "post_sale"])
def test_a_plain_approval_releases_only_where_no_rider_is_due_yet(app, client, auth_headers, stage):
    crm, reviewer, contracts = auth_headers("crm"), auth_headers("reviewer"), auth_headers("contracts")
    s = screen(client, crm, fixture("transaction_egypt_biometric.json"), stage=stage)
    assert s["decision"] == "escalate" and "rider_executed" in s["conditions"]
    r = _decide(client, reviewer, case_of(app, s["transaction_id"])["id"], decision="approve",
                rationale="Ministry access control only")
    assert r.status_code == 201
    for answer in (r.get_json(), _record(client, crm, s["transaction_id"]),
                   client.get(f"/v1/screenings/{s['id']}", headers=crm).get_json()):
        assert "rider_executed" in answer["outstanding_conditions"]
        if stage == "quote":
            # Released: the rider is due before the order, where the gate asks for it.
            assert answer["gate"] == "release" and answer["hold_reasons"][0].startswith("reviewer decision")
        else:
            # The order stages hold until the rider is executed, as after an approval with conditions.
            assert answer["gate"] == "hold"
            assert answer["hold_reasons"][0].startswith("the contract rider required by screening")
    if stage == "quote":
        order = screen(client, crm, fixture("transaction_egypt_biometric.json"), stage="order")
        assert order["gate"] == "hold" and "rider_executed" in order["outstanding_conditions"]
    assert _executed(client, contracts, s["transaction_id"]).get_json()["gate"] == "release"
    record = _record(client, crm, s["transaction_id"])
    assert record["gate"] == "release" and "rider_executed" not in record["outstanding_conditions"]


# ---- a second approval compares the deal under the policy's material_changes ----

@pytest.fixture
def material_policy(app_config, tmp_path):
    """The shipped policy with material_changes: intended use not material, a quantity past 1.2 times is."""
    from hrdd.config import load_config
    text = load_config()["HRDD_POLICY_FILE"].read_text(encoding="utf-8")
    start = text.index("material_changes:\n")
    end = text.index("\nreviewer_decisions:", start)
    path = tmp_path / "policy.yaml"
    path.write_text(text[:start] + "material_changes:\n  intended_use: false\n  quantity_increase_factor: 1.2\n"
                    "  value_increase_factor: null\n" + text[end:], encoding="utf-8")
    app_config["HRDD_POLICY_FILE"] = str(path)
    return path


def _first_approval(app, client, auth_headers, body) -> tuple[dict, str, str]:
    quote = screen(client, auth_headers("crm"), body)
    case_id = case_of(app, quote["transaction_id"])["id"]
    r = _decide(client, auth_headers("reviewer"), case_id, decision="approve_with_conditions",
                rationale="Humanitarian exemption applies", conditions="Hospital access control only",
                licence_reference=LICENCE)
    assert r.status_code == 201 and r.get_json()["second_approval"]["status"] == "awaiting"
    return quote, case_id, r.get_json()["decision"]["id"]


def _second(app, client, case_id, decision_id, **body):
    return client.post(f"/v1/cases/{case_id}/second-approval", headers=_second_reviewer(app), json={
        "decision_id": decision_id, "rationale": "Licence checked against the OFAC letter", **body})


def test_a_second_approval_judges_a_grown_quantity_by_the_policy(material_policy, app, client, auth_headers):
    crm = auth_headers("crm")
    body = _iran()
    quote, case_id, first = _first_approval(app, client, auth_headers, body)
    # Twice the quantity: not material by default (more than 2 times), material under this policy (1.2).
    grown = screen(client, crm, body, items=[{**body["items"][0], "quantity": 2}])
    assert grown["gate"] == "block" and not any("awaits a second approval" in h for h in grown["hold_reasons"])
    assert case_of(app, quote["transaction_id"])["status"] == "open"  # open for a new decision
    awaiting = client.get(f"/v1/cases/{case_id}", headers=auth_headers("reviewer")).get_json()["awaiting_second_approval"]
    assert "item FR-200 quantity rose from 1 to 2 (more than 1.2 times)" in awaiting["lapsed"]
    r = _second(app, client, case_id, first)
    assert r.status_code == 409, r.get_json()
    assert "no longer covers" in r.get_json()["message"]
    assert "item FR-200 quantity rose from 1 to 2 (more than 1.2 times)" in r.get_json()["message"]
    assert _record(client, crm, quote["transaction_id"])["gate"] == "block"


def test_a_second_approval_is_not_refused_for_what_the_policy_does_not_make_material(
        material_policy, app, client, auth_headers):
    crm = auth_headers("crm")
    body = _iran()
    quote, case_id, first = _first_approval(app, client, auth_headers, body)
    reworded = screen(client, crm, body, intended_use="Patient access control at the Tehran children's hospital")
    assert any("awaits a second approval" in h for h in reworded["hold_reasons"])  # the first approval covers it
    assert case_of(app, quote["transaction_id"])["status"] == "awaiting_second_approval"
    awaiting = client.get(f"/v1/cases/{case_id}", headers=auth_headers("reviewer")).get_json()["awaiting_second_approval"]
    assert awaiting["lapsed"] is None
    r = _second(app, client, case_id, first, screening_id=quote["id"])
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["gate"] == "release_with_conditions"
    assert r.get_json()["decision"]["screening_id"] == reworded["id"]
