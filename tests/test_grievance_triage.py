"""Grievance triage: partial updates keep what they leave out, holds name their remedy, the list pages."""

from __future__ import annotations

import re

from tests.test_grievances import _submit
from tests.workspace_helpers import csrf_from, fixture, login, make_user, screen


def _held_deal(client, crm, reviewer) -> tuple[str, str]:
    """A released Egyptian deal and a credible grievance about its end-user (the deal is now on hold)."""
    deal = screen(client, crm, fixture("transaction_egypt_biometric.json"))
    case_id = client.get("/v1/cases", headers=reviewer).get_json()["cases"][0]["id"]
    client.post(f"/v1/cases/{case_id}/decision", headers=reviewer,
                json={"decision": "approve", "rationale": "Access control at ministry buildings only"})
    gid = _submit(client).get_json()["reference"]
    r = client.post(f"/v1/grievances/{gid}/triage", headers=reviewer, json={
        "status": "investigating", "credible": True, "public_note": "We are looking into it.",
        "end_user": {"name": "Directorate of Public Security", "country": "EG"}})
    assert r.status_code == 200, r.get_json()
    return deal["transaction_id"], gid


def _gate(client, headers, txn_id) -> dict:
    return client.get(f"/v1/transactions/{txn_id}", headers=headers).get_json()


def test_a_partial_triage_keeps_what_it_leaves_out(client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    txn_id, gid = _held_deal(client, crm, reviewer)
    assert _gate(client, reviewer, txn_id)["gate"] == "hold"
    r = client.post(f"/v1/grievances/{gid}/triage", headers=reviewer, json={"status": "under_review"})
    assert r.status_code == 200, r.get_json()
    after = r.get_json()
    assert after["status"] == "under_review" and after["credible"] is True and after["open_credible"] is True
    assert after["end_user_key"] and after["public_note"] == "We are looking into it."
    assert _gate(client, reviewer, txn_id)["gate"] == "hold"
    # An explicit null clears: the end-user link goes, and with it the hold.
    cleared = client.post(f"/v1/grievances/{gid}/triage", headers=reviewer, json={"end_user": None}).get_json()
    assert cleared["end_user_key"] is None and cleared["credible"] is True and cleared["status"] == "under_review"
    assert _gate(client, reviewer, txn_id)["gate"] != "hold"
    assert client.post(f"/v1/grievances/{gid}/triage", headers=reviewer,
                       json={"status": None}).status_code == 422


def test_the_triage_page_saves_its_prefilled_fields(app, client, auth_headers):
    make_user(app)
    login(client)
    gid = _submit(client).get_json()["reference"]
    token = csrf_from(client, f"/workspace/grievances/{gid}")
    client.post(f"/workspace/grievances/{gid}/triage", data={
        "csrf_token": token, "status": "investigating", "credible": "yes",
        "end_user_name": "Directorate of Public Security", "end_user_country": "EG", "public_note": "Noted."})
    r = client.post(f"/workspace/grievances/{gid}/triage", data={
        "csrf_token": token, "status": "under_review", "credible": "", "end_user_name": "",
        "end_user_country": "", "public_note": ""})
    assert r.status_code == 302
    item = client.get(f"/v1/grievances/{gid}", headers=auth_headers("reviewer")).get_json()
    assert item["credible"] is None and item["end_user_key"] is None and item["public_note"] is None


def test_the_grievance_hold_names_what_lifts_it(client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    txn_id, gid = _held_deal(client, crm, reviewer)
    screen(client, crm, fixture("transaction_egypt_biometric.json"))  # re-screened: RF-7.1 opens a new case
    case = client.get("/v1/cases", headers=reviewer).get_json()["cases"][0]
    assert client.post(f"/v1/cases/{case['id']}/decision", headers=reviewer, json={
        "decision": "approve", "rationale": "Re-reviewed after the grievance"}).status_code in (200, 201)
    held = _gate(client, reviewer, txn_id)
    reason = next(r for r in held["hold_reasons"] if gid in r)
    assert held["gate"] == "hold" and "re-review required" not in reason
    assert "close the grievance or mark it not credible" in reason and f"/workspace/grievances/{gid}" in reason
    client.post(f"/v1/grievances/{gid}/triage", headers=reviewer, json={"credible": False})
    assert _gate(client, reviewer, txn_id)["gate"] == "release"


def _many(app, count: int) -> list[str]:
    from hrdd.workspace import grievances
    from tests.test_grievances import REPORT
    with app.extensions["hrdd"].store.begin() as conn:
        return [grievances.submit(conn, {**REPORT, "subject_name": f"Unit {n}"})["reference"] for n in range(count)]


def test_the_grievance_list_pages_with_a_total(app, client, auth_headers):
    ids = _many(app, 211)
    reviewer = auth_headers("reviewer")
    first = client.get("/v1/grievances", headers=reviewer).get_json()
    assert first["total"] == 211 and len(first["grievances"]) == 100
    last = client.get("/v1/grievances?status=open&limit=100&offset=200", headers=reviewer).get_json()
    assert [g["id"] for g in last["grievances"]] == ids[200:]
    assert client.get("/v1/grievances?limit=0", headers=reviewer).status_code == 400
    make_user(app)
    login(client)
    page = client.get("/workspace/grievances/").get_data(as_text=True)
    assert "211 grievances" in page and "Next page" in page and ids[-1] not in page
    page5 = client.get("/workspace/grievances/?status=open&page=5").get_data(as_text=True)
    assert ids[-1] in page5 and "Previous page" in page5 and "Next page" not in page5


def test_an_unknown_status_filter_is_a_400_naming_the_accepted_ones(app, client, auth_headers):
    r = client.get("/v1/grievances?status=bogus", headers=auth_headers("reviewer"))
    assert r.status_code == 400 and "investigating" in r.get_json()["message"] and "open" in r.get_json()["message"]
    make_user(app)
    login(client)
    page = client.get("/workspace/grievances/?status=bogus")
    assert page.status_code == 400 and "under_review" in page.get_data(as_text=True)
    assert client.get("/workspace/grievances/?page=x").status_code == 400


def test_a_session_without_the_csrf_header_is_told_to_send_it(app, client):
    make_user(app)
    login(client)
    gid = _submit(client).get_json()["reference"]
    r = client.post(f"/v1/grievances/{gid}/triage", json={"status": "under_review"})
    assert r.status_code == 401 and "X-CSRF-Token" in r.get_json()["message"]
    assert "none was sent" in r.get_json()["message"]
    token = csrf_from(client, "/workspace/grievances/")
    ok = client.post(f"/v1/grievances/{gid}/triage", json={"status": "under_review"}, headers={"X-CSRF-Token": token})
    assert ok.status_code == 200 and ok.get_json()["status"] == "under_review"


def test_the_linked_end_user_reads_as_the_officer_typed_it(app, client):
    make_user(app)
    login(client)
    gid = _submit(client).get_json()["reference"]
    token = csrf_from(client, f"/workspace/grievances/{gid}")
    client.post(f"/workspace/grievances/{gid}/triage", data={
        "csrf_token": token, "status": "under_review", "credible": "yes", "end_user_name": "Ministry of  Interior",
        "end_user_country": "Egypt", "public_note": ""})
    page = client.get(f"/workspace/grievances/{gid}").get_data(as_text=True)
    assert 'name="end_user_name" value="Ministry of Interior"' in page
    listing = client.get("/workspace/grievances/").get_data(as_text=True)
    assert "Ministry of Interior (EG)" in listing and "|EG" not in listing


def test_the_grievance_page_names_the_deals_it_holds_or_says_it_holds_none(app, client, auth_headers):
    """The officer links an end-user by typing its name: the page says which stored deals that reaches."""
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    txn_id, gid = _held_deal(client, crm, reviewer)
    make_user(app)
    login(client)
    page = client.get(f"/workspace/grievances/{gid}").get_data(as_text=True)
    assert txn_id in page and "holds 1 deal" in page
    # A misspelt end-user reaches no deal: the page must not claim it holds the end-user's deals.
    client.post(f"/v1/grievances/{gid}/triage", headers=reviewer,
                json={"end_user": {"name": "Directorate of Public Securty Forces", "country": "EG"}})
    page = client.get(f"/workspace/grievances/{gid}").get_data(as_text=True)
    assert txn_id not in page and "holds this end-user" not in page
    assert "No stored deal</strong> is linked to it or names its end-user" in page
    assert _gate(client, reviewer, txn_id)["gate"] != "hold"


def test_the_list_shows_how_long_each_report_has_waited_and_which_are_overdue(app_config, tmp_path):
    """With the policy's review_within_days, reporters are told the time frame and late reports stand out."""
    import sqlalchemy as sa

    from hrdd.config import load_config
    from hrdd.workspace.tables import grievances as grievances_table
    from hrdd.workspace.util import days_ago_iso
    from server import create_app
    from tests.test_grievances import REPORT
    policy = tmp_path / "policy.yaml"
    policy.write_text(load_config()["HRDD_POLICY_FILE"].read_text(encoding="utf-8").replace(
        "possible_match_threshold: 88", "possible_match_threshold: 88\n  review_within_days: 7"), encoding="utf-8")
    application = create_app({**app_config, "HRDD_POLICY_FILE": str(policy)})
    client = application.test_client()
    token = csrf_from(client, "/grievances/")
    sent = client.post("/grievances/", data={"csrf_token": token, **REPORT}).get_data(as_text=True)
    assert "within 7 days" in sent
    old = client.post("/v1/grievances", json={**REPORT, "location": "Giza"}).get_json()["reference"]
    reviewed = client.post("/v1/grievances", json={**REPORT, "location": "Alexandria"}).get_json()["reference"]
    with application.extensions["hrdd"].store.engine.begin() as conn:
        conn.execute(sa.update(grievances_table).where(grievances_table.c.id.in_((old, reviewed)))
                     .values(received_at=days_ago_iso(10)))
        conn.execute(sa.update(grievances_table).where(grievances_table.c.id == reviewed)
                     .values(status="under_review"))
    make_user(application)
    login(client)
    page = client.get("/workspace/grievances/").get_data(as_text=True)
    application.extensions["hrdd"].store.engine.dispose()
    rows = {gid: row for gid, row in re.findall(r'(grv_[0-9A-Z]+)</a>(.*?)</tr>', page, re.S)}
    assert "10 days" in rows[old] and "not reviewed within 7 days" in rows[old]
    assert "10 days" in rows[reviewed] and "not reviewed" not in rows[reviewed]
    assert "not reviewed" not in "".join(v for k, v in rows.items() if k not in (old, reviewed))


def test_a_time_frame_that_is_not_whole_days_stops_start_up_naming_it(app_config, tmp_path):
    import pytest

    from hrdd.config import load_config
    from hrdd.errors import StartupError
    from server import create_app
    policy = tmp_path / "policy.yaml"
    policy.write_text(load_config()["HRDD_POLICY_FILE"].read_text(encoding="utf-8").replace(
        "possible_match_threshold: 88", "possible_match_threshold: 88\n  review_within_days: two weeks"),
        encoding="utf-8")
    with pytest.raises(StartupError, match="grievances.review_within_days must be a whole number"):
        create_app({**app_config, "HRDD_POLICY_FILE": str(policy)})
