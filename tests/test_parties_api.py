"""Restricted parties over HTTP: POST /v1/parties/screen, RF-4.3 in screenings, false-positive memory."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from hrdd.parties import service, storage
from hrdd.parties.loaders import load_bytes, load_file

pytestmark = pytest.mark.api

FIXTURES = Path(__file__).parent / "fixtures"
NORWAY = json.loads((FIXTURES / "transaction_norway_storage.json").read_text(encoding="utf-8"))


def deal(object_id: str, *parties: dict, end_user: dict | None = None) -> dict:
    """The Norway storage deal (clean on its own) with the given parties."""
    body = copy.deepcopy(NORWAY)
    body["reference"]["object_id"] = object_id
    body["parties"] = list(parties)
    if end_user:
        body["end_user"] = {**body["end_user"], **end_user}
    return body


def screen_name(client, headers, name, country=None):
    r = client.post("/v1/parties/screen", json={"name": name, **({"country": country} if country else {})},
                    headers=headers)
    assert r.status_code == 200, r.json
    return r.json


def load_list(app, raw: bytes, name: str) -> int:
    store = app.extensions["hrdd"].store
    loaded = load_bytes(raw, list_name=name, source_file=f"{name}.csv")
    version = storage.save_version(store, loaded, name, "test", sum(len(e.names()) for e in loaded.entries))
    service.invalidate(store)
    return version["id"]


def test_screen_needs_a_crm_key(client, auth_headers):
    body = {"name": "Hikvision"}
    assert client.post("/v1/parties/screen", json=body).status_code == 401
    r = client.post("/v1/parties/screen", json=body, headers=auth_headers("reviewer"))
    assert r.status_code == 403 and r.json["code"] == "forbidden"
    assert client.post("/v1/parties/screen", json=body, headers=auth_headers("crm")).status_code == 200


def test_screen_returns_explained_matches_from_the_shipped_list(client, auth_headers):
    body = screen_name(client, auth_headers("crm"), "Hikvision Digital Technology Co., Ltd.", "China")
    assert body["country"] == "CN" and body["list_version"] == "compiled-us-jp-ca@1"
    match = body["matches"][0]
    assert {"list", "entry_id", "name", "matched_name", "score", "status", "country", "explanation"} <= set(match)
    assert match["status"] == "confirmed" and match["score"] == 100 and match["country"] == "CN"
    assert "Hikvision" in match["name"] and "hikvision=hikvision" in match["explanation"]["text"]
    assert match["explanation"]["country"]["note"].startswith("CN agrees")
    assert body["suppressed"] == []


def test_screen_returns_nothing_for_generic_words(client, auth_headers):
    for name in ("Technology", "Co Ltd", "International Trading Co., Ltd."):
        assert screen_name(client, auth_headers("crm"), name)["matches"] == []


@pytest.mark.parametrize(("body", "field"), [
    ({}, "name"), ({"name": ""}, "name"), ({"name": "x" * 501}, "name"),
    ({"name": "Acme", "country": "Atlantis"}, "country"), ({"name": "Acme", "alias": "A"}, "alias"),
])
def test_screen_rejects_bad_bodies_naming_the_field(client, auth_headers, body, field):
    r = client.post("/v1/parties/screen", json=body, headers=auth_headers("crm"))
    assert r.status_code == 422 and field in r.json["errors"], r.json


def test_screening_flags_a_confirmed_party_as_critical(client, auth_headers):
    body = deal("rp-1", {"role": "distributor", "name": "Hikvision Digital Technology Co Ltd", "country": "CN"})
    r = client.post("/v1/screenings", json=body, headers=auth_headers("crm"))
    assert r.status_code == 201, r.json
    result = r.json
    flags = [f for f in result["red_flags"] if f["id"] == "RF-4.3"]
    assert len(flags) == 1 and flags[0]["severity"] == "critical" and flags[0]["step"] == 4
    assert "distributor 'Hikvision Digital Technology Co Ltd' (CN): confirmed match" in flags[0]["evidence"]
    assert flags[0]["data"]["matches"][0]["party"] == {"role": "distributor",
                                                       "name": "Hikvision Digital Technology Co Ltd", "country": "CN"}
    assert result["decision"] == "do_not_proceed" and result["gate"] == "block"
    assert result["party_matches"] and result["party_matches"][0]["status"] == "confirmed"
    assert result["versions"]["data"]["parties"] == "1"
    assert result["versions"]["data"]["parties_lists"] == "compiled-us-jp-ca@1"


def test_a_party_listed_many_times_is_flagged_once(client, auth_headers):
    hikvision = {"role": "distributor", "name": "Hikvision Digital Technology Co Ltd", "country": "CN"}
    once = client.post("/v1/screenings?dry_run=true", json=deal("rp-3", hikvision), headers=auth_headers("crm")).json
    fifty = client.post("/v1/screenings?dry_run=true", json=deal("rp-3", *[hikvision] * 50),
                        headers=auth_headers("crm")).json
    assert [f["id"] for f in fifty["red_flags"]].count("RF-4.3") == 1
    assert fifty["party_matches"] == once["party_matches"]
    assert len(str(fifty)) < 1.2 * len(str(once)) + 5_000  # the body's repeats, not 50 sets of matches


def test_screening_flags_a_possible_end_user_as_high(client, auth_headers):
    body = deal("rp-2", end_user={"name": "Hikvison", "country": "NO"})
    result = client.post("/v1/screenings", json=body, headers=auth_headers("crm")).json
    flags = [f for f in result["red_flags"] if f["id"] == "RF-4.3"]
    assert [f["severity"] for f in flags] == ["high"]
    assert flags[0]["evidence"].startswith("end-user 'Hikvison' (NO): possible match")
    assert result["decision"] == "escalate"



def test_a_place_is_not_the_listed_branch_named_after_it(client, auth_headers):
    # Reported: "Mexico City" (MX) was a possible match (80.1) for 'Huawei OpenLab Mexico City' on the two
    # place words alone, so a screening with that end-user got RF-4.3 (high) and escalated.
    assert screen_name(client, auth_headers("crm"), "Mexico City", "MX")["matches"] == []
    body = deal("rp-mx", end_user={"name": "Mexico City", "country": "MX"})
    result = client.post("/v1/screenings?dry_run=true", json=body, headers=auth_headers("crm")).json
    assert "RF-4.3" not in {f["id"] for f in result["red_flags"]} and result["party_matches"] == []
    # the branch's own words still find it, and the country picks it among the other OpenLabs
    branch = screen_name(client, auth_headers("crm"), "Huawei OpenLab", "MX")["matches"][0]
    assert branch["name"] == "Huawei OpenLab Mexico City" and branch["status"] == "confirmed"

def test_clean_parties_raise_nothing(client, auth_headers):
    body = deal("rp-3", {"role": "reseller", "name": "Nordic Storage Partners AS", "country": "NO"})
    result = client.post("/v1/screenings", json=body, headers=auth_headers("crm")).json
    assert "RF-4.3" not in {f["id"] for f in result["red_flags"]} and result["decision"] == "proceed"


def test_false_positive_memory(client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    party = {"role": "integrator", "name": "Positive Technologies Inc", "country": "US"}
    first = screen_name(client, crm, party["name"], "US")["matches"]
    assert {m["status"] for m in first} == {"possible"} and len(first) == 2  # two listings of the Russian firm
    target = first[0]

    r = client.post("/v1/parties/false-positives", json={
        "party_name": party["name"], "entry_id": target["entry_id"],
        "reason": "US penetration-testing firm, Delaware registration 5123; no link to the Moscow company"},
        headers=reviewer)
    assert r.status_code == 201, r.json
    decision = r.json
    assert decision["author"] == "test-reviewer" and decision["status"] == "active"
    assert decision["entry_hash"] == target["entry_hash"] and decision["expires_at"] is None

    again = screen_name(client, crm, "POSITIVE TECHNOLOGIES, INC.", "US")
    assert [m["entry_id"] for m in again["suppressed"]] == [target["entry_id"]]
    assert again["suppressed"][0]["false_positive"]["id"] == decision["id"]
    assert [m["entry_id"] for m in again["matches"]] == [first[1]["entry_id"]], "other listings still match"

    result = client.post("/v1/screenings", json=deal("fp-1", party), headers=crm).json
    flagged = [m["entry_id"] for f in result["red_flags"] if f["id"] == "RF-4.3" for m in f["data"]["matches"]]
    assert target["entry_id"] not in flagged and first[1]["entry_id"] in flagged

    r = client.post(f"/v1/parties/false-positives/{decision['id']}/revoke", json={"reason": "registration unverified"},
                    headers=reviewer)
    assert r.status_code == 200 and r.json["status"] == "revoked" and r.json["revoked_by"] == "test-reviewer"
    assert {m["entry_id"] for m in screen_name(client, crm, party["name"], "US")["matches"]} >= {target["entry_id"]}
    r = client.post(f"/v1/parties/false-positives/{decision['id']}/revoke", json={"reason": "twice"}, headers=reviewer)
    assert r.status_code == 409

    kept = client.get("/v1/parties/false-positives", query_string={"party": party["name"]}, headers=reviewer).json
    assert [(d["id"], d["status"]) for d in kept["false_positives"]] == [(decision["id"], "revoked")]


def test_false_positive_endpoints_need_a_reviewer(client, auth_headers):
    body = {"party_name": "X Corp", "entry_id": "rpl-648209fcab7fc1d5dc56", "reason": "not them"}
    assert client.post("/v1/parties/false-positives", json=body).status_code == 401
    assert client.post("/v1/parties/false-positives", json=body, headers=auth_headers("crm")).status_code == 403
    assert client.get("/v1/parties/false-positives", headers=auth_headers("crm")).status_code == 403
    assert client.post("/v1/parties/false-positives/1/revoke", json={"reason": "x y"},
                       headers=auth_headers("crm")).status_code == 403


@pytest.mark.parametrize(("change", "status", "field"), [
    ({"entry_id": "no-such-entry"}, 404, None),
    ({"reason": "   "}, 422, "reason"),
    ({"expires_at": "2001-01-01T00:00:00Z"}, 422, "expires_at"),
    ({"expires_at": "2030-01-01T00:00:00"}, 422, "expires_at"),  # no time zone
    ({"party_name": "Co., Ltd."}, 422, "party_name"),
    ({"author": "someone else"}, 422, "author"),
])
def test_false_positive_refuses_bad_requests(client, auth_headers, change, status, field):
    body = {"party_name": "NSO Logistics", "entry_id": "rpl-648209fcab7fc1d5dc56", "reason": "a freight firm", **change}
    r = client.post("/v1/parties/false-positives", json=body, headers=auth_headers("reviewer"))
    assert r.status_code == status, r.json
    if field:
        assert field in r.json["errors"]


def test_expired_decision_no_longer_applies(app, client, auth_headers):
    crm = auth_headers("crm")
    match = screen_name(client, crm, "NSO Group Technologies", "CY")["matches"][0]
    store = app.extensions["hrdd"].store
    storage.add_false_positive(store, party_key="nso group technology", party_name="NSO Group Technologies",
                               list_name="compiled-us-jp-ca", entry_id=match["entry_id"], entry_name=match["name"],
                               entry_hash=match["entry_hash"], list_version_id=1, reason="cleared last year",
                               author="reviewer", expires_at=datetime.now(UTC) - timedelta(days=1))
    service.invalidate(store)
    assert screen_name(client, crm, "NSO Group Technologies", "CY")["matches"][0]["entry_id"] == match["entry_id"]
    listed = client.get("/v1/parties/false-positives", headers=auth_headers("reviewer")).json["false_positives"]
    assert listed[0]["status"] == "expired"


def test_decision_with_future_expiry_applies_until_then(client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    match = screen_name(client, crm, "Candiru Solutions", "ES")["matches"][0]
    expires = (datetime.now(UTC) + timedelta(days=90)).isoformat()
    r = client.post("/v1/parties/false-positives", json={
        "party_name": "Candiru Solutions", "entry_id": match["entry_id"], "reason": "Spanish catering firm",
        "expires_at": expires}, headers=reviewer)
    assert r.status_code == 201 and r.json["expires_at"].startswith(expires[:19])
    assert screen_name(client, crm, "Candiru Solutions", "ES")["matches"] == []


@pytest.mark.no_shipped_list
def test_changed_list_entry_is_flagged_again(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    v1 = b"name,aliases,country\nOrion Surveillance Solutions,Orion SS,EG\n"
    load_list(app, v1, "own")  # an organisation's own list only: the shipped default is not loaded
    match = next(m for m in screen_name(client, crm, "Orion Surveillance Solutions", "EG")["matches"]
                 if m["list_version"].startswith("own@"))
    r = client.post("/v1/parties/false-positives", json={
        "party_name": "Orion Surveillance Solutions", "entry_id": match["entry_id"], "list": "own",
        "reason": "same name, different company (Cairo trade register 1234)"}, headers=reviewer)
    assert r.status_code == 201, r.json

    load_list(app, v1, "own")  # reloaded unchanged: the decision still holds
    assert not [m for m in screen_name(client, crm, "Orion Surveillance Solutions", "EG")["matches"]
                if m["list_version"].startswith("own@")]

    load_list(app, b"name,aliases,country\nOrion Surveillance Solutions,Orion SS; Orion Security,EG\n", "own")
    again = [m for m in screen_name(client, crm, "Orion Surveillance Solutions", "EG")["matches"]
             if m["list_version"].startswith("own@")]
    assert [m["entry_id"] for m in again] == [match["entry_id"]] and again[0]["list_version"] == "own@3"
    status = client.get(f"/v1/parties/false-positives/{r.json['id']}", headers=reviewer).json["status"]
    assert status == "entry_changed"


def test_lists_endpoint_shows_versions(app, client, auth_headers):
    screen_name(client, auth_headers("crm"), "Acme")  # first use loads the shipped default
    load_list(app, (FIXTURES / "parties" / "own_list.csv").read_bytes(), "own")
    versions = client.get("/v1/parties/lists", headers=auth_headers("crm")).json["versions"]
    assert [(v["label"], v["entries"], v["active"]) for v in versions] == [
        ("compiled-us-jp-ca@1", 4940, True), ("own@2", 3, True)]
    assert client.get("/v1/parties/lists").status_code == 401


def test_screenings_record_every_active_list(app, client, auth_headers):
    loaded = load_file(FIXTURES / "parties" / "csl_sample.csv")
    store = app.extensions["hrdd"].store
    service.matcher_for(store, app.config["HRDD_DATA_DIR"], app.extensions["hrdd"].policy)
    storage.save_version(store, loaded, "csl", "test", 14)
    service.invalidate(store)
    result = client.post("/v1/screenings", json=deal("v-1", {"role": "agent", "name": "Saito Tech", "country": "IL"}),
                         headers=auth_headers("crm")).json
    assert result["versions"]["data"]["parties"] == "2"
    assert result["versions"]["data"]["parties_lists"] == "compiled-us-jp-ca@1+csl@2"
    lists = {m["list_version"] for m in result["party_matches"]}
    assert lists == {"compiled-us-jp-ca@1", "csl@2"}
    csl = next(m for m in result["party_matches"] if m["list_version"] == "csl@2")
    assert csl["explanation"]["federal_register_notice"] == "86 FR 60759"


def test_openapi_describes_the_parties_endpoints(client):
    paths = client.get("/openapi.json").json["paths"]
    assert "post" in paths["/v1/parties/screen"] and "/v1/parties/false-positives/{fp_id}/revoke" in paths


def test_start_up_refuses_a_broken_parties_policy(app_config, tmp_path):
    from server import create_app
    policy = (Path(__file__).resolve().parent.parent / "policy" / "default.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "policy.yaml"
    broken.write_text(policy.replace("possible_threshold: 80", "possible_threshold: 99"), encoding="utf-8")
    with pytest.raises(ValueError, match=r"policy.yaml: policy parties: need 0 < possible_threshold"):
        create_app({**app_config, "HRDD_POLICY_FILE": str(broken)})


def test_decisions_and_revocations_are_in_the_audit_log(app, client, auth_headers):
    from hrdd import audit
    reviewer = auth_headers("reviewer")
    match = screen_name(client, auth_headers("crm"), "NSO Logistics Group", "IL")["matches"][0]
    fp = client.post("/v1/parties/false-positives", json={
        "party_name": "NSO Logistics Group", "entry_id": match["entry_id"], "reason": "Haifa freight forwarder"},
        headers=reviewer).json
    client.post(f"/v1/parties/false-positives/{fp['id']}/revoke", json={"reason": "mistaken identity"},
                headers=reviewer)
    with app.extensions["hrdd"].store.engine.connect() as conn:
        entries = [e for e in audit.entries(conn) if e["action"].startswith("party.false_positive")]
        assert audit.verify(conn).problems == []
    actions = sorted((e["action"], e["actor"]) for e in entries)
    assert actions == [("party.false_positive", "key:test-reviewer"),
                       ("party.false_positive_revoked", "key:test-reviewer")]
    recorded = next(e for e in entries if e["action"] == "party.false_positive")["details"]
    assert recorded["entry_id"] == match["entry_id"] and recorded["reason"] == "Haifa freight forwarder"


def test_workspace_marks_reach_the_allowlist(app, client, auth_headers):
    crm = auth_headers("crm")
    match = screen_name(client, crm, "Candiru Solutions SL", "ES")["matches"][0]
    backend = app.extensions["hrdd_party_allowlist"]
    store = app.extensions["hrdd"].store
    with store.begin() as conn:  # the workspace calls it inside the transaction that stores its mark
        backend.add(conn, party_name="Candiru Solutions SL", party_country="ES", list_name=match["list"],
                    entry_id=match["entry_id"], reason="Madrid caterer, see case", author="user:alice",
                    expires_at="2999-01-01T00:00:00Z")
    again = screen_name(client, crm, "Candiru Solutions SL", "ES")
    assert again["matches"] == [] and again["suppressed"][0]["false_positive"]["author"] == "user:alice"
    assert again["suppressed"][0]["false_positive"]["expires_at"].startswith("2999-01-01")


def test_workspace_mark_on_another_matchers_entry_is_left_to_the_workspace(app):
    store = app.extensions["hrdd"].store
    with store.begin() as conn:
        assert app.extensions["hrdd_party_allowlist"].add(
            conn, party_name="Teal Logistics", party_country="AE", list_name="Fake list", entry_id="TL-0042",
            reason="not them", author="user:alice", expires_at=None) is None
    assert storage.false_positives(store) == []


@pytest.mark.parametrize("offset", [-5, 9], ids=["minus-05:00", "plus-09:00"])
def test_expiry_sent_with_an_offset_keeps_its_instant(client, auth_headers, offset):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    match = screen_name(client, crm, "Candiru Solutions", "ES")["matches"][0]
    expires = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    written = expires.astimezone(timezone(timedelta(hours=offset))).isoformat()
    r = client.post("/v1/parties/false-positives", json={
        "party_name": "Candiru Solutions", "entry_id": match["entry_id"], "reason": "Spanish catering firm",
        "expires_at": written}, headers=reviewer)
    assert r.status_code == 201, r.json
    assert r.json["expires_at"] == expires.isoformat().replace("+00:00", "Z") and r.json["status"] == "active"
    kept = client.get(f"/v1/parties/false-positives/{r.json['id']}", headers=reviewer).json
    assert (kept["expires_at"], kept["status"]) == (r.json["expires_at"], "active")
    again = screen_name(client, crm, "Candiru Solutions", "ES")
    assert again["matches"] == []
    assert datetime.fromisoformat(again["suppressed"][0]["false_positive"]["expires_at"]) == expires


def test_expiry_stored_without_an_offset_reads_back_as_utc(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    match = screen_name(client, crm, "Candiru Solutions", "ES")["matches"][0]
    fp_id = client.post("/v1/parties/false-positives", json={
        "party_name": "Candiru Solutions", "entry_id": match["entry_id"], "reason": "Spanish catering firm"},
        headers=reviewer).json["id"]
    expires = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    # Written through a plain DateTime column, as rows were before: SQLite kept the UTC wall-clock time only.
    legacy = sa.table("party_false_positives", sa.column("id"), sa.column("expires_at", sa.DateTime(timezone=True)))
    store = app.extensions["hrdd"].store
    with store.begin() as conn:
        conn.execute(legacy.update().where(legacy.c.id == fp_id).values(expires_at=expires))
    service.invalidate(store)
    kept = client.get(f"/v1/parties/false-positives/{fp_id}", headers=reviewer).json
    assert (kept["expires_at"], kept["status"]) == (expires.isoformat().replace("+00:00", "Z"), "active")
    assert screen_name(client, crm, "Candiru Solutions", "ES")["matches"] == []
