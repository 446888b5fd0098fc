"""Cases: opened for escalations in the screening's transaction, decided by reviewers, driving the gate."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from hrdd.workspace.tables import case_decisions, cases
from tests.conftest import migrate_down
from tests.workspace_helpers import (
    case_of,
    csrf_from,
    decision_form,
    fixture,
    load_party_list,
    login,
    make_user,
    screen,
)

pytestmark = pytest.mark.store


def _decide(client, headers, case_id, **body):
    return client.post(f"/v1/cases/{case_id}/decision", headers=headers, json=body)


def _gate(client, headers, txn_id):
    return client.get(f"/v1/transactions/{txn_id}", headers=headers).get_json()["gate"]


def test_escalations_and_blocks_open_cases_and_clean_deals_do_not(app, client, auth_headers):
    crm = auth_headers("crm")
    escalated = screen(client, crm, fixture("transaction_egypt_biometric.json"))
    assert escalated["decision"] == "escalate"
    blocked = screen(client, crm, fixture("transaction_egypt_biometric.json"),
                     reference={"system": "sf", "object_type": "opportunity", "object_id": "B-1"},
                     answers={"past_misuse": "yes"})
    assert blocked["decision"] == "do_not_proceed"
    clean = screen(client, crm, fixture("transaction_norway_storage.json"))
    assert clean["decision"] == "proceed"
    assert case_of(app, escalated["transaction_id"])["screening_id"] == escalated["id"]
    assert case_of(app, blocked["transaction_id"])["engine_decision"] == "do_not_proceed"
    assert case_of(app, clean["transaction_id"]) is None
    # A second escalated screening of the same deal adds to the open case instead of opening another.
    screen(client, crm, fixture("transaction_egypt_biometric.json"), stage="order")
    with app.extensions["hrdd"].store.engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(cases)
                         .where(cases.c.transaction_id == escalated["transaction_id"])).scalar_one()
    assert n == 1


def test_a_case_is_atomic_with_its_screening(app, client, auth_headers, monkeypatch):
    from hrdd.workspace import cases as cases_mod

    def broken(*args, **kwargs):
        raise RuntimeError("case table unavailable")
    monkeypatch.setattr(cases_mod, "open_case", broken)
    r = client.post("/v1/screenings", json=fixture("transaction_egypt_biometric.json"), headers=auth_headers("crm"))
    assert r.status_code == 500
    assert app.extensions["hrdd"].store.count_screenings() == 0


def test_decisions_drive_the_gate_and_are_superseded_never_edited(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    s = screen(client, crm, fixture("transaction_egypt_biometric.json"))
    txn = s["transaction_id"]
    case_id = case_of(app, txn)["id"]
    assert _gate(client, reviewer, txn) == "hold"
    r = _decide(client, reviewer, case_id, decision="approve_with_conditions",
                rationale="Access control use only; audit rights agreed", conditions="Quarterly audit logs",
                safeguards=["cut-off"])
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["gate"] == "release_with_conditions"
    assert _gate(client, reviewer, txn) == "release_with_conditions"
    first = r.get_json()["decision"]
    r = _decide(client, reviewer, case_id, decision="decline", rationale="New reports of misuse against protesters")
    assert r.status_code == 201
    assert _gate(client, reviewer, txn) == "block"
    with app.extensions["hrdd"].store.engine.connect() as conn:
        rows = conn.execute(sa.select(case_decisions).order_by(case_decisions.c.decided_at)).all()
    assert [row.outcome for row in rows] == ["approve_with_conditions", "decline"]
    assert rows[0].rationale == first["rationale"] and rows[0].conditions == "Quarterly audit logs"
    assert rows[1].supersedes == rows[0].id
    # The same deal at order stage keeps the reviewer's decision: no new case.
    screen(client, crm, fixture("transaction_egypt_biometric.json"), stage="order")
    assert _gate(client, reviewer, txn) == "block"


def test_decision_needs_a_rationale_and_a_known_outcome(app, client, auth_headers):
    reviewer = auth_headers("reviewer")
    s = screen(client, auth_headers("crm"), fixture("transaction_egypt_biometric.json"))
    case_id = case_of(app, s["transaction_id"])["id"]
    r = _decide(client, reviewer, case_id, decision="approve", rationale="")
    assert r.status_code == 422 and "rationale" in r.get_json()["errors"]
    r = _decide(client, reviewer, case_id, decision="wave_through", rationale="Because the sales team asked")
    assert r.status_code == 422 and "decision" in r.get_json()["errors"]
    r = _decide(client, reviewer, case_id, decision="approve_with_conditions", rationale="Conditions to follow")
    assert r.status_code == 422 and "conditions" in r.get_json()["errors"]
    r = _decide(client, reviewer, case_id, decision="approve", rationale="Fine by me", edit=True)
    assert r.status_code == 422 and "edit" in r.get_json()["errors"]
    assert _decide(client, reviewer, "case_nope", decision="approve", rationale="x" * 20).status_code == 404
    assert _gate(client, reviewer, s["transaction_id"]) == "hold"


def test_a_material_change_ends_the_reviewers_decision(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    body = fixture("transaction_egypt_biometric.json")
    s = screen(client, crm, body)
    case_id = case_of(app, s["transaction_id"])["id"]
    assert _decide(client, reviewer, case_id, decision="approve", rationale="Ministry access control only").status_code == 201
    assert _gate(client, reviewer, s["transaction_id"]) == "release"
    changed = screen(client, crm, body, stage="order",
                     parties=[*body["parties"], {"role": "consignee", "name": "Cairo Freight Ltd", "country": "EG"}])
    assert changed["gate"] == "hold"
    new_case = case_of(app, s["transaction_id"])
    assert new_case["id"] != case_id and new_case["status"] == "open"


@pytest.mark.parametrize("change, keeps", [
    (lambda t: t["end_user"].update(name="The Directorate of Public-Security."), True),
    (lambda t: t["end_user"].update(name="Directorate of Public Security (DPS)"), True),
    (lambda t: t["parties"][0].update(name="Nile Integrated Systems LLC"), True),
    (lambda t: t["parties"][0].update(name="  NILE Integrated-Systems. "), True),
    (lambda t: t["end_user"].update(name="Directorate of State Security"), False),
    (lambda t: t["end_user"].update(country="JO"), False),
    (lambda t: t["parties"][0].update(name="Nile Integrated Services"), False),
    (lambda t: t["parties"][0].update(country="OM"), False),
    (lambda t: t["parties"][0].update(role="integrator"), False),
], ids=["end-user-punctuated", "end-user-acronym", "party-legal-form", "party-punctuated",
        "other-end-user", "end-user-country", "other-party", "party-country", "party-role"])
def test_a_spelling_variant_keeps_the_reviewers_decision_another_name_country_or_role_ends_it(
        app, client, auth_headers, change, keeps):
    # Names compare by the key the order gate, grievances and answers on record use.
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    body = fixture("transaction_egypt_biometric.json")
    s = screen(client, crm, body)
    case_id = case_of(app, s["transaction_id"])["id"]
    assert _decide(client, reviewer, case_id, decision="approve", rationale="Ministry access control only").status_code == 201
    change(body)
    again = screen(client, crm, body)
    decided = any(r.startswith("reviewer decision") for r in again["hold_reasons"])
    assert (again["gate"] == "release", decided, _gate(client, reviewer, s["transaction_id"]) == "release",
            case_of(app, s["transaction_id"])["id"] == case_id) == (keeps,) * 4, again["hold_reasons"]


def test_an_order_spelt_differently_from_the_quote_keeps_the_decision_and_the_rider(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    body = fixture("transaction_egypt_biometric.json")
    quote = screen(client, crm, body)
    txn = quote["transaction_id"]
    assert _decide(client, reviewer, case_of(app, txn)["id"], decision="approve_with_conditions",
                   rationale="Access control use only; audit rights agreed",
                   conditions="Quarterly audit logs").status_code == 201
    r = client.post(f"/v1/transactions/{txn}/rider-executed", headers=auth_headers("contracts"),
                    json={"executed_by": "A. Contracts", "executed_at": datetime.now(UTC).isoformat()})
    assert r.status_code == 201, r.get_json()
    body["end_user"]["name"] = "The Directorate of Public Security."
    body["parties"][0]["name"] = "Nile Integrated Systems LLC"
    order = screen(client, crm, body, stage="order")
    assert order["gate"] == "release_with_conditions", order["hold_reasons"]
    assert [r.split(" ")[:2] for r in order["hold_reasons"]] == [["reviewer", "decision"]]


ZEPHYRINE = {
    "reference": {"system": "crm", "object_type": "opportunity", "object_id": "OV-1"}, "stage": "quote",
    "end_user": {"name": "Muller Logistik", "country": "DE", "type": "private", "sector": "commercial"},
    "parties": [{"role": "distributor", "name": "Zephyrine Optical Systems", "country": "AE"}],
    "items": [{"sku": "ST-1", "name": "Storage array", "capabilities": ["data_storage"]}],
    "deployment_countries": ["DE"], "answers": {"end_user_disclosed": "yes"},
}


@pytest.mark.no_shipped_list
def test_an_approval_lapses_when_a_possible_match_is_confirmed(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    load_party_list(app, b"name,aliases,country\nZephyrine Optical Systems Trading,,AE\n")
    quote = screen(client, crm, ZEPHYRINE)
    (match,) = [f for f in quote["red_flags"] if f["id"] == "RF-4.3"]
    assert (quote["decision"], match["severity"]) == ("escalate", "high")
    case_id = case_of(app, quote["transaction_id"])["id"]
    assert _decide(client, reviewer, case_id, decision="approve",
                   rationale="Different company: Dubai trade licence 778812").status_code == 201
    assert _gate(client, reviewer, quote["transaction_id"]) == "release"

    load_party_list(app, b"name,aliases,country\nZephyrine Optical Systems,,AE\n")
    order = screen(client, crm, ZEPHYRINE, stage="order")
    assert order["decision"] == "do_not_proceed" and order["gate"] == "block"
    assert not any(r.startswith("reviewer decision") for r in order["hold_reasons"])
    new_case = case_of(app, quote["transaction_id"])
    assert new_case["id"] != case_id and new_case["status"] == "open"


def test_an_approval_lapses_when_a_party_country_becomes_a_deployment_country(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    body = fixture("transaction_egypt_biometric.json")
    body["parties"].append({"role": "consignee", "name": "Levant Freight", "country": "SY"})
    s = screen(client, crm, body)
    case_id = case_of(app, s["transaction_id"])["id"]
    assert _decide(client, reviewer, case_id, decision="approve", rationale="Transit only, no deployment").status_code == 201
    assert _gate(client, reviewer, s["transaction_id"]) == "release"
    again = screen(client, crm, body, deployment_countries=["EG", "SY"])
    assert again["gate"] in ("hold", "block")
    assert _gate(client, reviewer, s["transaction_id"]) in ("hold", "block")
    assert case_of(app, s["transaction_id"])["id"] != case_id


def test_decisions_recorded_before_0702_are_filled_in_and_keep_working(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    s = screen(client, crm, fixture("transaction_egypt_biometric.json"))
    case_id = case_of(app, s["transaction_id"])["id"]
    assert _decide(client, reviewer, case_id, decision="approve", rationale="Ministry access control only").status_code == 201
    store = app.extensions["hrdd"].store
    migrate_down(store, "0701_workspace")  # the table as 0701 left it
    with store.engine.begin() as conn:
        facts = conn.execute(sa.select(case_decisions.c.material_facts)).scalar_one()
        old_facts = {k: v for k, v in json.loads(facts).items() if k != "deployment"}
        conn.execute(sa.update(case_decisions).values(material_facts=json.dumps(old_facts)))
    store.upgrade()
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(case_decisions)).one()
    assert row.engine_decision == "escalate" and '"RF-2.1": "high"' in row.flag_severities
    assert '"deployment":["EG"]' in row.material_facts
    assert _gate(client, reviewer, s["transaction_id"]) == "release"
    assert screen(client, crm, fixture("transaction_egypt_biometric.json"), stage="order")["gate"] != "block"


def test_undecided_escalation_holds_an_order_even_when_the_latest_screening_is_clean(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    body = fixture("transaction_egypt_biometric.json")
    first = screen(client, crm, body)
    # The checklist answers make the later order screening look clean, but nobody has decided the case.
    clean = fixture("transaction_norway_storage.json")
    later = screen(client, crm, clean, reference=body["reference"], stage="order")
    assert later["decision"] == "proceed"
    assert later["gate"] == "hold"
    assert any("awaits a reviewer" in reason for reason in later["hold_reasons"])
    _decide(client, reviewer, case_of(app, first["transaction_id"])["id"], decision="request_information",
            rationale="Need the end-user statement")
    assert _gate(client, reviewer, first["transaction_id"]) == "hold"


def test_queue_filters_and_order(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    base = fixture("transaction_egypt_biometric.json")
    ids = []
    for n, (country, cap) in enumerate([("EG", "biometric_identification"), ("SA", "intrusion_software"),
                                         ("EG", "intrusion_software")]):
        items = [{**base["items"][0], "capabilities": [cap]}]
        s = screen(client, crm, base, reference={"system": "sf", "object_type": "opportunity", "object_id": f"Q-{n}"},
                   end_user={**base["end_user"], "country": country}, deployment_countries=[country], items=items)
        ids.append(case_of(app, s["transaction_id"])["id"])
    listed = client.get("/v1/cases", headers=reviewer).get_json()
    assert [c["id"] for c in listed["cases"]] == ids  # oldest first
    by_country = client.get("/v1/cases?country=eg", headers=reviewer).get_json()["cases"]
    assert [c["id"] for c in by_country] == [ids[0], ids[2]]
    by_cap = client.get("/v1/cases?capability=intrusion_software", headers=reviewer).get_json()["cases"]
    assert [c["id"] for c in by_cap] == [ids[1], ids[2]]
    assert client.get("/v1/cases?age=1", headers=reviewer).get_json()["total"] == 0
    with app.extensions["hrdd"].store.begin() as conn:
        conn.execute(cases.update().where(cases.c.id == ids[1]).values(opened_at="2020-01-01T00:00:00Z"))
    aged = client.get("/v1/cases?age=30", headers=reviewer).get_json()["cases"]
    assert [c["id"] for c in aged] == [ids[1]]
    _decide(client, reviewer, ids[0], decision="decline", rationale="Critical capability to a high-risk state")
    assert [c["id"] for c in client.get("/v1/cases?status=decided", headers=reviewer).get_json()["cases"]] == [ids[0]]
    assert client.get("/v1/cases?status=bogus", headers=reviewer).status_code == 400
    # The same filters on the page.
    make_user(app)
    login(client)
    page = client.get("/workspace/?country=EG&capability=intrusion_software&status=all").get_data(as_text=True)
    assert ids[2] in page and ids[1] not in page and ids[0] not in page


def test_the_queue_shows_the_deal_as_it_is_now_and_what_the_case_was_opened_with(app, client, auth_headers):
    # The row said "quote, escalate" while the deal had moved on to an order the engine blocks.
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    quote = screen(client, crm, fixture("transaction_egypt_biometric.json"))
    other = screen(client, crm, fixture("transaction_egypt_biometric.json"),
                   reference={"system": "sf", "object_type": "opportunity", "object_id": "STILL-1"})
    order = screen(client, crm, fixture("transaction_egypt_biometric.json"), stage="order",
                   answers={"past_misuse": "yes"})
    assert (quote["decision"], order["decision"]) == ("escalate", "do_not_proceed")
    listed = {c["transaction_id"]: c for c in client.get("/v1/cases", headers=reviewer).get_json()["cases"]}
    moved, still = listed[quote["transaction_id"]], listed[other["transaction_id"]]
    assert (moved["stage"], moved["engine_decision"]) == ("quote", "escalate")  # as opened
    assert (moved["latest_stage"], moved["latest_decision"], moved["latest_screening_id"]) == (
        "order", "do_not_proceed", order["id"])
    assert moved["latest_risk_score"] == order["risk"]["score"]
    assert (still["latest_stage"], still["latest_decision"], still["latest_screening_id"]) == (
        "quote", "escalate", other["id"])
    make_user(app)
    login(client)
    page = client.get("/workspace/").get_data(as_text=True)
    row = page[page.index(moved["id"]):][:1500]
    assert "do not proceed" in row and "opened: escalate" in row and "opened at quote" in row
    unchanged = page[page.index(still["id"]):][:1500]
    assert "opened:" not in unchanged and "opened at" not in unchanged


def test_a_quote_stored_after_the_order_does_not_move_the_queue_back_to_quote(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    screen(client, crm, fixture("transaction_egypt_biometric.json"))
    order = screen(client, crm, fixture("transaction_egypt_biometric.json"), stage="order",
                   answers={"past_misuse": "yes"})
    late = screen(client, crm, fixture("transaction_egypt_biometric.json"), intended_use="Retried quote")
    assert late["stage"] == "quote" and late["superseded_by"] == order["id"]
    listed = {c["transaction_id"]: c for c in client.get("/v1/cases", headers=reviewer).get_json()["cases"]}
    row = listed[order["transaction_id"]]
    assert (row["latest_stage"], row["latest_decision"], row["latest_screening_id"]) == (
        "order", "do_not_proceed", order["id"])


def test_case_page_shows_flags_evidence_history_and_records_a_decision(app, client, auth_headers):
    make_user(app)
    login(client)
    body = fixture("transaction_egypt_biometric.json")
    s = screen(client, auth_headers("crm"), body)
    screen(client, auth_headers("crm"), body, stage="order")
    case_id = case_of(app, s["transaction_id"])["id"]
    page = client.get(f"/workspace/cases/{case_id}").get_data(as_text=True)
    for flag in s["red_flags"]:
        assert flag["id"] in page
        assert flag["source"].split(",")[0] in page
    assert "Directorate of Public Security" in page and "FaceFind Enterprise" in page
    assert page.count("<td>quote</td>") == 1 and page.count("<td>order</td>") == 1
    assert 'data-gate="hold"' in page
    hidden = decision_form(client, case_id)
    r = client.post(f"/workspace/cases/{case_id}/decision", data={**hidden, "decision": "approve",
                                                                "rationale": "short"})
    assert r.status_code == 422 and "at least 10 characters" in r.get_data(as_text=True)
    r = client.post(f"/workspace/cases/{case_id}/decision", data={
        **hidden, "decision": "approve_with_conditions", "rationale": "Audit and cut-off terms agreed",
        "conditions": "Rider executed before delivery", "safeguards": ["cut-off"]}, follow_redirects=True)
    text = r.get_data(as_text=True)
    # The latest screening is the order: the reviewer's conditions apply once the rider is executed.
    assert r.status_code == 200 and 'data-gate="hold"' in text and "rider" in text
    assert "Rider executed before delivery" in text and "user:alice" in text
    done = client.post(f"/v1/transactions/{s['transaction_id']}/rider-executed", headers=auth_headers("contracts"),
                       json={"executed_by": "Ministry legal office", "executed_at": datetime.now(UTC).isoformat()})
    assert done.status_code == 201 and done.get_json()["gate"] == "release_with_conditions"
    assert 'data-gate="release_with_conditions"' in client.get(f"/workspace/cases/{case_id}").get_data(as_text=True)


def test_an_escalated_order_holds_whether_its_case_is_opened_or_noted_in_the_same_request(app, client, auth_headers):
    """The gate worked out right after storing sees the case that storing opened, and the one it noted."""
    crm = auth_headers("crm")
    body = fixture("transaction_egypt_biometric.json")
    opened = screen(client, crm, body, stage="order")  # a new deal at order: its case opens in this request
    assert opened["decision"] == "escalate" and opened["gate"] == "hold"
    case = case_of(app, opened["transaction_id"])
    assert any(f"case {case['id']} awaits a reviewer" in reason for reason in opened["hold_reasons"])
    noted = screen(client, crm, body, stage="order")  # same deal again: a note on the same case
    assert any(f"case {case['id']} awaits a reviewer" in reason for reason in noted["hold_reasons"])
    assert case_of(app, noted["transaction_id"])["id"] == case["id"]


def test_queue_capability_filter_ignores_case_and_takes_wildcards_literally(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    base = fixture("transaction_egypt_biometric.json")
    items = [{**base["items"][0], "capabilities": ["biometric_identification"]}]
    case_id = case_of(app, screen(client, crm, base, items=items)["transaction_id"])["id"]

    def listed(capability):
        r = client.get("/v1/cases", query_string={"capability": capability}, headers=reviewer)
        assert r.status_code == 200
        return [c["id"] for c in r.get_json()["cases"]]

    assert listed("biometric_identification") == listed("BIOMETRIC_IDENTIFICATION") == [case_id]
    for pattern in ("%", "biometric%", "biometric_identificatio_", "biometric%identification", "_"):
        assert listed(pattern) == [], pattern


def test_case_page_lists_the_newest_screenings_and_says_how_many_more(app, client, auth_headers, monkeypatch):
    from hrdd.workspace import views
    monkeypatch.setattr(views, "CASE_HISTORY", 2)
    make_user(app)
    login(client)
    body = fixture("transaction_egypt_biometric.json")
    first = screen(client, auth_headers("crm"), body)
    screen(client, auth_headers("crm"), body)
    screen(client, auth_headers("crm"), body, stage="order")
    page = client.get(f"/workspace/cases/{case_of(app, first['transaction_id'])['id']}").get_data(as_text=True)
    assert page.count("<td>order</td>") == 1 and page.count("<td>quote</td>") == 1
    history = page.split('id="h-history"')[1].split("</section>")[0]
    assert "The 2 newest of 3 screenings" in history and first["id"] not in history


def test_a_hold_that_stops_a_reviewer_release_is_named_first(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    quote = screen(client, crm, fixture("transaction_egypt_biometric.json"))
    case_id = case_of(app, quote["transaction_id"])["id"]
    assert _decide(client, reviewer, case_id, decision="approve_with_conditions",
                   rationale="Access control use only; audit rights agreed",
                   conditions="Quarterly audit logs").status_code == 201
    order = screen(client, crm, fixture("transaction_egypt_biometric.json"), stage="order")
    assert order["gate"] == "hold"
    # Held because the rider is not executed, not because of the reviewer's approval: that comes after.
    assert "rider" in order["hold_reasons"][0] and "not recorded as executed" in order["hold_reasons"][0]
    assert order["hold_reasons"][-1].startswith("reviewer decision")


def test_case_page_shows_whole_quantities_without_a_decimal_point(app, client, auth_headers):
    make_user(app)
    login(client)
    body = fixture("transaction_egypt_biometric.json")
    item = body["items"][0]
    items = [{**item, "quantity": 2}, {**item, "sku": "FR-201", "quantity": 400}, {**item, "sku": "FR-202",
                                                                                     "quantity": 2.5}]
    s = screen(client, auth_headers("crm"), body, items=items)
    page = client.get(f"/workspace/cases/{case_of(app, s['transaction_id'])['id']}").get_data(as_text=True)
    items_table = page.split("<h3>Items</h3>")[1].split("</table>")[0]
    assert [cell.split("</td>")[0] for cell in items_table.split("<td>")[5::5]] == ["2", "400", "2.5"]


def _saudi_deal_approved_and_its_rider_executed(app, client, auth_headers) -> tuple[dict, str]:
    """The sample deal to Saudi Arabia (3 units): escalated, approved by a reviewer, ordered, rider executed."""
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    body = fixture("transaction_egypt_biometric.json")
    body["end_user"]["country"], body["deployment_countries"] = "SA", ["SA"]
    body["items"][0]["quantity"] = 3
    quote = screen(client, crm, body)
    assert quote["decision"] == "escalate"
    case_id = case_of(app, quote["transaction_id"])["id"]
    assert _decide(client, reviewer, case_id, decision="approve",
                   rationale="Access control at ministry buildings only").status_code == 201
    assert screen(client, crm, body, stage="order")["gate"] == "hold"  # the rider
    r = client.post(f"/v1/transactions/{quote['transaction_id']}/rider-executed", headers=auth_headers("contracts"),
                    json={"executed_by": "Ministry legal office", "executed_at": datetime.now(UTC).isoformat()})
    assert r.status_code == 201 and r.get_json()["gate"] == "release", r.get_json()
    return body, case_id


def test_another_intended_use_after_approval_and_rider_reopens_review_and_the_rider(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    body, case_id = _saudi_deal_approved_and_its_rider_executed(app, client, auth_headers)
    resaved = screen(client, crm, body, stage="order", intended_use="access control at ministry buildings.")
    assert (resaved["gate"], case_of(app, resaved["transaction_id"])["id"]) == ("release", case_id)
    order = screen(client, crm, body, stage="order", intended_use="City-wide face search")
    txn = order["transaction_id"]
    assert order["gate"] == "hold" and _gate(client, reviewer, txn) == "hold"
    assert not any(r.startswith("reviewer decision") for r in order["hold_reasons"])
    new_case = case_of(app, txn)
    assert new_case["id"] != case_id and new_case["status"] == "open"
    words = "intended use changed from 'Access control at ministry buildings' to 'City-wide face search'"
    assert words in new_case["reason"]
    case_hold = next(r for r in order["hold_reasons"] if "awaits a reviewer" in r)
    rider = next(r for r in order["hold_reasons"] if "contract rider" in r)
    assert new_case["id"] in case_hold and words in case_hold and words in rider


def test_a_quantity_more_than_doubled_after_approval_reopens_review_a_smaller_one_does_not(app, client, auth_headers):
    crm = auth_headers("crm")
    body, case_id = _saudi_deal_approved_and_its_rider_executed(app, client, auth_headers)
    for quantity in (6, 1):  # double, and fewer: what was approved covers them
        order = screen(client, crm, body, items=[{**body["items"][0], "quantity": quantity}], stage="order")
        assert (order["gate"], case_of(app, order["transaction_id"])["id"]) == ("release", case_id)
    order = screen(client, crm, body, items=[{**body["items"][0], "quantity": 500}], stage="order")
    assert order["gate"] == "hold" and case_of(app, order["transaction_id"])["id"] != case_id
    case_hold = next(r for r in order["hold_reasons"] if "awaits a reviewer" in r)
    assert "item FR-200 quantity rose from 3 to 500 (more than 2 times)" in case_hold


def test_decisions_recorded_before_0710_are_filled_in_with_the_intended_use_and_scale(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    body = fixture("transaction_egypt_biometric.json")
    s = screen(client, crm, body)
    case_id = case_of(app, s["transaction_id"])["id"]
    assert _decide(client, reviewer, case_id, decision="approve", rationale="Ministry access control only").status_code == 201
    store = app.extensions["hrdd"].store
    migrate_down(store, "0709_decision_second_approval")
    with store.engine.connect() as conn:
        facts = json.loads(conn.execute(sa.select(case_decisions.c.material_facts)).scalar_one())
    assert not {"intended_use", "quantities", "value"} & set(facts)  # as recorded before
    store.upgrade()
    with store.engine.connect() as conn:
        facts = json.loads(conn.execute(sa.select(case_decisions.c.material_facts)).scalar_one())
    assert (facts["intended_use"], facts["quantities"], facts["value"]) == (
        "Access control at ministry buildings", [["FR-200", 1]], [["USD", 250000]])
    assert _gate(client, reviewer, s["transaction_id"]) == "release"
    assert screen(client, crm, body, intended_use="Protest monitoring")["gate"] == "hold"
    assert case_of(app, s["transaction_id"])["id"] != case_id


@pytest.mark.parametrize("stage", ["renewal", "post_sale"])
def test_undecided_escalation_holds_a_renewal_or_post_sale_order_as_it_holds_an_order(app, client, auth_headers, stage):
    crm = auth_headers("crm")
    body = fixture("transaction_egypt_biometric.json")
    screen(client, crm, body)
    later = screen(client, crm, fixture("transaction_norway_storage.json"), reference=body["reference"], stage=stage)
    assert later["decision"] == "proceed" and later["gate"] == "hold"
    assert any("awaits a reviewer" in reason for reason in later["hold_reasons"])


def test_the_queue_names_a_filter_value_it_does_not_accept_and_shows_the_list_without_it(app, client, auth_headers):
    crm = auth_headers("crm")
    base = fixture("transaction_egypt_biometric.json")
    ids = [case_of(app, screen(client, crm, base, reference={**base["reference"], "object_id": f"OPP-{n}"})
                   ["transaction_id"])["id"] for n in range(2)]
    make_user(app)
    login(client)
    for query, named, accepted in (
            ("status=bogus", "Status &#39;bogus&#39; is not accepted", "accepted: open, information_requested, awaiting_second_approval, decided, all"),
            ("age=abc", "Older than &#39;abc&#39; days is not accepted", "from 0 to 36500"),
            ("age=-5", "Older than &#39;-5&#39; days is not accepted", "from 0 to 36500"),
            ("country=Egypt", "Country &#39;Egypt&#39; is not accepted", "two-letter ISO code"),
            ("capability=face", "Capability &#39;face&#39; is not accepted", "biometric_identification"),
            ("page=x", "Page &#39;x&#39; is not accepted", "whole number")):
        response = client.get(f"/workspace/?{query}")
        page = response.get_data(as_text=True)
        assert response.status_code == 400, query
        assert named in page and accepted in page, query
        assert "2 cases" in page and all(case_id in page for case_id in ids), query  # the list as if unfiltered
    # A value that is accepted still filters, beside one that is not.
    page = client.get("/workspace/?status=decided&age=abc").get_data(as_text=True)
    assert "0 cases" in page and "Older than &#39;abc&#39;" in page
    assert client.get("/workspace/?status=all&age=0").status_code == 200


def test_queue_rows_show_each_deals_crm_reference_and_value(app, client, auth_headers):
    crm = auth_headers("crm")
    base = fixture("transaction_egypt_biometric.json")
    item = base["items"][0]
    screen(client, crm, base, reference={**base["reference"], "object_id": "0067F00000AAAA1"},
           items=[{**item, "quantity": 3, "unit_price": 1250.5}])
    screen(client, crm, base, reference={"system": "hubspot", "object_type": "deal", "object_id": "DEAL-2"},
           items=[item, {**item, "sku": "FR-201", "currency": "EUR", "unit_price": 990}])
    make_user(app)
    login(client)
    page = client.get("/workspace/").get_data(as_text=True)
    first, second = page.index("0067F00000AAAA1"), page.index("DEAL-2")
    assert "salesforce opportunity" in page[first:second] and "USD 3,751.50" in page[first:second]
    assert "hubspot deal" in page[second:] and "EUR 990 + USD 250,000" in page[second:]
    listed = client.get("/v1/cases", headers=auth_headers("reviewer")).get_json()["cases"]
    assert listed[1]["reference"] == {"system": "hubspot", "object_type": "deal", "object_id": "DEAL-2"}
    assert listed[1]["latest_value"] == [{"currency": "EUR", "amount": 990.0}, {"currency": "USD", "amount": 250000.0}]


CONDITIONS_TEXT = "Deploy only at ministry building entrances; no connection to street cameras."


def _both(client, headers, screening_id, txn_id):
    """The screening and the transaction as the CRM reads them."""
    return (client.get(f"/v1/screenings/{screening_id}", headers=headers).get_json(),
            client.get(f"/v1/transactions/{txn_id}", headers=headers).get_json())


def test_the_reviewers_conditions_are_a_structured_review_in_both_responses(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    s = screen(client, crm, fixture("transaction_egypt_biometric.json"))
    assert s["review"] is None and s["outstanding_conditions"] == s["conditions"]
    assert "reviewer_approval" in s["outstanding_conditions"]
    case_id = case_of(app, s["transaction_id"])["id"]
    safeguard = s["safeguards"][0]
    r = _decide(client, reviewer, case_id, decision="approve_with_conditions",
                rationale="Access control use only; audit rights agreed", conditions=CONDITIONS_TEXT,
                safeguards=[safeguard["id"]])
    assert r.status_code == 201, r.get_json()
    for answer in (r.get_json(), *_both(client, crm, s["id"], s["transaction_id"])):
        review = answer["review"]
        assert review["outcome"] == "approve_with_conditions" and review["case_id"] == case_id
        assert review["decision_id"] == r.get_json()["decision"]["id"]
        assert review["decided_by"] == "key:test-reviewer" and review["decided_at"].startswith("20")
        assert review["conditions"] == CONDITIONS_TEXT
        assert review["safeguards"] == [{"id": safeguard["id"], "title": safeguard["title"]}]
        assert review["information_requested"] is None
        # The approval is no longer outstanding; the rider (now carrying the conditions) and checklist are.
        assert answer["outstanding_conditions"] == ["rider_executed", "checklist_completed"]
    screening, _ = _both(client, crm, s["id"], s["transaction_id"])
    assert screening["conditions"] == s["conditions"]  # as screened: the record is not rewritten


def test_a_plain_approval_leaves_the_rider_and_checklist_outstanding_until_they_are_done(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    s = screen(client, crm, fixture("transaction_egypt_biometric.json"))
    assert _decide(client, reviewer, case_of(app, s["transaction_id"])["id"], decision="approve",
                   rationale="Ministry access control only").status_code == 201
    screening, record = _both(client, crm, s["id"], s["transaction_id"])
    assert record["gate"] == "release" and record["review"]["outcome"] == "approve"
    assert record["review"]["conditions"] is None and record["review"]["safeguards"] == []
    assert record["outstanding_conditions"] == screening["outstanding_conditions"] == \
        ["rider_executed", "checklist_completed"]
    r = client.post(f"/v1/transactions/{s['transaction_id']}/rider-executed", headers=auth_headers("contracts"),
                    json={"executed_by": "Ministry procurement", "executed_at": datetime.now(UTC).isoformat()})
    assert r.status_code == 201
    _, record = _both(client, crm, s["id"], s["transaction_id"])
    assert record["outstanding_conditions"] == ["checklist_completed"]
    answered = screen(client, crm, fixture("transaction_egypt_biometric.json"),
                      answers={"past_misuse": "no", "end_user_disclosed": "yes", "exports_to_abusers": "no",
                               "accepts_safeguards": "yes"})
    assert "checklist_completed" not in answered["conditions"] and answered["outstanding_conditions"] == []


@pytest.mark.parametrize("stage", ["quote", "order"])
def test_a_request_for_information_is_the_hold_reason_and_quotes_what_was_asked(app, client, auth_headers, stage):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    s = screen(client, crm, fixture("transaction_egypt_biometric.json"), stage=stage)
    case_id = case_of(app, s["transaction_id"])["id"]
    asked = "Which buildings, and will the cameras connect to the national ID database?"
    assert _decide(client, reviewer, case_id, decision="request_information", rationale=asked).status_code == 201
    for answer in _both(client, crm, s["id"], s["transaction_id"]):
        assert answer["gate"] == "hold"
        reasons = " | ".join(answer["hold_reasons"])
        assert "asked for information" in reasons and f"\u201c{asked}\u201d" in reasons
        assert "must decide" not in reasons and "awaits a reviewer" not in reasons
        assert answer["review"]["outcome"] == "request_information"
        assert answer["review"]["information_requested"] == asked and answer["review"]["conditions"] is None
        assert "reviewer_approval" in answer["outstanding_conditions"]
    # Asked with a conditions text, that text is what was requested.
    assert _decide(client, reviewer, case_id, decision="request_information", rationale="Need more detail",
                   conditions="The signed end-user certificate").status_code == 201
    _, record = _both(client, crm, s["id"], s["transaction_id"])
    assert record["review"]["information_requested"] == "The signed end-user certificate"
    assert "\u201cThe signed end-user certificate\u201d" in record["hold_reasons"][0]


def test_a_request_for_information_does_not_lower_a_block(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    s = screen(client, crm, fixture("transaction_egypt_biometric.json"), answers={"past_misuse": "yes"})
    assert s["gate"] == "block"
    assert _decide(client, reviewer, case_of(app, s["transaction_id"])["id"], decision="request_information",
                   rationale="Which reports of past misuse?").status_code == 201
    _, record = _both(client, crm, s["id"], s["transaction_id"])
    assert record["gate"] == "block"
    assert record["hold_reasons"][0].startswith("decision do_not_proceed")
    assert "asked for information" in record["hold_reasons"][1]


# ---- H1: a decision is made on the screening the reviewer was shown ----

INTERCEPTION = {"sku": "CI-9", "name": "LawfulTap Gateway", "capabilities": ["communications_interception"]}


def _decisions(app) -> list:
    with app.extensions["hrdd"].store.engine.connect() as conn:
        return conn.execute(sa.select(case_decisions).order_by(case_decisions.c.decided_at)).all()


def test_a_decision_on_a_screening_the_deal_has_moved_on_from_is_refused_naming_what_changed(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    body = fixture("transaction_egypt_biometric.json")
    shown = screen(client, crm, body)
    txn = shown["transaction_id"]
    case_id = case_of(app, txn)["id"]
    # While the reviewer reads the case, the CRM screens the deal again with an interception gateway added.
    newer = screen(client, crm, body, items=[*body["items"], INTERCEPTION])
    r = _decide(client, reviewer, case_id, decision="approve", rationale="Ministry access control only",
                screening_id=shown["id"])
    assert r.status_code == 409, r.get_json()
    error = r.get_json()
    assert error["code"] == "screening_changed" and "screening_id" in error["errors"]
    for words in (shown["id"], newer["id"], "new item: CI-9 (communications_interception)", "new red flag: RF-1.4",
                  "Review the case again"):
        assert words in error["message"], (words, error["message"])
    assert _decisions(app) == [] and _gate(client, reviewer, txn) == "hold"
    # Decided on the screening it now governs, it is recorded on that one.
    r = _decide(client, reviewer, case_id, decision="decline", rationale="Interception capability to a police force",
                screening_id=newer["id"])
    assert r.status_code == 201 and r.get_json()["decision"]["screening_id"] == newer["id"]
    assert r.get_json()["gate"] == "block"


def test_a_newer_screening_with_the_same_facts_and_flags_takes_the_decision(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    body = fixture("transaction_egypt_biometric.json")
    shown = screen(client, crm, body)
    case_id = case_of(app, shown["transaction_id"])["id"]
    # A re-send spelt differently, with a new intended use: nothing material, the same red flags.
    newer = screen(client, crm, body, intended_use="Access control at the ministry's buildings",
                   end_user={**body["end_user"], "name": "The Directorate of Public-Security."})
    assert newer["id"] != shown["id"]
    r = _decide(client, reviewer, case_id, decision="approve_with_conditions", rationale="Access control use only",
                conditions="Quarterly audit logs", screening_id=shown["id"])
    assert r.status_code == 201, r.get_json()
    assert r.get_json()["decision"]["screening_id"] == newer["id"] == r.get_json()["screening_id"]
    assert r.get_json()["gate"] == "release_with_conditions"
    with app.extensions["hrdd"].store.engine.connect() as conn:
        from hrdd import audit
        entry = next(e for e in audit.entries(conn, subject=case_id) if e["action"] == "case.decision")
    assert (entry["details"]["screening_id"], entry["details"]["screening_shown"]) == (newer["id"], shown["id"])


def test_a_screening_id_of_another_deal_or_none_at_all_is_refused(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    s = screen(client, crm, fixture("transaction_egypt_biometric.json"))
    other = screen(client, crm, fixture("transaction_norway_storage.json"))
    case_id = case_of(app, s["transaction_id"])["id"]
    for bogus in (other["id"], "scr_nope"):
        r = _decide(client, reviewer, case_id, decision="decline", rationale="Not for this end-user", screening_id=bogus)
        assert r.status_code == 422 and "screening_id" in r.get_json()["errors"], r.get_json()
    assert _decide(client, reviewer, case_id, decision="decline", rationale="Not for this end-user",
                   screening_id=7).status_code == 422
    spec = client.get("/openapi.json").get_json()
    schema = spec["paths"]["/v1/cases/{case_id}/decision"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert {"screening_id", "licence_reference"} <= set(schema["properties"])
    assert "409" in spec["paths"]["/v1/cases/{case_id}/decision"]["post"]["responses"]


@pytest.mark.parametrize("where", ["api", "workspace"])
def test_a_screening_stored_while_the_decision_waits_for_the_lock_is_seen(app, client, auth_headers, monkeypatch, where):
    """The check reads the deal's screening once the deal is locked, not what the request read before."""
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    svc = app.extensions["hrdd"]
    body = fixture("transaction_egypt_biometric.json")
    shown = screen(client, crm, body)
    case_id = case_of(app, shown["transaction_id"])["id"]
    if where == "workspace":
        make_user(app)
        login(client)
        hidden = decision_form(client, case_id)
        assert hidden["screening_id"] == shown["id"]
    real = svc.changing_gates

    def screened_meanwhile(*args, **kwargs):
        # Stored after every read the view made, just before the decision's transaction takes the locks.
        svc.screen_and_store({**body, "items": [*body["items"], INTERCEPTION]})
        return real(*args, **kwargs)

    monkeypatch.setattr(svc, "changing_gates", screened_meanwhile)
    if where == "api":
        r = _decide(client, reviewer, case_id, decision="approve", rationale="Ministry access control only",
                    screening_id=shown["id"])
    else:
        r = client.post(f"/workspace/cases/{case_id}/decision", data={
            **hidden, "decision": "approve", "rationale": "Ministry access control only"})
    assert r.status_code == 409
    assert "CI-9" in r.get_data(as_text=True)
    assert _decisions(app) == []


def test_the_case_page_refuses_a_decision_on_what_it_no_longer_shows_and_keeps_the_text(app, client, auth_headers):
    make_user(app)
    login(client)
    crm = auth_headers("crm")
    body = fixture("transaction_egypt_biometric.json")
    shown = screen(client, crm, body)
    case_id = case_of(app, shown["transaction_id"])["id"]
    hidden = decision_form(client, case_id)
    assert hidden["screening_id"] == shown["id"]
    newer = screen(client, crm, body, items=[*body["items"], INTERCEPTION])
    form = {**hidden, "decision": "approve_with_conditions", "rationale": "Access control only, audited yearly",
            "conditions": "No use at public gatherings", "licence_reference": "EG-EXP-2291", "safeguards": ["cut-off"]}
    r = client.post(f"/workspace/cases/{case_id}/decision", data=form)
    page = r.get_data(as_text=True)
    assert r.status_code == 409
    alert = page.split('id="screening-changed"')[1].split("</div>")[0]
    assert "new item: CI-9 (communications_interception)" in alert and newer["id"] in alert
    assert "Access control only, audited yearly</textarea>" in page and "No use at public gatherings</textarea>" in page
    assert 'value="EG-EXP-2291"' in page and 'id="sg-cut-off" checked' in page
    assert f'name="screening_id" value="{newer["id"]}"' in page and "LawfulTap Gateway" in page
    assert _decisions(app) == []
    # A form that does not say which screening it showed is refused the same way.
    no_id = {k: v for k, v in form.items() if k != "screening_id"}
    assert client.post(f"/workspace/cases/{case_id}/decision", data=no_id).status_code == 409
    # Sent again from the page as it is now, it is recorded on the newer screening.
    r = client.post(f"/workspace/cases/{case_id}/decision", data={**form, "screening_id": newer["id"]})
    assert r.status_code == 302
    assert [row.screening_id for row in _decisions(app)] == [newer["id"]]


# ---- H3: two approvers for embargoed, sanctioned-party and blocked deals ----

def _iran(**changes) -> dict:
    body = fixture("transaction_egypt_biometric.json")
    return {**body, "reference": {"system": "sf", "object_type": "opportunity", "object_id": "IR-7"},
            "end_user": {**body["end_user"], "country": "IR"}, "deployment_countries": ["IR"], "parties": [],
            **changes}


def _second_reviewer(app, name: str = "second-desk") -> dict:
    _, key = app.extensions["hrdd"].store.create_api_key(name, "reviewer")
    return {"Authorization": f"Bearer {key}"}


def test_approving_an_embargoed_deal_needs_a_licence_conditions_and_a_second_approver(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    quote = screen(client, crm, _iran())
    assert quote["decision"] == "do_not_proceed" and "RF-4.4" in {f["id"] for f in quote["red_flags"]}
    txn = quote["transaction_id"]
    case_id = case_of(app, txn)["id"]
    case = client.get(f"/v1/cases/{case_id}", headers=reviewer).get_json()
    assert case["dual_control"]["required"] and any(r.startswith("RF-4.4 (critical") for r in
                                                     case["dual_control"]["reasons"])
    r = _decide(client, reviewer, case_id, decision="approve", rationale="Humanitarian exemption applies")
    assert r.status_code == 422
    assert "plain approve is not available" in r.get_json()["errors"]["decision"][0]
    assert "licence_reference" in r.get_json()["errors"]
    r = _decide(client, reviewer, case_id, decision="approve_with_conditions", rationale="Humanitarian exemption",
                conditions="Hospital use only")
    assert r.status_code == 422 and list(r.get_json()["errors"]) == ["licence_reference"]
    assert _decisions(app) == []

    r = _decide(client, reviewer, case_id, decision="approve_with_conditions", rationale="Humanitarian exemption",
                conditions="Hospital access control only", licence_reference="OFAC IR-2026-1187")
    assert r.status_code == 201, r.get_json()
    first = r.get_json()
    assert first["second_approval"]["status"] == "awaiting" and first["decision"]["licence_reference"] == "OFAC IR-2026-1187"
    assert first["gate"] == "block"  # the engine's block stands until the second approval
    assert any("awaits a second approval by a different reviewer" in h for h in first["hold_reasons"])
    assert case_of(app, txn)["status"] == "awaiting_second_approval"
    awaiting = client.get(f"/v1/cases/{case_id}", headers=reviewer).get_json()["awaiting_second_approval"]
    assert awaiting["id"] == first["decision"]["id"] and awaiting["lapsed"] is None
    assert case_id in [c["id"] for c in client.get("/v1/cases", headers=reviewer).get_json()["cases"]]
    # An order meanwhile is held too, saying why.
    order = screen(client, crm, _iran(stage="order"))
    assert order["gate"] == "block" and any("awaits a second approval" in h for h in order["hold_reasons"])

    second = {"decision_id": first["decision"]["id"], "rationale": "Licence checked against the OFAC letter"}
    r = client.post(f"/v1/cases/{case_id}/second-approval", headers=reviewer, json=second)
    assert r.status_code == 403 and "different reviewer" in r.get_json()["message"]
    r = client.post(f"/v1/cases/{case_id}/second-approval", headers=_second_reviewer(app), json=second)
    assert r.status_code == 201, r.get_json()
    done = r.get_json()
    # Approved, the order governing the deal is held for its contract rider (carrying the conditions).
    assert done["gate"] == "hold" and "rider_executed" in done["outstanding_conditions"]
    assert any(h.startswith("the contract rider required by screening") for h in done["hold_reasons"])
    assert done["second_approval"] == {**done["second_approval"], "status": "given",
                                       "first_approver": "key:test-reviewer", "second_approver": "key:second-desk"}
    assert any("key:test-reviewer" in h and "key:second-desk" in h and "OFAC IR-2026-1187" in h
               for h in done["hold_reasons"])
    assert case_of(app, txn)["status"] == "decided"
    # Given once: a second time is refused.
    again = client.post(f"/v1/cases/{case_id}/second-approval", headers=_second_reviewer(app, "third"), json=second)
    assert again.status_code == 409
    # The next order keeps the reviewers' conditions: never a plain release, and only with the rider executed.
    later = screen(client, crm, _iran(stage="order"))
    assert later["gate"] == "hold", later["hold_reasons"]
    r = client.post(f"/v1/transactions/{txn}/rider-executed", headers=auth_headers("contracts"),
                    json={"executed_by": "Hospital procurement office", "executed_at": datetime.now(UTC).isoformat()})
    assert r.status_code == 201 and r.get_json()["gate"] == "release_with_conditions", r.get_json()
    rows = _decisions(app)
    assert [(row.outcome, row.second_approval_of) for row in rows] == [
        ("approve_with_conditions", None), ("approve_with_conditions", rows[0].id)]
    with app.extensions["hrdd"].store.engine.connect() as conn:
        from hrdd import audit
        from hrdd.workspace import stats
        entries = {e["action"]: e for e in audit.entries(conn, subject=case_id)}
        in_year = stats.decisions_in_year(conn, datetime.now(UTC).year)
    assert entries["case.decision"]["details"]["awaiting_second_approval"] is True
    assert entries["case.second_approval"]["details"]["second_approval_of"] == rows[0].id
    assert in_year == [{"outcome": "approve_with_conditions"}]  # one decision, not two


def test_declining_or_asking_for_information_needs_one_reviewer(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    s = screen(client, crm, _iran())
    case_id = case_of(app, s["transaction_id"])["id"]
    r = _decide(client, reviewer, case_id, decision="request_information", rationale="Who is the hospital operator?")
    assert r.status_code == 201 and r.get_json()["second_approval"] is None
    r = _decide(client, reviewer, case_id, decision="decline", rationale="Comprehensive embargo on Iran")
    assert r.status_code == 201 and r.get_json()["gate"] == "block"
    assert case_of(app, s["transaction_id"])["status"] == "decided"


def test_a_first_approval_that_no_longer_covers_the_deal_cannot_be_approved_again(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    body = _iran()
    s = screen(client, crm, body)
    case_id = case_of(app, s["transaction_id"])["id"]
    first = _decide(client, reviewer, case_id, decision="approve_with_conditions", rationale="Humanitarian exemption",
                    safeguards=["cut-off"], licence_reference="OFAC IR-2026-1187").get_json()
    screen(client, crm, body, items=[*body["items"], INTERCEPTION])
    assert case_of(app, s["transaction_id"])["status"] == "open"  # open for a new decision
    r = client.post(f"/v1/cases/{case_id}/second-approval", headers=_second_reviewer(app),
                    json={"decision_id": first["decision"]["id"], "rationale": "Licence matches the OFAC letter"})
    assert r.status_code == 409 and "no longer covers" in r.get_json()["message"]
    assert _gate(client, reviewer, s["transaction_id"]) == "block"


def _policy_section(policy: str) -> tuple[int, int]:
    """Where the shipped policy's reviewer_decisions section starts and ends (before reports:)."""
    end = policy.index("\nreports:")
    return (policy.index("reviewer_decisions:") if "reviewer_decisions:" in policy else end + 1), end


@pytest.fixture
def confirmed_match_only(app_config, tmp_path):
    """A policy whose two-person rule names only a confirmed restricted-party match."""
    from hrdd.config import load_config
    policy = open(load_config()["HRDD_POLICY_FILE"], encoding="utf-8").read()
    start, end = _policy_section(policy)
    path = tmp_path / "policy.yaml"
    path.write_text(policy[:start] + "reviewer_decisions:\n  dual_control:\n    red_flags: [{id: RF-4.3, match: confirmed}]\n"
                    "    engine_decisions: []\n" + policy[end:], encoding="utf-8")
    app_config["HRDD_POLICY_FILE"] = str(path)
    return path


@pytest.mark.no_shipped_list
def test_a_confirmed_restricted_party_match_needs_two_approvers_a_possible_one_does_not(
        confirmed_match_only, app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    load_party_list(app, b"name,aliases,country\nZephyrine Optical Systems Trading,,AE\n")
    possible = screen(client, crm, ZEPHYRINE)
    case_id = case_of(app, possible["transaction_id"])["id"]
    assert client.get(f"/v1/cases/{case_id}", headers=reviewer).get_json()["dual_control"]["required"] is False
    assert _decide(client, reviewer, case_id, decision="approve",
                   rationale="Different company: Dubai trade licence 778812").status_code == 201

    load_party_list(app, b"name,aliases,country\nZephyrine Optical Systems,,AE\n")
    confirmed = screen(client, crm, ZEPHYRINE, reference={**ZEPHYRINE["reference"], "object_id": "OV-2"})
    case_id = case_of(app, confirmed["transaction_id"])["id"]
    r = _decide(client, reviewer, case_id, decision="approve", rationale="BIS licence covers this distributor")
    assert r.status_code == 422
    assert "RF-4.3 (critical confirmed match)" in r.get_json()["errors"]["decision"][0]
    r = _decide(client, reviewer, case_id, decision="approve_with_conditions", rationale="BIS licence covers it",
                conditions="Shipment only under licence D123456", licence_reference="BIS D123456")
    assert r.status_code == 201 and r.get_json()["second_approval"]["status"] == "awaiting"
    assert r.get_json()["gate"] == "block"


def test_two_person_approval_can_be_turned_off_and_a_bad_rule_refuses_to_start(app_config, tmp_path, auth_headers):
    from hrdd.config import load_config
    from server import create_app
    policy = open(load_config()["HRDD_POLICY_FILE"], encoding="utf-8").read()
    start, end = _policy_section(policy)
    bad = tmp_path / "bad.yaml"
    bad.write_text(policy[:start] + "reviewer_decisions:\n  dual_control:\n    red_flags: [{id: RF-9.9}]\n"
                   + policy[end:], encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad.yaml.*RF-9.9"):
        create_app({**app_config, "HRDD_POLICY_FILE": str(bad)})
    off = tmp_path / "off.yaml"
    off.write_text(policy[:start] + "reviewer_decisions:\n  dual_control: {red_flags: [], engine_decisions: []}\n"
                   + policy[end:], encoding="utf-8")
    app = create_app({**app_config, "HRDD_POLICY_FILE": str(off)})
    try:
        client = app.test_client()
        _, crm = app.extensions["hrdd"].store.create_api_key("crm", "crm")
        _, rev = app.extensions["hrdd"].store.create_api_key("rev", "reviewer")
        s = screen(client, {"Authorization": f"Bearer {crm}"}, _iran())
        r = _decide(client, {"Authorization": f"Bearer {rev}"}, case_of(app, s["transaction_id"])["id"],
                    decision="approve", rationale="Our policy leaves this to one reviewer")
        assert r.status_code == 201 and r.get_json()["gate"] == "release"
    finally:
        app.extensions["hrdd"].store.engine.dispose()


def test_the_case_page_takes_a_first_approval_and_another_reviewers_second(app, client, auth_headers):
    make_user(app)
    make_user(app, "bob")
    login(client)
    s = screen(client, auth_headers("crm"), _iran())
    case_id = case_of(app, s["transaction_id"])["id"]
    page = client.get(f"/workspace/cases/{case_id}").get_data(as_text=True)
    assert 'id="dual-control"' in page and "RF-4.4" in page.split('id="dual-control"')[1][:400]
    # The reviewer learns before approving that the order will wait for the executed rider as well.
    notice = " ".join(page.split('id="dual-control"')[1].split("</p>")[0].split())
    assert "held until the contract rider with your conditions of approval, signed after the second approval" in notice
    hidden = decision_form(client, case_id)
    r = client.post(f"/workspace/cases/{case_id}/decision", data={
        **hidden, "decision": "approve", "rationale": "Humanitarian exemption applies"})
    assert r.status_code == 422 and "plain approve is not available" in r.get_data(as_text=True)
    r = client.post(f"/workspace/cases/{case_id}/decision", data={
        **hidden, "decision": "approve_with_conditions", "rationale": "Humanitarian exemption applies",
        "conditions": "Hospital access control only", "licence_reference": "OFAC IR-2026-1187"}, follow_redirects=True)
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "awaits a second approval by a different reviewer" in page
    assert "until the contract rider with the conditions of approval, signed after the second approval" in " ".join(page.split())
    assert 'data-gate="block"' in page and 'id="own-approval"' in page and "submit-second-approval" not in page
    client.post("/workspace/logout", data={"csrf_token": csrf_from(client, "/workspace/")})
    login(client, "bob")
    page = client.get(f"/workspace/cases/{case_id}").get_data(as_text=True)
    assert "submit-second-approval" in page and "OFAC IR-2026-1187" in page
    decision_id = re.search(r'name="decision_id" value="([^"]+)"', page).group(1)
    r = client.post(f"/workspace/cases/{case_id}/second-approval", data={
        **decision_form(client, case_id), "decision_id": decision_id, "rationale": "short"})
    assert r.status_code == 422 and "at least 10 characters" in r.get_data(as_text=True)
    r = client.post(f"/workspace/cases/{case_id}/second-approval", data={
        **decision_form(client, case_id), "decision_id": decision_id,
        "rationale": "Licence checked against the OFAC letter"}, follow_redirects=True)
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and 'data-gate="release_with_conditions"' in page
    assert "Approved by user:alice and user:bob" in page


# ---- M4: safeguards a decision names must exist ----

def test_a_made_up_safeguard_is_refused_naming_the_accepted_ones(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    s = screen(client, crm, fixture("transaction_egypt_biometric.json"))
    case_id = case_of(app, s["transaction_id"])["id"]
    r = _decide(client, reviewer, case_id, decision="approve_with_conditions", rationale="Safeguards agreed",
                safeguards=["totally-made-up", "cut-off"])
    assert r.status_code == 422
    message = r.get_json()["errors"]["safeguards"][0]
    assert "totally-made-up" in message and "cut-off" in message and "tech-intrusion-software" in message
    assert _decisions(app) == []
    # A safeguard of the catalogue the screening did not call for may be required.
    r = _decide(client, reviewer, case_id, decision="approve_with_conditions", rationale="Safeguards agreed",
                safeguards=["tech-intrusion-software"])
    assert r.status_code == 201 and r.get_json()["decision"]["safeguards"] == ["tech-intrusion-software"]
    make_user(app)
    login(client)
    r = client.post(f"/workspace/cases/{case_id}/decision", data={
        **decision_form(client, case_id), "decision": "approve_with_conditions", "rationale": "Safeguards agreed",
        "safeguards": ["totally-made-up"]})
    assert r.status_code == 422 and "unknown safeguard id(s): totally-made-up" in r.get_data(as_text=True)
    assert len(_decisions(app)) == 1
