"""The HTTP API as a CRM sees it: screening, idempotency, bad input, roles, operations endpoints."""

from __future__ import annotations

import copy
import json

import pytest

pytestmark = pytest.mark.api


def post(client, body, headers, **kw):
    return client.post("/v1/screenings", json=body, headers=headers, **kw)


def stored_count(app):
    return app.extensions["hrdd"].store.count_screenings()


def assert_replays_then_conflicts(app, client, transaction, headers, first_id):
    """The same body under the same key replays ``first_id``; a changed body is a 409; one screening stored."""
    again = post(client, transaction, headers)
    assert (again.status_code, again.json["id"]) == (200, first_id)
    changed = copy.deepcopy(transaction)
    changed["items"][0]["quantity"] = 5
    assert post(client, changed, headers).status_code == 409
    assert stored_count(app) == 1


def test_screening_is_created_and_stored(client, auth_headers, transaction):
    r = post(client, transaction, auth_headers("crm"))
    assert r.status_code == 201, r.json
    body = r.json
    assert body["id"].startswith("scr_") and body["transaction_id"].startswith("txn_")
    assert r.headers["Location"] == f"/v1/screenings/{body['id']}"
    assert (body["decision"], body["gate"]) == ("escalate", "hold")
    assert {f["id"] for f in body["red_flags"]} >= {"RF-1.2", "RF-2.1", "RF-2.3"}
    assert all(f["evidence"] and f["source"] and f["step"] for f in body["red_flags"])
    assert [s["step"] for s in body["steps"]] == list(range(1, 9))
    assert body["documents"]["rider"] == f"/v1/screenings/{body['id']}/rider.docx"
    assert body["versions"]["data"]["fiw"] == "2025"
    got = client.get(f"/v1/screenings/{body['id']}", headers=auth_headers("reviewer"))
    assert got.status_code == 200 and got.json["id"] == body["id"] and got.json["decision"] == "escalate"


def test_country_names_are_normalised(client, auth_headers, transaction):
    transaction["end_user"]["country"] = "Egypt"
    transaction["deployment_countries"] = ["egypt", "EGY"]
    r = post(client, transaction, auth_headers("crm"))
    assert r.status_code == 201
    assert r.json["transaction"]["end_user"]["country"] == "EG"
    assert r.json["transaction"]["deployment_countries"] == ["EG"]


def test_idempotent_replay_returns_same_screening(app, client, auth_headers, transaction):
    headers = {**auth_headers("crm"), "Idempotency-Key": "sf-0067F000003pmdW-quote-1"}
    first = post(client, transaction, headers)
    second = post(client, transaction, headers)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json["id"] == second.json["id"]
    assert stored_count(app) == 1


def test_same_key_different_body_is_409(app, client, auth_headers, transaction):
    headers = {**auth_headers("crm"), "Idempotency-Key": "k-409"}
    assert post(client, transaction, headers).status_code == 201
    changed = copy.deepcopy(transaction)
    changed["items"][0]["quantity"] = 5
    r = post(client, changed, headers)
    assert r.status_code == 409 and r.json["code"] == "idempotency_conflict"
    assert "Idempotency-Key" in r.json["errors"]
    assert stored_count(app) == 1

def test_key_stored_with_the_earlier_request_hash_still_replays(app, client, auth_headers, transaction):
    """A key first used before the request hash moved to orjson replays after an upgrade, never a 409."""
    import hashlib
    import json

    import sqlalchemy as sa

    from hrdd.tables import screenings
    headers = {**auth_headers("crm"), "Idempotency-Key": "k-before-upgrade"}
    first = post(client, transaction, headers)
    services = app.extensions["hrdd"]
    earlier = hashlib.sha256(json.dumps(services.validate(copy.deepcopy(transaction)), sort_keys=True,
                                        default=str).encode()).hexdigest()
    with services.store.begin() as conn:
        conn.execute(sa.update(screenings).where(screenings.c.id == first.json["id"]).values(request_hash=earlier))
    assert_replays_then_conflicts(app, client, transaction, headers, first.json["id"])



def test_idempotency_keys_are_each_callers_own(app, client, transaction):
    """Two integrations that both number their keys 1, 2, 3 never meet each other's screenings."""
    store = app.extensions["hrdd"].store
    salesforce = {"Authorization": f"Bearer {store.create_api_key('salesforce', 'crm')[1]}", "Idempotency-Key": "1"}
    hubspot = {"Authorization": f"Bearer {store.create_api_key('hubspot', 'crm')[1]}", "Idempotency-Key": "1"}
    first = post(client, transaction, salesforce)
    other = copy.deepcopy(transaction)
    other["reference"] = {"system": "hubspot", "object_type": "deal", "object_id": "9001"}
    theirs = post(client, other, hubspot)
    assert (first.status_code, theirs.status_code) == (201, 201) and first.json["id"] != theirs.json["id"]
    assert post(client, transaction, salesforce).json["id"] == first.json["id"]
    assert post(client, other, hubspot).json["id"] == theirs.json["id"]
    assert post(client, other, salesforce).status_code == 409
    assert stored_count(app) == 2


def test_key_stored_before_keys_were_scoped_still_replays(app, client, auth_headers, transaction):
    import sqlalchemy as sa

    from hrdd.tables import screenings
    headers = {**auth_headers("crm"), "Idempotency-Key": "k-unscoped"}
    first = post(client, transaction, headers)
    with app.extensions["hrdd"].store.begin() as conn:
        conn.execute(sa.update(screenings).where(screenings.c.id == first.json["id"]).values(idempotency_key="k-unscoped"))
    again = post(client, transaction, headers)
    assert (again.status_code, again.json["id"]) == (200, first.json["id"])
    # Such a key has no owner on record: a different body, from this caller or another CRM's key, is that
    # caller's own new screening, not a 409 naming someone else's screening.
    changed = copy.deepcopy(transaction)
    changed["items"][0]["quantity"] = 5
    other_crm = {**auth_headers("admin"), "Idempotency-Key": "k-unscoped"}
    for caller in (other_crm, headers):
        r = post(client, changed, caller)
        assert r.status_code == 201 and first.json["id"] not in str(r.json), r.json
        assert post(client, changed, caller).json["id"] == r.json["id"]  # and its own key replays it
    assert stored_count(app) == 3


def test_an_adapters_key_is_not_a_callers_key(app, client, auth_headers, transaction):
    services = app.extensions["hrdd"]
    adapter, _ = services.screen_and_store(copy.deepcopy(transaction), idempotency_key="hubspot:77", source="hubspot")
    mine = post(client, transaction, {**auth_headers("crm"), "Idempotency-Key": "hubspot:77"})
    assert mine.status_code == 201 and mine.json["id"] != adapter["id"]


def test_read_back_screening_answers_with_the_gate_post_gave(client, auth_headers, transaction):
    """A CRM that follows Location must see the gate it would act on, not only the engine's."""
    transaction["stage"] = "order"
    created = post(client, transaction, auth_headers("crm")).json
    got = client.get(f"/v1/screenings/{created['id']}", headers=auth_headers("crm")).json
    assert (got["gate"], got["engine_gate"], got["hold_reasons"]) == (
        created["gate"], created["engine_gate"], created["hold_reasons"])
    assert "superseded_by" not in got
    transaction["stage"] = "post_sale"
    newer = post(client, transaction, auth_headers("crm")).json
    old = client.get(f"/v1/screenings/{created['id']}", headers=auth_headers("crm")).json
    assert old["superseded_by"] == newer["id"] and old["stage"] == "order"
    assert (old["gate"], old["hold_reasons"]) == (newer["gate"], newer["hold_reasons"])


def test_an_engine_hold_says_why(client, auth_headers, transaction):
    r = post(client, transaction, auth_headers("crm")).json
    assert r["gate"] == "hold"
    reason = r["hold_reasons"][0]
    assert reason.startswith("decision escalate") and "RF-1.2" in reason and "reviewer" in reason
    dry = client.post("/v1/screenings?dry_run=true", json=transaction, headers=auth_headers("crm")).json
    assert dry["hold_reasons"] == [reason]


def test_unknown_ids_get_a_bounded_reply(client, auth_headers, transaction):
    """Hundreds of unknown ids in a body under the size limit still get a reply of a few kilobytes."""
    transaction["answers"] = {f"q{n}": "yes" for n in range(200)}
    transaction["items"] = [{**transaction["items"][0], "sku": f"S{n}", "capabilities": ["x"]} for n in range(200)]
    r = post(client, transaction, auth_headers("crm"))
    assert r.status_code == 422 and len(r.data) < 20_000, len(r.data)
    assert "known: " in str(r.json["errors"]["items"]) and "'x'" in str(r.json["errors"]["items"])
    assert "Unknown checklist question id 'q0'" in str(r.json["errors"]["answers"])
    assert r.json["message"].endswith("more (see errors)")


@pytest.mark.parametrize("field, value, limit", [
    ("items", [{}] * 100_000, "Length must be between 1 and 200."),
    ("parties", [{}] * 40_000, "Longer than maximum length 50."),
    ("deployment_countries", ["Atlantis"] * 40_000, "Longer than maximum length 60."),
    ("answers", {f"q{n}": "perhaps" for n in range(30_000)}, "Longer than maximum length 200."),
])
def test_over_long_lists_are_refused_before_their_elements_are_read(app, client, auth_headers, transaction,
                                                                      field, value, limit):
    """A list past its limit gets one error, whatever its elements: the reply does not grow with the body."""
    transaction[field] = value
    r = post(client, transaction, auth_headers("crm"))
    assert r.status_code == 422 and len(r.data) < 2_000, len(r.data)
    assert r.json["errors"] == {field: [limit]} and r.json["message"] == f"Invalid fields: {field}"
    assert stored_count(app) == 0


def test_too_many_capabilities_on_an_item_are_refused_alone(client, auth_headers, transaction):
    transaction["items"] = [transaction["items"][0], {**transaction["items"][0], "sku": "X",
                                                      "capabilities": ["mind_reading"] * 50_000}]
    r = post(client, transaction, auth_headers("crm"))
    assert r.status_code == 422 and len(r.data) < 2_000, len(r.data)
    assert r.json["errors"] == {"items": {"1": {"capabilities": ["Length must be between 1 and 20."]}}}


def test_a_key_shaped_like_another_callers_scoped_key_is_not_theirs(app, client, transaction):
    store = app.extensions["hrdd"].store
    key_a_id, key_a = store.create_api_key("a", "crm")
    _, key_b = store.create_api_key("b", "crm")
    first = post(client, transaction, {"Authorization": f"Bearer {key_a}", "Idempotency-Key": "k1"})
    forged = post(client, transaction, {"Authorization": f"Bearer {key_b}",
                                        "Idempotency-Key": f"key:api_key:{key_a_id}:k1"})
    assert forged.status_code == 201 and forged.json["id"] != first.json["id"]


def test_stored_requests_are_not_refused_by_rules_added_later(app, client, auth_headers, transaction):
    """A deal stored with an answer id no template knows (or a blank name) stays monitored."""
    import sqlalchemy as sa

    from hrdd.rescreen import rescreen
    from hrdd.tables import screenings
    transaction["stage"] = "post_sale"
    first = post(client, transaction, auth_headers("crm")).json
    services = app.extensions["hrdd"]
    request = services.store.get_screening_request(first["id"])
    request["answers"]["crm_custom_question"] = "yes"
    request["end_user"]["name"] = "   "
    request["items"][0].update(quantity="0", currency="usd", component_of_surveillance_system="false")
    request["items"][0]["capabilities"].append("none")
    request["parties"][0]["government_linked"] = "no"
    with services.store.begin() as conn:
        conn.execute(sa.update(screenings).where(screenings.c.id == first["id"]).values(request=request))
    with app.app_context():
        result = rescreen(services, stages=("post_sale",), store_unchanged=True)
    assert result.errors == [] and result.stored == 1
    assert post(client, request, auth_headers("crm")).status_code == 422  # new input still is checked


def test_unknown_capability_is_named_beside_other_bad_fields(app, client, auth_headers, transaction):
    transaction["stage"] = "invoice"
    transaction["items"][0]["capabilities"] = ["mind_reading"]
    transaction["answers"] = {"past_missuse": "maybe"}
    r = post(client, transaction, auth_headers("crm"))
    assert r.status_code == 422
    assert {"stage", "items.0.capabilities", "answers.past_missuse"} <= set(
        r.json["message"].removeprefix("Invalid fields: ").split(", "))
    assert stored_count(app) == 0


@pytest.mark.parametrize("value", ["maybe", "", "2"])
def test_unrecognised_dry_run_is_400_and_stores_nothing(app, client, auth_headers, transaction, value):
    r = client.post(f"/v1/screenings?dry_run={value}", json=transaction, headers=auth_headers("crm"))
    assert r.status_code == 400 and "dry_run" in r.json["errors"] and "true or false" in r.json["message"]
    assert stored_count(app) == 0


@pytest.mark.parametrize("query, unknown", [("dry_rn=true", "dry_rn"), ("dryrun=1", "dryrun"),
                                            ("dry_run=true&debug=1", "debug")])
def test_a_misspelt_query_parameter_is_400_and_stores_nothing(app, client, auth_headers, transaction, query, unknown):
    r = client.post(f"/v1/screenings?{query}", json=transaction, headers=auth_headers("crm"))
    assert r.status_code == 400 and r.json["code"] == "bad_request", r.json
    assert "accepted: dry_run" in r.json["message"] and set(r.json["errors"]) == {unknown}
    assert stored_count(app) == 0


def test_dry_run_given_twice_is_400_and_stores_nothing(app, client, auth_headers, transaction):
    r = client.post("/v1/screenings?dry_run=true&dry_run=false", json=transaction, headers=auth_headers("crm"))
    assert r.status_code == 400 and list(r.json["errors"]) == ["dry_run"] and "more than once" in r.json["message"]
    assert stored_count(app) == 0


@pytest.mark.parametrize("value, dry", [("true", True), ("1", True), ("on", True), ("false", False), ("0", False)])
def test_dry_run_spellings(client, auth_headers, transaction, value, dry):
    r = client.post(f"/v1/screenings?dry_run={value}", json=transaction, headers=auth_headers("crm"))
    assert (r.status_code, r.json.get("dry_run", False)) == ((200, True) if dry else (201, False))


def test_duplicate_json_key_is_400(app, client, auth_headers):
    r = client.post("/v1/screenings", data='{"stage": "quote", "stage": "order"}', content_type="application/json",
                    headers=auth_headers("crm"))
    assert r.status_code == 400 and r.json["code"] == "malformed_json" and "'stage' appears twice" in r.json["message"]
    assert stored_count(app) == 0


def test_dry_run_stores_nothing(app, client, auth_headers, transaction):
    r = client.post("/v1/screenings?dry_run=true", json=transaction, headers=auth_headers("crm"))
    assert r.status_code == 200 and r.json["dry_run"] is True and r.json["decision"] == "escalate"
    assert stored_count(app) == 0


def test_transaction_history_comes_a_page_at_a_time(app, client, auth_headers, transaction):
    headers = auth_headers("crm")
    ids = [post(client, {**transaction, "stage": stage}, headers).json["id"]
           for stage in ("opportunity", "quote", "quote", "order", "order")]
    last = post(client, transaction, headers).json  # a quote after the orders: listed, but the order governs
    txn = last["transaction_id"]
    ids.append(last["id"])
    newest_first = list(reversed(ids))
    first = client.get(f"/v1/transactions/{txn}?limit=4", headers=headers).json
    assert [s["id"] for s in first["screenings"]] == newest_first[:4]
    assert (first["screenings_total"], first["limit"], first["offset"]) == (6, 4, 0)
    assert first["latest_screening_id"] == ids[4] and first["screenings"][0]["flags"].count("RF-1.2") == 1
    second = client.get(first["next"], headers=headers).json
    assert [s["id"] for s in second["screenings"]] == newest_first[4:] and "next" not in second
    assert second["gate"] == first["gate"] and second["latest_screening_id"] == ids[4]
    default = client.get(f"/v1/transactions/{txn}", headers=headers).json
    assert len(default["screenings"]) == 6 and default["limit"] == 100 and "next" not in default


@pytest.mark.parametrize("query, field", [("limit=0", "limit"), ("limit=1001", "limit"), ("limit=ten", "limit"),
                                          ("offset=-1", "offset"), ("offset=1.5", "offset")])
def test_transaction_paging_arguments_are_checked(client, auth_headers, transaction, query, field):
    txn = post(client, transaction, auth_headers("crm")).json["transaction_id"]
    r = client.get(f"/v1/transactions/{txn}?{query}", headers=auth_headers("crm"))
    assert r.status_code == 400 and list(r.json["errors"]) == [field] and field in r.json["message"]


def test_transaction_collects_stages_newest_first(client, auth_headers, transaction):
    headers = auth_headers("crm")
    quote = post(client, transaction, headers).json
    transaction["stage"] = "order"
    order = post(client, transaction, headers).json
    assert quote["transaction_id"] == order["transaction_id"]
    r = client.get(f"/v1/transactions/{order['transaction_id']}", headers=headers)
    assert r.status_code == 200
    assert [s["stage"] for s in r.json["screenings"]] == ["order", "quote"]
    assert r.json["reference"]["object_id"] == "0067F000003pmdW"
    assert r.json["gate"] in ("hold", "block")


@pytest.mark.parametrize("mutate, field, words", [
    (lambda t: t["end_user"].update(country="XX"), "end_user", ["'XX'", "ISO 3166-1"]),
    (lambda t: t["items"][0].update(capabilities=["mind_reading"]), "items", ["mind_reading", "biometric_identification"]),
    (lambda t: t["end_user"].update(type="alien"), "end_user", ["government", "government_linked"]),
    (lambda t: t.update(items=[]), "items", ["between 1 and 200"]),
    (lambda t: t.pop("end_user"), "end_user", ["required"]),
    (lambda t: t["items"][0].update(quantity="lots"), "items", ["number"]),
    (lambda t: t.update(stage="invoice"), "stage", ["opportunity", "post_sale"]),
    (lambda t: t.update(crm_custom_field=1), "crm_custom_field", ["Unknown field"]),
    (lambda t: t["answers"].update(past_misuse="maybe"), "answers", ["yes", "unknown"]),
    (lambda t: t["parties"][0].update(role="friend"), "parties", ["distributor"]),
    # A misspelt answer id would otherwise drop the critical RF-1.1 its "yes" raises.
    (lambda t: t["answers"].update(past_missuse="yes"), "answers", ["'past_missuse'", "past_misuse"]),
    (lambda t: t["reference"].update(object_id="   "), "reference", ["blank"]),
    (lambda t: t["end_user"].update(name="\t"), "end_user", ["blank"]),
    # Wrong JSON types are refused rather than read: "2" is not a quantity, "false" not a no.
    (lambda t: t["items"][0].update(quantity="2"), "items", ["JSON number", "a string"]),
    (lambda t: t["items"][0].update(unit_price=True), "items", ["JSON number", "true/false"]),
    (lambda t: t["parties"][0].update(government_linked="false"), "parties", ["true or false", "a string"]),
    (lambda t: t["items"][0].update(component_of_surveillance_system=0), "items", ["true or false", "a number"]),
    (lambda t: t["items"][0].update(quantity=0), "items", ["more than 0"]),
    (lambda t: t["items"][0].update(currency="usd"), "items", ["ISO 4217", "'usd'"]),
    (lambda t: t["items"][0].update(currency="XYZ"), "items", ["ISO 4217", "'XYZ'"]),
    (lambda t: t["items"][0].update(capabilities=["none", "intrusion_software"]), "items", ["'none'", "alone"]),
])
def test_bad_input_is_422_naming_field_and_accepted_values(app, client, auth_headers, transaction, mutate, field, words):
    mutate(transaction)
    r = post(client, transaction, auth_headers("crm"))
    assert r.status_code == 422, r.json
    body = r.json
    assert set(body) == {"code", "status", "message", "errors"} and body["status"] == 422
    assert field in body["errors"] and field in body["message"]
    text = str(body["errors"])
    for word in words:
        assert word in text
    assert stored_count(app) == 0


def test_malformed_json_is_400(app, client, auth_headers):
    r = client.post("/v1/screenings", data="{not json", content_type="application/json", headers=auth_headers("crm"))
    assert r.status_code == 400 and r.json["code"] == "malformed_json"
    assert stored_count(app) == 0


@pytest.mark.parametrize("field, raw, problem", [
    ("name", rb'"\u0000 Ministry"', "contains a NUL character"),
    ("name", rb'"Ministry \uD800"', "lone UTF-16 surrogate"),
    # UTF-8 bytes of a lone surrogate, which Python's json decodes (surrogatepass) without any escape.
    ("name", b'"Ministry \xed\xa0\x80"', "lone UTF-16 surrogate"),
    ("unit_price", b"1e400", "too large to represent"),
])
def test_text_and_numbers_no_store_can_keep_are_400_naming_where(app, client, auth_headers, transaction, field, raw,
                                                                 problem):
    if field == "name":
        transaction["end_user"]["name"], where = "@@FIELD@@", "$.end_user.name"
    else:
        transaction["items"][0]["unit_price"], where = "@@FIELD@@", "$.items[0].unit_price"
    body = json.dumps(transaction).encode().replace(b'"@@FIELD@@"', raw)
    r = client.post("/v1/screenings", data=body, content_type="application/json", headers=auth_headers("crm"))
    assert r.status_code == 400 and r.json["code"] == "malformed_json", r.json
    assert where in r.json["message"] and problem in r.json["message"]
    assert stored_count(app) == 0


@pytest.mark.parametrize("raw, stored", [
    (rb'"Ministry \\u0000"', "Ministry \\u0000"),  # an escaped backslash, then the letters u0000
    (rb'"\ud55c\uad6d \uacbd\ucc30\uccad"', "한국 경찰청"),  # Hangul as escapes
    ('"한국 경찰청"'.encode(), "한국 경찰청"),  # Hangul in UTF-8: its bytes start 0xED like a surrogate's
])
def test_text_that_only_looks_like_a_nul_or_surrogate_is_accepted(client, auth_headers, transaction, raw, stored):
    transaction["end_user"]["name"] = "@@FIELD@@"
    body = json.dumps(transaction).encode().replace(b'"@@FIELD@@"', raw)
    r = client.post("/v1/screenings", data=body, content_type="application/json", headers=auth_headers("crm"))
    assert r.status_code == 201, r.json
    assert r.json["transaction"]["end_user"]["name"] == stored


def test_non_json_is_415(client, auth_headers):
    r = client.post("/v1/screenings", data="a=b", content_type="application/x-www-form-urlencoded",
                    headers=auth_headers("crm"))
    assert r.status_code == 415 and "application/json" in r.json["message"]


def test_json_array_body_is_422(client, auth_headers):
    r = client.post("/v1/screenings", json=[1, 2], headers=auth_headers("crm"))
    assert r.status_code == 422 and "JSON object" in r.json["message"]


def test_huge_body_is_413(app, client, auth_headers, transaction):
    transaction["intended_use"] = "x" * (1024 * 1024 + 10)
    r = post(client, transaction, auth_headers("crm"))
    assert r.status_code == 413 and r.json["code"] == "request_entity_too_large"
    assert "1048576" in r.json["message"]
    assert stored_count(app) == 0


def test_body_limit_is_configurable(app_config, transaction):
    from server import create_app
    app = create_app({**app_config, "HRDD_MAX_BODY": 2000})
    key = app.extensions["hrdd"].store.create_api_key("crm", "crm")[1]
    transaction["intended_use"] = "x" * 3000
    r = app.test_client().post("/v1/screenings", json=transaction, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 413


# ---- roles ----

def test_no_key_is_401(client, transaction):
    r = post(client, transaction, {})
    assert r.status_code == 401 and r.json["code"] == "unauthorized"
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert post(client, transaction, {"Authorization": "Bearer not-a-key"}).status_code == 401


@pytest.mark.parametrize("role, status", [("crm", 201), ("admin", 201), ("contracts", 403), ("export", 403),
                                          ("reviewer", 403)])
def test_screening_requires_crm_role(client, auth_headers, transaction, role, status):
    r = post(client, transaction, auth_headers(role))
    assert r.status_code == status
    if status == 403:
        assert "crm" in r.json["message"]


def test_document_roles(client, auth_headers, transaction):
    sid = post(client, transaction, auth_headers("crm")).json["id"]
    assert client.get(f"/v1/screenings/{sid}/rider.docx", headers=auth_headers("export")).status_code == 403
    assert client.get(f"/v1/screenings/{sid}/checklist.xlsx", headers=auth_headers("contracts")).status_code == 403
    assert client.get("/v1/screenings/scr_missing/rider.docx", headers=auth_headers("contracts")).status_code == 404


def test_revoked_key_is_refused(app, client, transaction):
    store = app.extensions["hrdd"].store
    key_id, key = store.create_api_key("old", "crm")
    store.revoke_api_key(key_id)
    assert post(client, transaction, {"Authorization": f"Bearer {key}"}).status_code == 401


def test_keys_are_stored_hashed(app):
    import sqlalchemy as sa
    store = app.extensions["hrdd"].store
    _, key = store.create_api_key("crm", "crm")
    with store.engine.connect() as conn:
        dump = str(conn.execute(sa.text("SELECT * FROM api_keys")).all())
    assert key not in dump


def test_unknown_screening_and_transaction_are_404(client, auth_headers):
    h = auth_headers("reviewer")
    r = client.get("/v1/screenings/scr_nope", headers=h)
    assert r.status_code == 404 and "scr_nope" in r.json["message"]
    assert client.get("/v1/transactions/txn_nope", headers=h).status_code == 404


# ---- operations ----

def test_health_ready_metrics_plugins_openapi(client, auth_headers, transaction):
    assert client.get("/healthz").json["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["checks"] == {"store": True, "reference_data": True}
    post(client, transaction, auth_headers("crm"))
    scraped = client.get("/metrics")
    # One charset parameter: Prometheus's parser refuses a media type that repeats one.
    assert scraped.headers["Content-Type"].count("charset") == 1
    assert scraped.headers["Content-Type"].startswith("text/plain; version=")
    metrics = scraped.get_data(as_text=True)
    assert 'hrdd_decisions_total{decision="escalate"} 1.0' in metrics
    assert "hrdd_http_request_duration_seconds_bucket" in metrics
    names = {p["name"] for p in client.get("/v1/plugins").json["plugins"]}
    assert {"step1_capabilities", "step4_stakeholders"} <= names
    spec = client.get("/openapi.json").json
    assert spec["openapi"].startswith("3.")
    post_op = spec["paths"]["/v1/screenings"]["post"]
    assert post_op["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/Transaction")
    assert "Transaction" in spec["components"]["schemas"]
    # A name is valid input beside the codes, and a party's country may be null (OpenAPI 3.0: per branch).
    party_country = spec["components"]["schemas"]["Party"]["properties"]["country"]
    assert "EG" in party_country["anyOf"][0]["enum"] and party_country["anyOf"][1]["type"] == "string"
    assert all(branch["nullable"] for branch in party_country["anyOf"])
    assert "nullable" not in str(spec["components"]["schemas"]["EndUser"]["properties"]["country"])
    # What an answer on record that was not used looks like, apart from a conflicting request answer.
    on_record = spec["components"]["schemas"]["Screening"]["properties"]["answers_on_record"]["description"]
    assert "request_answer" in on_record and "not_used_because" in on_record and "facts_changed" in on_record


def test_readyz_reports_store_outage(app, client):
    app.extensions["hrdd"].store.engine.dispose()
    app.extensions["hrdd"].store.ping = lambda: False
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json["checks"]["store"] is False


def test_unknown_path_and_method_use_error_shape(client):
    r = client.get("/v1/nothing-here")
    assert r.status_code == 404 and set(r.json) == {"code", "status", "message", "errors"}
    assert client.delete("/v1/screenings").status_code == 405


def test_every_json_endpoint_answers_415_for_another_content_type_and_400_for_bad_json(app, client, auth_headers,
                                                                                     transaction):
    """Not only /v1/screenings: grievances, cases, triage, rider executions and party screening alike."""
    from tests.workspace_helpers import case_of
    admin = auth_headers("admin")
    txn = post(client, transaction, auth_headers("crm")).json["transaction_id"]
    case_id = case_of(app, txn)["id"]
    grievance = client.post("/v1/grievances", json={
        "subject_name": "Directorate of Public Security", "country": "Egypt", "location": "Cairo",
        "product": "FaceFind", "occurred_on": "March 2026",
        "description": "Cameras with face recognition were used to identify people at a protest."}).json["reference"]
    endpoints = ["/v1/grievances", f"/v1/grievances/{grievance}/triage", f"/v1/grievances/{grievance}/links",
                 f"/v1/grievances/{grievance}/actions", f"/v1/cases/{case_id}/decision",
                 f"/v1/transactions/{txn}/rider-executed", "/v1/parties/screen", "/v1/screenings"]
    before = stored_count(app)
    for url in endpoints:
        plain = client.post(url, data='{"a": 1}', content_type="text/plain", headers=admin)
        assert plain.status_code == 415 and plain.json["code"] == "unsupported_media_type", (url, plain.json)
        assert "application/json" in plain.json["message"] and "'text/plain'" in plain.json["message"]
        broken = client.post(url, data='{"a": 1', content_type="application/json", headers=admin)
        assert broken.status_code == 400 and broken.json["code"] == "malformed_json", (url, broken.json)
        twice = client.post(url, data='{"a": 1, "a": 2}', content_type="application/json", headers=admin)
        assert twice.status_code == 400, (url, twice.json)
        array = client.post(url, json=[1], headers=admin)
        assert array.status_code in (400, 422), (url, array.json)
    assert stored_count(app) == before


@pytest.mark.parametrize("path, query, accepted", [
    ("/v1/cases", "stauts=all", "age, capability, country, limit, offset, status"),
    ("/v1/grievances", "satus=all", "limit, offset, status"),
    ("/v1/parties/false-positives", "name=Nile", "party"),
    ("/v1/transactions/{txn}", "limt=5", "limit, offset"),
])
def test_list_endpoints_refuse_a_misspelt_filter_instead_of_ignoring_it(client, auth_headers, transaction, path,
                                                                        query, accepted):
    txn = post(client, transaction, auth_headers("crm")).json["transaction_id"]
    r = client.get(f"{path.format(txn=txn)}?{query}", headers=auth_headers("reviewer"))
    name = query.split("=")[0]
    assert r.status_code == 400 and r.json["code"] == "bad_request", r.json
    assert r.json["message"] == f"Unknown query parameter {name!r}; accepted: {accepted}"
    assert list(r.json["errors"]) == [name]
    # The parameter spelt as accepted still answers.
    spelt = {"stauts": "status", "satus": "status", "name": "party", "limt": "limit"}[name]
    fixed = client.get(f"{path.format(txn=txn)}?{query.replace(name, spelt)}", headers=auth_headers("reviewer"))
    assert fixed.status_code == 200, fixed.json
    twice = f"{query.replace(name, spelt)}&{query.replace(name, spelt)}"
    repeated = client.get(f"{path.format(txn=txn)}?{twice}", headers=auth_headers("reviewer"))
    assert repeated.status_code == 400 and list(repeated.json["errors"]) == [spelt], repeated.json
    assert f"{spelt!r} given more than once" in repeated.json["message"]


def test_every_answer_carries_the_review_and_the_outstanding_conditions(app, client, auth_headers, transaction):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    created = post(client, transaction, crm).json
    assert created["review"] is None
    assert created["outstanding_conditions"] == created["conditions"] == \
        ["reviewer_approval", "rider_executed", "checklist_completed"]
    cases = client.get("/v1/cases", headers=reviewer).json["cases"]
    r = client.post(f"/v1/cases/{cases[0]['id']}/decision", headers=reviewer, json={
        "decision": "approve_with_conditions", "rationale": "Ministry building entrances only",
        "conditions": "Deploy only at ministry building entrances", "safeguards": ["audit"]})
    assert r.status_code == 201
    # A dry run and a new screening of the deal both answer with the reviewer's decision in force.
    dry = client.post("/v1/screenings?dry_run=true", json=transaction, headers=crm).json
    again = post(client, transaction, crm).json
    for answer in (dry, again):
        assert answer["review"]["outcome"] == "approve_with_conditions"
        assert answer["review"]["conditions"] == "Deploy only at ministry building entrances"
        assert answer["review"]["safeguards"] == [{"id": "audit", "title": "Audit, inspection and records"}]
        assert answer["outstanding_conditions"] == ["rider_executed", "checklist_completed"]
        assert answer["conditions"] == created["conditions"]


def test_the_openapi_documents_the_review_and_outstanding_conditions(client):
    schemas = client.get("/openapi.json").json["components"]["schemas"]
    for name in ("Screening", "TransactionRecord"):
        properties = schemas[name]["properties"]
        assert properties["review"]["anyOf"][0]["$ref"].endswith("/Review")
        assert properties["outstanding_conditions"]["type"] == "array"
    review = schemas["Review"]["properties"]
    assert {"outcome", "decided_at", "decided_by", "conditions", "safeguards", "information_requested"} <= set(review)
    assert "as screened" in schemas["Screening"]["properties"]["conditions"]["description"]


def test_made_up_http_methods_stay_one_metrics_label(client):
    # Anyone can send any method name; each must not become a time series of its own (memory, and scrapes).
    for method in ("FOO", "PROPFIND", "X" * 5000):
        assert client.open("/healthz", method=method).status_code == 405
    assert client.get("/healthz").status_code == 200
    scraped = client.get("/metrics").get_data(as_text=True)
    assert "FOO" not in scraped and "PROPFIND" not in scraped and "XXXX" not in scraped
    assert 'hrdd_http_requests_total{endpoint="unmatched",method="other",status="405"} 3.0' in scraped
    assert 'hrdd_http_requests_total{endpoint="/healthz",method="GET",status="200"} 1.0' in scraped
