"""Odoo "Send Webhook Notification": secret path token, flat record, dedup on content, batches."""

from __future__ import annotations

import json

import pytest

from tests.adapter_support import count_screenings, deliveries, fixture_bytes

TOKEN = "odoo-7c1e9d0b2a5f4e3c"


@pytest.fixture
def app_config(app_config):
    app_config["HRDD_ADAPTERS"] = {"adapters": {"odoo": {"token": TOKEN}}}
    return app_config


def post(client, body, path=f"/v1/hooks/odoo/{TOKEN}"):
    return client.post(path, data=body, headers={"Content-Type": "application/json"})


def test_sale_order_webhook_is_screened_at_once(app, client):
    r = post(client, fixture_bytes("odoo/sale_order.json"))
    assert r.status_code == 202
    outcome = r.json["results"][0]
    assert outcome["status"] == "screened" and outcome["stage"] == "quote"  # state "sent"
    txn = app.extensions["hrdd"].store.get_screening(outcome["screening_id"])["transaction"]
    assert txn["reference"] == {"system": "odoo", "object_type": "sale.order", "object_id": "42"}
    assert "past_misuse" not in txn["answers"]  # Odoo's false for an empty field is no answer


def test_token_in_query_works_and_wrong_or_missing_token_is_401(client):
    body = fixture_bytes("odoo/sale_order.json")
    assert post(client, body, "/v1/hooks/odoo/wrong-token").status_code == 401
    assert post(client, body, "/v1/hooks/odoo").status_code == 401
    assert post(client, body, f"/v1/hooks/odoo?token={TOKEN}").status_code == 202


def test_redelivered_record_is_not_screened_twice_but_a_changed_one_is(app, client):
    body = fixture_bytes("odoo/sale_order.json")
    first = post(client, body)
    again = post(client, body)
    assert again.json["results"][0]["replayed"] is True
    assert again.json["results"][0]["screening_id"] == first.json["results"][0]["screening_id"]
    confirmed = json.loads(body)
    confirmed["state"] = "sale"
    r = post(client, json.dumps(confirmed, sort_keys=True))
    assert r.json["results"][0]["stage"] == "order"
    assert count_screenings(app) == 2


def test_batch_of_records(app, client):
    record = json.loads(fixture_bytes("odoo/sale_order.json"))
    batch = [record, {**record, "_id": 43, "name": "S00043"}, {**record, "_model": "res.partner", "_id": 7}]
    r = post(client, json.dumps(batch))
    assert [o["status"] for o in r.json["results"]] == ["screened", "screened", "ignored"]
    assert len(deliveries(app, "odoo")) == 2


def test_record_missing_model_is_400_and_missing_fields_are_held(client):
    record = json.loads(fixture_bytes("odoo/sale_order.json"))
    r = post(client, json.dumps({k: v for k, v in record.items() if k != "_model"}))
    assert r.status_code == 400 and "_model" in r.json["message"]
    r = post(client, json.dumps({**record, "x_hrdd_end_user_country": False}))
    outcome = r.json["results"][0]
    assert outcome["status"] == "invalid" and "x_hrdd_end_user_country" in outcome["reason"]


def test_simultaneous_duplicate_deliveries_make_one_screening(app):
    import threading

    body = fixture_bytes("odoo/sale_order.json")
    answers = []

    def send():
        answers.append(post(app.test_client(), body).json["results"][0]["screening_id"])

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(answers) == 6 and len(set(answers)) == 1
    assert count_screenings(app) == 1 and len(deliveries(app, "odoo")) == 1


def _benign(body: bytes) -> str:
    record = json.loads(body)
    record.update({"x_hrdd_end_user": "Fjordhandel AS", "x_hrdd_end_user_country": "NO",
                   "x_hrdd_end_user_type": "private", "x_hrdd_end_user_sector": "commercial",
                   "x_hrdd_capabilities": "data_storage", "x_hrdd_deployment_countries": "NO",
                   "x_hrdd_distributor": False, "x_hrdd_distributor_country": False,
                   "x_hrdd_intended_use": "Backup of point-of-sale records", "x_hrdd_product_code": "ST-10",
                   "x_hrdd_product_name": "ArchiveVault 10 TB"})
    return json.dumps(record)


def test_a_record_changed_back_is_screened_again_not_replayed(app, client):
    risky = fixture_bytes("odoo/sale_order.json")
    first = post(client, risky).json["results"][0]
    assert first["status"] == "screened" and first["gate"] == "hold"
    benign = post(client, _benign(risky)).json["results"][0]
    assert benign["status"] == "screened" and benign["gate"] == "release"
    back = post(client, risky).json["results"][0]
    assert back["status"] == "screened" and "replayed" not in back
    assert back["gate"] == "hold" and back["screening_id"] not in (first["screening_id"], benign["screening_id"])
    # A retry of that latest delivery is still one delivery.
    again = post(client, risky).json["results"][0]
    assert again["replayed"] is True and again["screening_id"] == back["screening_id"]
    assert count_screenings(app) == 3 and len(deliveries(app, "odoo")) == 3
