"""Write-back of gate changes that are not screenings: a reviewer's decision, a grievance, an executed rider.

Each change that moves a deal's gate queues one write-back for the deal's CRM record, in the transaction of
the change; only for systems configured for write-back; none when the gate stays where it was, except for a
reviewer's request for information (the CRM shows what was asked).
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest

from hrdd.hookspecs import hookimpl
from tests.adapter_support import FakeServer, outbox_rows
from tests.test_order_gate import BERGEN
from tests.test_workspace_cases import _iran, _second_reviewer
from tests.workspace_helpers import case_of, csrf_from, decision_form, fixture, login, make_user, screen

HUBSPOT_DEAL = "/crm/v3/objects/deals/{object_id}"
RECORDS = "/records/{object_id}"


@pytest.fixture
def fake_crm():
    def accept(request):
        return 200, {"ok": True}

    with FakeServer() as fake:
        fake.routes = _Any(accept)
        yield fake


class _Any(dict):
    """Routes that answer every PATCH/POST with the same callable (the tests read what was sent)."""

    def __init__(self, answer):
        super().__init__()
        self.answer = answer

    def get(self, key, default=None):
        return self.answer if key[0] in ("PATCH", "POST") else default


@pytest.fixture
def app_config(app_config, fake_crm):
    app_config["HRDD_ADAPTERS"] = {"writeback": {
        "hubspot": {"url": fake_crm.url + HUBSPOT_DEAL, "access_token": "pat-na1-test"},
        "salesforce": {"url": fake_crm.url + RECORDS, "kind": "generic", "method": "POST"}}}
    return app_config


def hubspot_deal(body: dict, object_id: str = "19184211867") -> dict:
    return {**copy.deepcopy(body), "reference": {"system": "hubspot", "object_type": "deal", "object_id": object_id}}


def deliver(app) -> dict:
    from hrdd.adapters import outbox
    from hrdd.adapters.config import settings_for

    with app.app_context():
        return outbox.deliver_due(app.extensions["hrdd"], settings_for(app))


def sent(fake, object_id: str) -> list[dict]:
    """The bodies written back to one record, oldest first."""
    return [json.loads(r["body"]) for r in fake.requests if r["path"].rstrip("/").endswith("/" + object_id)]


def rows_for(app, transaction_id: str) -> list[dict]:
    return [r for r in outbox_rows(app) if r["transaction_id"] == transaction_id]


def test_a_reviewers_decision_reaches_the_crm(app, client, auth_headers, fake_crm):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    deal = screen(client, crm, hubspot_deal(fixture("transaction_egypt_biometric.json")))
    assert deal["gate"] == "hold"
    assert deliver(app)["delivered"] == 1
    assert sent(fake_crm, "19184211867")[-1]["properties"]["hrdd_gate"] == "hold"
    case_id = case_of(app, deal["transaction_id"])["id"]

    # A request for information leaves the gate at hold, and is written back: the rep sees what was asked.
    r = client.post(f"/v1/cases/{case_id}/decision", headers=reviewer,
                    json={"decision": "request_information", "rationale": "Which buildings, which cameras?"})
    assert r.status_code == 201 and r.json["gate"] == "hold"
    assert len(rows_for(app, deal["transaction_id"])) == 2
    assert deliver(app)["delivered"] == 1
    written = sent(fake_crm, "19184211867")[-1]["properties"]
    assert written["hrdd_gate"] == "hold" and "\u201cWhich buildings, which cameras?\u201d" in written["hrdd_reason"]

    r = client.post(f"/v1/cases/{case_id}/decision", headers=reviewer,
                    json={"decision": "approve", "rationale": "Access control at ministry buildings only"})
    assert r.status_code == 201 and r.json["gate"] == "release"
    rows = rows_for(app, deal["transaction_id"])
    assert len(rows) == 3 and rows[-1]["status"] == "pending"
    assert rows[-1]["object_type"] == "deal" and rows[-1]["object_id"] == "19184211867"
    assert deliver(app)["delivered"] == 1
    written = sent(fake_crm, "19184211867")[-1]["properties"]
    assert written["hrdd_gate"] == "release" and "reviewer decision" in written["hrdd_reason"]
    assert written["hrdd_screening_id"] == deal["id"]

    # Declined later: block.
    client.post(f"/v1/cases/{case_id}/decision", headers=reviewer,
                json={"decision": "decline", "rationale": "New reports of misuse by this directorate"})
    assert len(rows_for(app, deal["transaction_id"])) == 4
    deliver(app)
    assert sent(fake_crm, "19184211867")[-1]["properties"]["hrdd_gate"] == "block"


def test_a_decision_in_the_workspace_reaches_the_crm_and_unconfigured_systems_get_nothing(
        app, client, auth_headers, fake_crm):
    crm = auth_headers("crm")
    deal = screen(client, crm, hubspot_deal(fixture("transaction_egypt_biometric.json")))
    other = screen(client, crm, fixture("transaction_egypt_biometric.json"),
                   reference={"system": "netsuite", "object_type": "estimate", "object_id": "77"})
    make_user(app)
    login(client)
    for transaction_id in (deal["transaction_id"], other["transaction_id"]):
        case_id = case_of(app, transaction_id)["id"]
        r = client.post(f"/workspace/cases/{case_id}/decision", data={
            **decision_form(client, case_id), "decision": "approve", "rationale": "Access control at ministry buildings only"})
        assert r.status_code == 302
    assert len(rows_for(app, deal["transaction_id"])) == 2
    assert rows_for(app, other["transaction_id"]) == []  # netsuite has no write-back configured


def test_a_credible_grievance_holds_the_end_users_deals_in_the_crm_and_closing_it_releases_them(
        app, client, auth_headers, fake_crm):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    norway = fixture("transaction_norway_storage.json")
    first = screen(client, crm, hubspot_deal(norway, "501"))
    second = screen(client, crm, norway, reference={"system": "salesforce", "object_type": "Opportunity",
                                                     "object_id": "006-502"})
    unrelated = screen(client, crm, hubspot_deal(norway, "503"),
                       end_user={**norway["end_user"], "name": "Nordlys Handel AS"})
    assert {first["gate"], second["gate"], unrelated["gate"]} == {"release"}
    assert deliver(app)["delivered"] == 3
    gid = client.post("/v1/grievances", json={
        "subject_name": "Fjordhandel", "country": "Norway",
        "description": "Their storage is used to keep footage of union meetings taken without consent."}).json["reference"]

    def triage(**body):
        r = client.post(f"/v1/grievances/{gid}/triage", headers=reviewer, json=body)
        assert r.status_code == 200, r.json

    triage(status="under_review", credible=None)  # not assessed yet: nothing moves
    assert len(outbox_rows(app)) == 3
    triage(status="investigating", credible=True, end_user={"name": "Fjordhandel AS.", "country": "Norway"})
    pending = outbox_rows(app, "pending")
    assert sorted(r["transaction_id"] for r in pending) == sorted([first["transaction_id"], second["transaction_id"]])
    assert deliver(app)["delivered"] == 2
    assert sent(fake_crm, "501")[-1]["properties"]["hrdd_gate"] == "hold"
    assert gid in sent(fake_crm, "501")[-1]["properties"]["hrdd_reason"]
    assert sent(fake_crm, "006-502")[-1]["gate"] == "hold"
    assert len(sent(fake_crm, "503")) == 1  # another end-user: only its screening was written

    triage(status="investigating", credible=True, end_user={"name": "Fjordhandel AS", "country": "NO"},
           public_note="We have asked the customer for an explanation.")
    assert outbox_rows(app, "pending") == []  # the same holds: nothing to tell the CRM

    triage(status="closed", credible=True, end_user={"name": "Fjordhandel AS", "country": "NO"})
    assert len(outbox_rows(app, "pending")) == 2
    deliver(app)
    assert sent(fake_crm, "501")[-1]["properties"]["hrdd_gate"] == "release"
    assert sent(fake_crm, "006-502")[-1]["gate"] == "release"


def test_a_grievance_linked_to_a_deal_holds_it_in_the_crm(app, client, auth_headers, fake_crm):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    deal = screen(client, crm, hubspot_deal(fixture("transaction_norway_storage.json"), "601"))
    gid = client.post("/v1/grievances", json={
        "subject_name": "A retailer's security team",
        "description": "Footage from the stores is shared with a private militia in the region."}).json["reference"]
    client.post(f"/v1/grievances/{gid}/triage", headers=reviewer, json={"status": "under_review", "credible": True})
    assert len(rows_for(app, deal["transaction_id"])) == 1  # not about this deal's end-user
    r = client.post(f"/v1/grievances/{gid}/links", headers=reviewer, json={"transaction_id": deal["transaction_id"]})
    assert r.status_code == 200
    assert len(rows_for(app, deal["transaction_id"])) == 2
    client.post(f"/v1/grievances/{gid}/links", headers=reviewer, json={"transaction_id": deal["transaction_id"]})
    assert len(rows_for(app, deal["transaction_id"])) == 2  # linked already: no change
    deliver(app)
    assert sent(fake_crm, "601")[-1]["properties"]["hrdd_gate"] == "hold"


def test_a_triage_in_the_workspace_reaches_the_crm(app, client, auth_headers, fake_crm):
    deal = screen(client, auth_headers("crm"), hubspot_deal(fixture("transaction_norway_storage.json"), "701"))
    gid = client.post("/v1/grievances", json={
        "subject_name": "Fjordhandel AS", "description": "Their cameras film the staff toilets in every store."
    }).json["reference"]
    make_user(app)
    login(client)
    token = csrf_from(client, f"/workspace/grievances/{gid}")
    r = client.post(f"/workspace/grievances/{gid}/triage", data={
        "csrf_token": token, "status": "investigating", "credible": "yes", "end_user_name": "Fjordhandel AS",
        "end_user_country": "Norway", "public_note": ""})
    assert r.status_code == 302
    assert len(rows_for(app, deal["transaction_id"])) == 2
    deliver(app)
    assert sent(fake_crm, "701")[-1]["properties"]["hrdd_gate"] == "hold"


def test_an_executed_rider_reaches_the_crm_once_with_the_conditions_in_words(app, client, auth_headers, fake_crm):
    crm, contracts = auth_headers("crm"), auth_headers("contracts")
    body = hubspot_deal(BERGEN, "801")
    body["answers"] = {"past_misuse": "no", "end_user_disclosed": "yes"}  # two checklist questions open
    quote = screen(client, crm, body, stage="quote")
    assert quote["gate"] == "release_with_conditions"
    deliver(app)
    at_quote = sent(fake_crm, "801")[-1]["properties"]
    assert at_quote["hrdd_gate"] == "release_with_conditions"
    reason = at_quote["hrdd_reason"]
    assert reason.startswith("released on conditions: ") and "no red flags" not in reason
    assert "the customer must sign the contract rider with the human rights clauses before the order" in reason
    assert "the due diligence checklist must be completed (not answered yet: exports to abusers, " \
           "accepts safeguards)" in reason

    order = screen(client, crm, body, stage="order")
    assert order["gate"] == "hold"
    deliver(app)
    held = sent(fake_crm, "801")[-1]["properties"]
    assert held["hrdd_gate"] == "hold" and "rider" in held["hrdd_reason"]
    assert "/v1/" not in held["hrdd_reason"] and "POST" not in held["hrdd_reason"]  # no API instructions

    signed = {"executed_by": "Ingrid Berg (contracts)", "executed_at": datetime.now(UTC).isoformat()}
    r = client.post(f"/v1/transactions/{order['transaction_id']}/rider-executed", json=signed, headers=contracts)
    assert r.status_code == 201 and r.json["gate"] == "release_with_conditions"
    assert len(outbox_rows(app, "pending")) == 1
    deliver(app)
    released = sent(fake_crm, "801")[-1]["properties"]
    assert released["hrdd_gate"] == "release_with_conditions"
    assert "the contract rider with the human rights clauses is executed and covers this order" in \
        released["hrdd_reason"]
    # Recorded again (a second signed copy): the gate does not move, the CRM hears nothing new.
    r = client.post(f"/v1/transactions/{order['transaction_id']}/rider-executed", json=signed, headers=contracts)
    assert r.status_code == 201 and outbox_rows(app, "pending") == []


def test_the_generic_body_carries_the_conditions_and_a_reviewers_conditions(app, client, auth_headers, fake_crm):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    deal = screen(client, crm, fixture("transaction_egypt_biometric.json"),
                  reference={"system": "salesforce", "object_type": "Opportunity", "object_id": "006-901"})
    case_id = case_of(app, deal["transaction_id"])["id"]
    safeguard = deal["safeguards"][0]
    r = client.post(f"/v1/cases/{case_id}/decision", headers=reviewer, json={
        "decision": "approve_with_conditions", "rationale": "Access control at ministry buildings only",
        "conditions": "Quarterly audit of the access logs", "safeguards": [safeguard["id"]]})
    assert r.status_code == 201 and r.json["gate"] == "release_with_conditions"
    deliver(app)
    body = sent(fake_crm, "006-901")[-1]
    assert body["gate"] == "release_with_conditions"
    assert "the reviewer's conditions: Quarterly audit of the access logs" in body["conditions"]
    assert safeguard.get("title", safeguard["id"]) in body["conditions"]
    assert "the customer must sign the contract rider" in body["conditions"]
    assert "a human rights reviewer must approve" not in body["conditions"]  # a reviewer did
    assert body["reason"].startswith("reviewer decision ") and "released on conditions: " in body["reason"]


def test_the_write_back_quotes_what_the_reviewer_asked_for_and_the_conditions_with_safeguards(
        app, client, auth_headers, fake_crm):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    body = hubspot_deal(fixture("transaction_egypt_biometric.json"), "902")
    deal = screen(client, crm, body)
    case_id = case_of(app, deal["transaction_id"])["id"]
    asked = "The signed end-user certificate naming each building"
    r = client.post(f"/v1/cases/{case_id}/decision", headers=reviewer, json={
        "decision": "request_information", "rationale": "Before deciding I need the certificate", "conditions": asked})
    assert r.status_code == 201 and r.json["gate"] == "hold"
    assert deliver(app)["delivered"] == 2  # the screening's write-back, and the request's
    reason = sent(fake_crm, "902")[-1]["properties"]["hrdd_reason"]
    assert "asked for information" in reason and f"\u201c{asked}\u201d" in reason
    assert "must decide" not in reason
    safeguards = [s for s in deal["safeguards"] if s["id"] in ("audit", "tech-biometric-identification")]
    r = client.post(f"/v1/cases/{case_id}/decision", headers=reviewer, json={
        "decision": "approve_with_conditions", "rationale": "Certificate received and checked",
        "conditions": "Deploy only at ministry building entrances", "safeguards": [s["id"] for s in safeguards]})
    assert r.status_code == 201 and r.json["gate"] == "release_with_conditions"
    deliver(app)
    reason = sent(fake_crm, "902")[-1]["properties"]["hrdd_reason"]
    assert "the reviewer's conditions: Deploy only at ministry building entrances" in reason
    assert "the safeguards the reviewer requires: " + "; ".join(s["title"] for s in safeguards) in reason
    assert "sign the contract rider with the human rights clauses and the reviewer's conditions of approval" in reason
    assert "asked for information" not in reason


def test_a_request_for_information_reaches_the_crm_from_the_workspace_and_on_a_blocked_deal(
        app, client, auth_headers, fake_crm):
    crm = auth_headers("crm")
    held = screen(client, crm, hubspot_deal(fixture("transaction_egypt_biometric.json"), "951"))
    blocked = screen(client, crm, hubspot_deal(_iran(), "952"))
    assert (held["gate"], blocked["gate"]) == ("hold", "block")
    assert deliver(app)["delivered"] == 2
    make_user(app)
    login(client)
    asked = {"951": "Which buildings, and will the cameras connect to the national ID database?",
             "952": "Which OFAC licence covers the hospital, and who operates it?"}
    for deal, object_id in ((held, "951"), (blocked, "952")):
        case_id = case_of(app, deal["transaction_id"])["id"]
        r = client.post(f"/workspace/cases/{case_id}/decision", data={
            **decision_form(client, case_id), "decision": "request_information", "rationale": asked[object_id]})
        assert r.status_code == 302
        assert len(rows_for(app, deal["transaction_id"])) == 2
    assert deliver(app)["delivered"] == 2
    for object_id, gate in (("951", "hold"), ("952", "block")):
        written = sent(fake_crm, object_id)[-1]["properties"]
        assert written["hrdd_gate"] == gate
        assert "asked for information" in written["hrdd_reason"]
        assert f"\u201c{asked[object_id]}\u201d" in written["hrdd_reason"]
    assert sent(fake_crm, "952")[-1]["properties"]["hrdd_reason"].startswith("decision do_not_proceed")


def test_an_order_approved_by_two_reviewers_is_written_back_held_then_released_with_its_rider(
        app, client, auth_headers, fake_crm):
    crm, reviewer, contracts = auth_headers("crm"), auth_headers("reviewer"), auth_headers("contracts")
    order = screen(client, crm, hubspot_deal(_iran(stage="order"), "961"))
    case_id = case_of(app, order["transaction_id"])["id"]
    first = client.post(f"/v1/cases/{case_id}/decision", headers=reviewer, json={
        "decision": "approve_with_conditions", "rationale": "Humanitarian exemption applies",
        "conditions": "Hospital access control only", "licence_reference": "OFAC IR-2026-1187"}).json
    r = client.post(f"/v1/cases/{case_id}/second-approval", headers=_second_reviewer(app), json={
        "decision_id": first["decision"]["id"], "rationale": "Licence checked against the OFAC letter"})
    assert r.status_code == 201 and r.json["gate"] == "hold"  # block -> hold: the rider
    deliver(app)
    held = sent(fake_crm, "961")[-1]["properties"]
    assert held["hrdd_gate"] == "hold" and "contract rider" in held["hrdd_reason"]
    r = client.post(f"/v1/transactions/{order['transaction_id']}/rider-executed", headers=contracts,
                    json={"executed_by": "Hospital procurement office", "executed_at": datetime.now(UTC).isoformat()})
    assert r.status_code == 201 and r.json["gate"] == "release_with_conditions"
    deliver(app)
    released = sent(fake_crm, "961")[-1]["properties"]
    assert released["hrdd_gate"] == "release_with_conditions"
    assert ("the contract rider with the human rights clauses and the reviewer's conditions of approval is "
            "executed and covers this order") in released["hrdd_reason"]


class GateWatcher:
    """A plugin that records each hrdd_gate_changed call, and whether it ran inside the change's transaction."""

    def __init__(self):
        self.calls: list[dict] = []

    @hookimpl
    def hrdd_gate_changed(self, transaction_id, reference, gate, previous_gate, reasons, screening, cause,
                          connection, store):
        import sqlalchemy as sa

        from hrdd.workspace.tables import case_decisions

        self.calls.append({"transaction_id": transaction_id, "reference": reference, "gate": gate,
                           "previous_gate": previous_gate, "cause": cause, "screening_id": screening["id"],
                           "in_transaction": connection.in_transaction(),
                           # The decision is visible on the connection: it is the change's own transaction.
                           "decisions": connection.execute(sa.select(sa.func.count()).select_from(case_decisions))
                           .scalar_one()})


def test_the_hook_runs_once_per_moved_gate_or_request_for_information_inside_the_change(app, client, auth_headers):
    watcher = GateWatcher()
    app.extensions["hrdd"].pm.register(watcher)
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    deal = screen(client, crm, fixture("transaction_egypt_biometric.json"))
    case_id = case_of(app, deal["transaction_id"])["id"]
    client.post(f"/v1/cases/{case_id}/decision", headers=reviewer,
                json={"decision": "request_information", "rationale": "Which buildings, which cameras?"})
    client.post(f"/v1/cases/{case_id}/decision", headers=reviewer,  # refused (too short): nothing
                json={"decision": "request_information", "rationale": "Which?"})
    client.post(f"/v1/cases/{case_id}/decision", headers=reviewer,
                json={"decision": "approve", "rationale": "Access control at ministry buildings only"})
    common = {"transaction_id": deal["transaction_id"], "reference": deal["transaction"]["reference"],
              "screening_id": deal["id"], "in_transaction": True}
    assert watcher.calls == [
        {**common, "gate": "hold", "previous_gate": "hold", "decisions": 1,
         "cause": f"reviewer decision on case {case_id}: request information"},
        {**common, "gate": "release", "previous_gate": "hold", "decisions": 2,
         "cause": f"reviewer decision on case {case_id}: approve"}]


def test_a_failing_hook_rolls_the_decision_back(app, client, auth_headers):
    class Broken:
        @hookimpl
        def hrdd_gate_changed(self, transaction_id, reference, gate, previous_gate, reasons, screening, cause,
                              connection, store):
            raise RuntimeError("outbox unavailable")

    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    deal = screen(client, crm, hubspot_deal(fixture("transaction_egypt_biometric.json")))
    app.extensions["hrdd"].pm.register(Broken())
    case_id = case_of(app, deal["transaction_id"])["id"]
    r = client.post(f"/v1/cases/{case_id}/decision", headers=reviewer,
                    json={"decision": "approve", "rationale": "Access control at ministry buildings only"})
    assert r.status_code == 500
    assert client.get(f"/v1/transactions/{deal['transaction_id']}", headers=reviewer).json["gate"] == "hold"
    assert client.get(f"/v1/cases/{case_id}", headers=reviewer).json["decisions"] == []
