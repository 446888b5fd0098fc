"""Generic JSON hook: API key or HMAC signature, the screening JSON back, batches, dedup."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from tests.adapter_support import count_screenings, fixture_bytes, fixture_json
from tests.test_order_gate import BERGEN

SECRET = "netsuite-signing-secret"


@pytest.fixture
def app_config(app_config):
    app_config["HRDD_ADAPTERS"] = {"adapters": {"generic": {"signing_secret": SECRET}}}
    return app_config


def signed(body: bytes, secret: str = SECRET, stamp: int | None = None) -> dict:
    stamp = str(stamp if stamp is not None else int(time.time()))
    mac = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-HRDD-Timestamp": stamp, "X-HRDD-Signature": f"sha256={mac}"}


def test_api_key_call_returns_the_screening_and_a_retry_the_same_one(app, client, auth_headers):
    body = fixture_bytes("generic/transaction.json")
    headers = {**auth_headers("crm"), "Content-Type": "application/json", "Idempotency-Key": "flow-42"}
    first = client.post("/v1/hooks/generic", data=body, headers=headers)
    assert first.status_code == 201
    assert first.json["decision"] == "escalate" and first.json["gate"] == "hold"
    assert first.json["id"].startswith("scr_") and first.json["documents"]["rider"].endswith("rider.docx")
    again = client.post("/v1/hooks/generic", data=body, headers=headers)
    assert again.status_code == 200 and again.json["id"] == first.json["id"]
    assert count_screenings(app) == 1


def test_identical_bytes_without_a_key_are_one_delivery(app, client, auth_headers):
    body = fixture_bytes("generic/transaction.json")
    headers = {**auth_headers("crm"), "Content-Type": "application/json"}
    assert client.post("/v1/hooks/generic", data=body, headers=headers).status_code == 201
    assert client.post("/v1/hooks/generic", data=body, headers=headers).status_code == 200
    assert count_screenings(app) == 1


def test_signed_call_from_suitescript(app, client):
    body = fixture_bytes("generic/transaction.json")
    r = client.post("/v1/hooks/generic", data=body, headers=signed(body))
    assert r.status_code == 201


@pytest.mark.parametrize("case", ["wrong secret", "stale", "tampered"])
def test_bad_signature_is_401(client, case):
    body = fixture_bytes("generic/transaction.json")
    headers = signed(body, secret="other" if case == "wrong secret" else SECRET,
                     stamp=int(time.time()) - 600 if case == "stale" else None)
    sent = body.replace(b"FR-200", b"FR-201") if case == "tampered" else body
    assert client.post("/v1/hooks/generic", data=sent, headers=headers).status_code == 401


def test_no_key_is_401_and_a_key_of_another_role_403(app, client, auth_headers):
    body = fixture_bytes("generic/transaction.json")
    assert client.post("/v1/hooks/generic", data=body).status_code == 401
    assert client.post("/v1/hooks/generic", data=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    for role in ("contracts", "export", "reviewer"):
        r = client.post("/v1/hooks/generic", data=body, headers=auth_headers(role))
        # As on every endpoint (README: 401 missing or invalid key, 403 wrong role), in the same words.
        assert r.status_code == 403 and r.json["code"] == "forbidden"
        assert r.json["message"] == f"Role {role!r} may not do this; it needs one of: admin, crm"
    assert count_screenings(app) == 0
    assert client.post("/v1/hooks/generic", data=body, headers=auth_headers("crm")).status_code == 201


def test_batch(app, client, auth_headers):
    one = fixture_json("generic/transaction.json")
    two = {**one, "reference": {**one["reference"], "object_id": "0067F000003pmdX"}, "stage": "opportunity"}
    headers = {**auth_headers("crm"), "Content-Type": "application/json", "Idempotency-Key": "batch-1"}
    r = client.post("/v1/hooks/generic", data=json.dumps([one, two]), headers=headers)
    assert r.status_code == 200 and len(r.json["results"]) == 2
    assert {s["stage"] for s in r.json["results"]} == {"quote", "opportunity"}
    assert [s["status"] for s in r.json["results"]] == [201, 201] and (r.json["screened"], r.json["invalid"]) == (2, 0)
    again = client.post("/v1/hooks/generic", data=json.dumps([one, two]), headers=headers)
    assert [s["id"] for s in again.json["results"]] == [s["id"] for s in r.json["results"]]
    assert [s["status"] for s in again.json["results"]] == [200, 200]
    assert count_screenings(app) == 2


def test_batch_with_a_bad_transaction_is_207_and_names_its_fields(app, client, auth_headers):
    """A sender that checks only the status code must not take a partly refused batch for success."""
    one = fixture_json("generic/transaction.json")
    bad = {**one, "reference": {**one["reference"], "object_id": "0067F000003pmdY"}, "stage": "invoice"}
    headers = {**auth_headers("crm"), "Content-Type": "application/json"}
    r = client.post("/v1/hooks/generic", data=json.dumps([one, bad]), headers=headers)
    assert r.status_code == 207 and (r.json["screened"], r.json["invalid"]) == (1, 1)
    good, refused = r.json["results"]
    assert good["status"] == 201 and good["id"].startswith("scr_")
    assert refused["status"] == 422 and "stage" in refused["errors"] and "stage" in refused["message"]
    assert refused["reference"]["object_id"] == "0067F000003pmdY"
    assert count_screenings(app) == 1


def test_missing_fields_are_named(client, auth_headers):
    body = fixture_json("generic/transaction.json")
    del body["end_user"]
    r = client.post("/v1/hooks/generic", json=body, headers=auth_headers("crm"))
    assert r.status_code == 422 and "end_user" in r.json["message"] and "end_user" in r.json["errors"]
    del body["reference"]
    r = client.post("/v1/hooks/generic", json=body, headers=auth_headers("crm"))
    assert r.status_code == 400 and "reference" in r.json["message"]
    r = client.post("/v1/hooks/generic", data=b"{", headers={**auth_headers("crm"), "Content-Type": "application/json"})
    assert r.status_code == 400 and "not JSON" in r.json["message"]


def test_a_replayed_delivery_answers_with_the_gate_now(app, client, auth_headers):
    """A retry that arrives after a newer screening must not tell the CRM the old gate."""
    body = fixture_json("generic/transaction.json")
    headers = {**auth_headers("crm"), "Content-Type": "application/json", "Idempotency-Key": "flow-77"}
    first = client.post("/v1/hooks/generic", data=json.dumps(body), headers=headers)
    assert first.status_code == 201 and first.json["gate"] == "hold"
    newer = {**body, "stage": "post_sale", "items": [{"sku": "ST-1", "name": "Storage", "capabilities": ["data_storage"]}]}
    later = client.post("/v1/screenings", json=newer, headers=auth_headers("crm")).json
    again = client.post("/v1/hooks/generic", data=json.dumps(body), headers=headers)
    assert again.status_code == 200 and again.json["id"] == first.json["id"]
    assert again.json["superseded_by"] == later["id"] and again.json["gate"] == later["gate"]


def _other_crm_key(app) -> dict:
    _, key = app.extensions["hrdd"].store.create_api_key("other-crm", "crm")
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def _norway(object_id: str = "0067F000003pmdW") -> dict:
    body = fixture_json("transaction_norway_storage.json")
    body["reference"] = {"system": "salesforce", "object_type": "opportunity", "object_id": object_id}
    return body


def test_another_callers_idempotency_key_is_another_delivery(app, client, auth_headers):
    benign = client.post("/v1/hooks/generic", json=_norway(),
                         headers={**auth_headers("crm"), "Idempotency-Key": "opp-1"})
    assert benign.status_code == 201 and benign.json["gate"] == "release"
    risky = client.post("/v1/hooks/generic", data=fixture_bytes("generic/transaction.json"),
                        headers={**_other_crm_key(app), "Idempotency-Key": "opp-1"})
    assert risky.status_code == 201 and risky.json["id"] != benign.json["id"]
    assert risky.json["transaction"]["end_user"]["country"] == "EG" and risky.json["gate"] == "hold"
    signed_body = json.dumps(_norway("signed-1")).encode()
    signed_call = client.post("/v1/hooks/generic", data=signed_body,
                              headers={**signed(signed_body), "Idempotency-Key": "opp-1"})
    assert signed_call.status_code == 201
    assert count_screenings(app) == 3


def test_a_key_reused_with_a_different_body_is_409(app, client, auth_headers):
    headers = {**auth_headers("crm"), "Idempotency-Key": "opp-2"}
    first = client.post("/v1/hooks/generic", json=_norway(), headers=headers)
    assert first.status_code == 201
    risky = fixture_json("generic/transaction.json")
    r = client.post("/v1/hooks/generic", json=risky, headers=headers)
    assert r.status_code == 409
    assert set(r.json) == {"code", "status", "message", "errors"}
    assert r.json["code"] == "idempotency_conflict" and r.json["status"] == 409
    assert "opp-2" in r.json["message"] and first.json["id"] in r.json["message"]
    assert r.json["errors"] == {"Idempotency-Key": ["reused with a different body"]}
    assert count_screenings(app) == 1
    assert client.post("/v1/hooks/generic", json=_norway(), headers=headers).status_code == 200


def test_a_corrected_request_under_the_key_of_an_invalid_one_says_what_became_of_it(app, client, auth_headers):
    headers = {**auth_headers("crm"), "Idempotency-Key": "opp-bad-1"}
    broken = _norway()
    broken["end_user"]["country"] = "XX"
    first = client.post("/v1/hooks/generic", json=broken, headers=headers)
    assert first.status_code == 422
    r = client.post("/v1/hooks/generic", json=_norway(), headers=headers)
    assert r.status_code == 409 and "None" not in r.json["message"]
    assert "which was not screened (invalid: " in r.json["message"] and "XX" in r.json["message"]
    assert r.json["message"].endswith("send the corrected request under a new Idempotency-Key")
    fresh = client.post("/v1/hooks/generic", json=_norway(), headers={**headers, "Idempotency-Key": "opp-bad-2"})
    assert fresh.status_code == 201 and count_screenings(app) == 1


def test_a_batch_retried_in_another_order_matches_items_by_reference(app, client, auth_headers):
    headers = {**auth_headers("crm"), "Idempotency-Key": "batch-7"}
    risky = fixture_json("generic/transaction.json")
    risky["reference"]["object_id"] = "risky-1"
    benign = _norway("benign-1")
    first = client.post("/v1/hooks/generic", json=[risky, benign], headers=headers)
    assert first.status_code == 200
    ids = {r["transaction"]["reference"]["object_id"]: r["id"] for r in first.json["results"]}
    again = client.post("/v1/hooks/generic", json=[benign, risky], headers=headers)
    assert again.status_code == 200 and [r["status"] for r in again.json["results"]] == [200, 200]
    assert [r["id"] for r in again.json["results"]] == [ids["benign-1"], ids["risky-1"]]
    assert [r["gate"] for r in again.json["results"]] == ["release", "hold"]
    changed = {**benign, "intended_use": "Something else entirely"}
    mixed = client.post("/v1/hooks/generic", json=[changed, risky], headers=headers)
    assert mixed.status_code == 207 and mixed.json["conflicts"] == 1
    assert mixed.json["results"][0]["code"] == "idempotency_conflict" and mixed.json["results"][0]["status"] == 409
    assert mixed.json["results"][1]["status"] == 200
    assert count_screenings(app) == 2


def test_without_a_key_a_deal_changed_back_is_screened_again(app, client, auth_headers):
    headers = {**auth_headers("crm"), "Content-Type": "application/json"}
    risky = fixture_bytes("generic/transaction.json")
    first = client.post("/v1/hooks/generic", data=risky, headers=headers)
    # At the same stage: an opportunity-stage body after the quote would not govern the deal.
    benign = client.post("/v1/hooks/generic", json={**_norway(), "stage": "quote"}, headers=headers)
    assert (first.status_code, benign.status_code, benign.json["gate"]) == (201, 201, "release")
    back = client.post("/v1/hooks/generic", data=risky, headers=headers)
    assert back.status_code == 201 and back.json["gate"] == "hold"
    assert back.json["id"] not in (first.json["id"], benign.json["id"])
    assert client.post("/v1/hooks/generic", data=risky, headers=headers).status_code == 200
    assert count_screenings(app) == 3


# The order gate tests' Bergen deal, as NetSuite sends it through the generic adapter.
NS_DEAL = {**BERGEN, "reference": {"system": "netsuite", "object_type": "transaction", "object_id": "NS-NO-9"}}


def test_a_quote_arriving_after_the_order_does_not_lift_the_orders_hold(app, client, auth_headers):
    from hrdd.adapters.outbox import state_of

    quote = json.dumps(NS_DEAL).encode()
    order = json.dumps({**NS_DEAL, "stage": "order"}).encode()
    first = client.post("/v1/hooks/generic", data=quote, headers={**signed(quote), "Idempotency-Key": "q-1"})
    assert first.status_code == 201 and first.json["gate"] == "release_with_conditions"
    held = client.post("/v1/hooks/generic", data=order, headers={**signed(order), "Idempotency-Key": "o-1"})
    assert held.json["gate"] == "hold" and "is not recorded as executed" in held.json["hold_reasons"][0]
    # The same quote again (a parallel Queueable or a NetSuite retry finishing late), under a new key.
    late = client.post("/v1/hooks/generic", data=quote, headers={**signed(quote), "Idempotency-Key": "q-2"})
    assert late.status_code == 201 and late.json["stage"] == "quote"
    assert late.json["engine_gate"] == "release_with_conditions"
    assert late.json["gate"] == "hold" and late.json["hold_reasons"] == held.json["hold_reasons"]
    assert late.json["superseded_by"] == held.json["id"]
    assert late.json["superseded_because"].startswith(f"the deal is already at order (screening {held.json['id']})")
    deal = client.get(f"/v1/transactions/{late.json['transaction_id']}", headers=auth_headers("reviewer")).json
    assert deal["gate"] == "hold" and deal["latest_screening_id"] == held.json["id"]
    assert deal["screenings_total"] == 3  # the late quote is kept
    # What write-back tells the CRM: the order's gate and stage.
    row = type("Row", (), {"system": "netsuite", "object_type": "transaction", "object_id": "NS-NO-9",
                           "transaction_id": late.json["transaction_id"], "screening_id": late.json["id"],
                           "gate": None, "reason": None})
    with app.app_context():
        state = state_of(app.extensions["hrdd"], row)
    assert (state["stage"], state["gate"], state["screening_id"]) == ("order", "hold", held.json["id"])


def test_metrics_name_the_adapter_a_rejected_webhook_was_for(client):
    # An integration admin sees which CRM's calls are refused, not "some webhook".
    body = fixture_bytes("generic/transaction.json")
    assert client.post("/v1/hooks/generic", data=body, headers=signed(body, secret="rotated-away")).status_code == 401
    assert client.post("/v1/hooks/no-such-crm", data=body, headers=signed(body)).status_code == 404
    scraped = client.get("/metrics").get_data(as_text=True)
    assert 'hrdd_http_requests_total{endpoint="/v1/hooks/generic",method="POST",status="401"} 1.0' in scraped
    # Names no adapter owns stay one label, so a scanner cannot add a time series per name it tries.
    assert 'endpoint="/v1/hooks/<name>",method="POST",status="404"' in scraped
    assert "no-such-crm" not in scraped


def test_the_signing_secret_rotates_without_refusing_senders_in_between(app_config, request):
    # NetSuite and Apex cannot all change at the same second: the new and the old secret both verify
    # while senders change over (signing_secrets), then the old one is dropped and refused.
    app_config["HRDD_ADAPTERS"] = {"adapters": {"generic": {}}}
    app_config["HRDD_ADAPTER_GENERIC_SIGNING_SECRETS"] = f"rotated-2027-secret, {SECRET}"
    client = request.getfixturevalue("client")
    body = fixture_bytes("generic/transaction.json")
    assert client.post("/v1/hooks/generic", data=body, headers=signed(body)).status_code == 201
    assert client.post("/v1/hooks/generic", data=body, headers=signed(body, "rotated-2027-secret")).status_code == 200
    refused = client.post("/v1/hooks/generic", data=body, headers=signed(body, "guessed"))
    assert refused.status_code == 401 and "signing secret" in refused.json["message"]


def test_a_revoked_key_is_told_apart_from_no_credentials(app, client):
    # The integration admin revoked the Flow's key: the 401 must say the key was refused, not ask for one.
    store = app.extensions["hrdd"].store
    key_id, key = store.create_api_key("Salesforce Flow", "crm")
    body = fixture_bytes("generic/transaction.json")
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    assert client.post("/v1/hooks/generic", data=body, headers=headers).status_code == 201
    store.revoke_api_key(key_id)
    refused = client.post("/v1/hooks/generic", data=body, headers=headers)
    assert refused.status_code == 401 and "not valid (unknown, revoked or mistyped)" in refused.json["message"]
    bare = client.post("/v1/hooks/generic", data=body, headers={"Content-Type": "application/json"})
    assert bare.status_code == 401 and "send an API key of role crm" in bare.json["message"]


def test_an_upper_case_hex_signature_verifies(client):
    body = fixture_bytes("generic/transaction.json")
    headers = signed(body)
    headers["X-HRDD-Signature"] = "sha256=" + headers["X-HRDD-Signature"][7:].upper()
    assert client.post("/v1/hooks/generic", data=body, headers=headers).status_code == 201


def test_an_invalid_delivery_fixed_by_a_newer_one_is_no_longer_reported(app, client):
    # The admin fixed the Flow's mapping and the deal was screened: the old 422 is history, not an alert.
    from hrdd_plugins.adapter_runtime import deliveries_command

    good = fixture_json("generic/transaction.json")
    bad = {k: v for k, v in good.items() if k != "end_user"}
    raw = json.dumps(bad).encode()
    assert client.post("/v1/hooks/generic", data=raw, headers=signed(raw)).status_code == 422
    runner = app.test_cli_runner()
    assert "end_user" in runner.invoke(deliveries_command, []).output
    assert 'hrdd_adapter_deliveries{status="invalid",vendor="generic"} 1.0' in client.get("/metrics").get_data(True)
    raw = json.dumps(good).encode()
    assert client.post("/v1/hooks/generic", data=raw, headers=signed(raw)).status_code == 201
    assert "No deliveries waiting, failed or invalid" in runner.invoke(deliveries_command, []).output
    assert 'status="invalid",vendor="generic"' not in client.get("/metrics").get_data(True)
    # Still on record for whoever asks for it.
    assert "end_user" in runner.invoke(deliveries_command, ["--status", "invalid"]).output
