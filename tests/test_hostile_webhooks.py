"""Malformed, oversized and hostile webhook deliveries for every adapter: a 4xx with the reason, never a
5xx, and nothing stored. Bodies are correctly signed, so they get past authentication into the parsers.
"""

from __future__ import annotations

import copy
import json
import re
import time
from xml.sax.saxutils import escape

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hrdd.adapters import signatures
from tests.adapter_support import count_screenings, deliveries, fixture_bytes

pytestmark = pytest.mark.api
MAX_BODY = 256 * 1024
GENERIC_SECRET = "generic-signing-secret-5b1"
HUBSPOT_SECRET = "hubspot-client-secret-9e2"
DYNAMICS_KEY = "dynamics-key-c41"
SAP_TOKEN = "sap-event-mesh-token-77a"
ODOO_TOKEN = "odoo-path-token-3d0"
SALESFORCE_TOKEN = "salesforce-endpoint-token-1f4"
ORG = "00D5e000000KQ2eEAG"
VENDORS = ("generic", "salesforce", "hubspot", "dynamics", "sap", "odoo")
FIXTURE = {"generic": "generic/transaction.json", "salesforce": "salesforce/opportunity_batch.xml",
           "hubspot": "hubspot/workflow_deal.json", "dynamics": "dynamics/opportunity_create.json",
           "sap": "sap/salesorder_created.json", "odoo": "odoo/sale_order.json"}
CONTENT_TYPE = {"salesforce": "text/xml; charset=utf-8", "sap": "application/cloudevents+json"}


@pytest.fixture
def app_config(app_config):
    app_config["HRDD_MAX_BODY"] = MAX_BODY
    app_config["HRDD_ADAPTERS"] = {"adapters": {
        "generic": {"signing_secret": GENERIC_SECRET},
        "salesforce": {"organization_ids": [ORG[:15]], "token": SALESFORCE_TOKEN},
        "hubspot": {"client_secret": HUBSPOT_SECRET},
        "dynamics": {"auth_header": "x-hrdd-key", "auth_key": DYNAMICS_KEY},
        "sap": {"bearer_token": SAP_TOKEN, "api_base_url": "http://127.0.0.1:9"},
        "odoo": {"token": ODOO_TOKEN}}}
    return app_config


def send(client, vendor: str, body: bytes, content_type: str | None = None):
    """POST ``body`` to the vendor's webhook, signed or authenticated the way that vendor does it."""
    headers = {"Content-Type": content_type or CONTENT_TYPE.get(vendor, "application/json")}
    path = f"/v1/hooks/{vendor}"
    if vendor == "generic":
        stamp = str(int(time.time()))
        headers["X-HRDD-Timestamp"] = stamp
        headers["X-HRDD-Signature"] = "sha256=" + signatures.hmac_sha256_hex(GENERIC_SECRET, stamp.encode() + b"." + body)
    elif vendor == "hubspot":
        stamp = str(int(time.time() * 1000))
        headers["X-HubSpot-Request-Timestamp"] = stamp
        headers["X-HubSpot-Signature-v3"] = signatures.hubspot_v3(
            HUBSPOT_SECRET, "POST", "http://localhost/v1/hooks/hubspot", body, stamp)
    elif vendor == "dynamics":
        headers["x-hrdd-key"] = DYNAMICS_KEY
    elif vendor == "sap":
        headers["Authorization"] = f"Bearer {SAP_TOKEN}"
    elif vendor == "odoo":
        path = f"/v1/hooks/odoo/{ODOO_TOKEN}"
    elif vendor == "salesforce":
        path += f"?token={SALESFORCE_TOKEN}"
    return client.post(path, data=body, headers=headers)


def reason(response) -> str:
    """The reason a refusal gives: the JSON message, or a SOAP fault's faultstring."""
    if response.mimetype == "text/xml":
        text = response.get_data(as_text=True)
        assert "<faultstring>" in text, text
        return text.split("<faultstring>")[1].split("</faultstring>")[0]
    body = response.get_json()
    assert set(body) >= {"code", "status", "message", "errors"}, body
    return body["message"]


def assert_refused(app, response, vendor: str, *words: str, status: int | tuple = 400) -> None:
    """A 4xx whose reason contains ``words``; no screening and no delivery stored."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (vendor, response.status_code, response.get_data(as_text=True)[:400])
    text = reason(response)
    for word in words:
        assert word in text, (vendor, text)
    assert count_screenings(app) == 0, vendor
    assert deliveries(app, vendor) == [], vendor


def valid(vendor: str) -> bytes:
    return fixture_bytes(FIXTURE[vendor])


def test_the_valid_samples_are_accepted(app, client):
    """The baseline the hostile variants are cut from: each one is accepted as it is."""
    for vendor in VENDORS:
        response = send(client, vendor, valid(vendor))
        assert response.status_code in (200, 201, 202), (vendor, response.get_data(as_text=True)[:300])


@pytest.mark.parametrize("vendor", VENDORS)
def test_truncated_bodies(app, client, vendor):
    body = valid(vendor)
    for cut in (1, len(body) // 3, len(body) // 2, len(body) - 2):
        response = send(client, vendor, body[:cut])
        assert_refused(app, response, vendor, "XML" if vendor == "salesforce" else "JSON")


@pytest.mark.parametrize("vendor", ["generic", "hubspot", "dynamics", "sap", "odoo"])
@pytest.mark.parametrize("body, words", [
    (b'"a string"', ()), (b"42", ()), (b"null", ()), (b"true", ()), (b"[1, 2, 3]", ()), (b"[]", ()),
    (b"{}", ()), (b'[{"nested": [[[]]]}]', ()),
])
def test_wrong_json_types(app, client, vendor, body, words):
    response = send(client, vendor, body)
    assert_refused(app, response, vendor, *words)


@pytest.mark.parametrize("vendor", ["generic", "hubspot", "dynamics", "sap", "odoo"])
@pytest.mark.parametrize("replace, expected", [
    (lambda text: text.replace('"', '"\\u0000', 1), "NUL character"),
    (lambda text: text.replace('"', '"\\ud800', 1), "surrogate"),
    (lambda text: text[:-1].rstrip().rstrip("}]") + ', "x": NaN}' if text.rstrip().endswith("}") else
     text.rstrip()[:-1] + ", NaN]", "NaN is not a JSON number"),
    (lambda text: "[" * 200 + text + "]" * 200, "nested more than 64 levels"),
    (lambda text: text.replace(":", ": 1e400, \"y\":", 1), "too large"),
])
def test_hostile_json_values(app, client, vendor, replace, expected):
    body = replace(valid(vendor).decode()).encode()
    response = send(client, vendor, body)
    assert_refused(app, response, vendor, expected)


@pytest.mark.parametrize("vendor", VENDORS)
def test_bad_encodings(app, client, vendor):
    body = valid(vendor)
    # Inside the first text value: a Latin-1 byte where UTF-8 is expected, and a UTF-8 sequence cut in half.
    at = re.search(rb"<sf:Id>" if vendor == "salesforce" else rb'":\s*"', body).end()
    for bad in (b"\xe9", b"\xe2\x82"):
        response = send(client, vendor, body[:at] + bad + body[at:])
        assert_refused(app, response, vendor)
        assert any(w in reason(response) for w in ("utf-8", "UTF-8", "decode", "invalid token", "not well-formed")), \
            reason(response)


@pytest.mark.parametrize("vendor", VENDORS)
def test_body_over_the_size_limit_is_413(app, client, vendor):
    body = valid(vendor)
    padding = b" " * (MAX_BODY + 1 - len(body))
    response = send(client, vendor, body + padding)
    assert response.status_code == 413
    assert str(MAX_BODY) in response.get_json()["message"]
    assert count_screenings(app) == 0 and deliveries(app, vendor) == []


def _batch(vendor: str, n: int) -> tuple[bytes, str | None]:
    if vendor == "generic":
        one = json.loads(valid(vendor))
        items = []
        for i in range(n):
            item = copy.deepcopy(one)
            item["reference"]["object_id"] = f"opp-{i}"
            items.append(item)
        return json.dumps(items).encode(), None
    if vendor == "odoo":
        one = json.loads(valid(vendor))
        return json.dumps([{**one, "_id": i} for i in range(n)]).encode(), None
    if vendor == "hubspot":
        event = json.loads(fixture_bytes("hubspot/deal_batch.json"))[0]
        return json.dumps([{**event, "eventId": i} for i in range(n)]).encode(), None
    if vendor == "sap":
        event = json.loads(valid(vendor))
        return json.dumps([{**event, "id": f"evt-{i}"} for i in range(n)]).encode(), "application/cloudevents-batch+json"
    text = valid(vendor).decode()
    head, rest = text.split("<Notification>", 1)
    note, tail = rest.split("</Notification>", 1)
    tail = tail[tail.rindex("</Notification>") + len("</Notification>"):] if "</Notification>" in tail else tail
    notes = "".join(f"<Notification>{note.replace('<Id>', f'<Id>X{i:05d}', 1)}</Notification>" for i in range(n))
    return (head + notes + tail).encode(), None


@pytest.mark.parametrize("vendor", ["generic", "odoo", "hubspot", "sap", "salesforce"])
def test_gigantic_batches_are_refused_before_anything_is_stored(app, client, vendor):
    body, content_type = _batch(vendor, 101)
    assert len(body) < MAX_BODY
    response = send(client, vendor, body, content_type)
    assert_refused(app, response, vendor, "100")


@pytest.mark.parametrize("vendor, body", [
    ("generic", lambda b: b.replace(b'"object_id": "', b'"object_id": "' + b"x" * 200, 1)),
    ("odoo", lambda b: b.replace(b'"_model": "sale.order"', b'"_model": "' + b"m" * 100 + b'"', 1)),
    ("sap", lambda b: b.replace(b'"id":"', b'"id":"' + b"e" * 300, 1)),
    ("dynamics", lambda b: b.replace(b'"PrimaryEntityName":"opportunity"',
                                     b'"PrimaryEntityName":"' + b"o" * 80 + b'"', 1)),
    ("hubspot", lambda b: b.replace(b'"objectId": ', b'"objectId": 1' + b"0" * 140, 1)),
    ("salesforce", lambda b: b.replace(b"<sf:Id>0065e00000BvRk1AAF", b"<sf:Id>" + b"I" * 150, 1)),
])
def test_ids_longer_than_the_store_keeps_are_refused(app, client, vendor, body):
    original = valid(vendor)
    hostile = body(original)
    assert hostile != original, vendor
    response = send(client, vendor, hostile)
    assert_refused(app, response, vendor, "characters; at most")


# ---------------------------------------------------------------- Salesforce SOAP: XML tricks

def _envelope(inner: str, prolog: str = "") -> str:
    return (f'<?xml version="1.0" encoding="UTF-8"?>{prolog}<soapenv:Envelope '
            'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
            f'<notifications xmlns="http://soap.sforce.com/2005/09/outbound"><OrganizationId>{ORG}</OrganizationId>'
            f'{inner}</notifications></soapenv:Body></soapenv:Envelope>')


_LAUGHS = "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
XML_TRICKS = {
    "billion laughs": _envelope("&lol9;", f'<!DOCTYPE lolz [<!ENTITY lol0 "lol">{_LAUGHS}]>'),
    "quadratic blowup": _envelope("&a;" * 2000, '<!DOCTYPE x [<!ENTITY a "' + "A" * 50000 + '">]>'),
    "external entity (file)": _envelope("&xxe;", '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'),
    "external entity (http)": _envelope("&xxe;", '<!DOCTYPE x [<!ENTITY xxe SYSTEM "http://127.0.0.1:9/x">]>'),
    "parameter entity": _envelope("", '<!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]>'),
    "external DTD": _envelope("", '<!DOCTYPE x SYSTEM "http://127.0.0.1:9/evil.dtd">'),
}


@pytest.mark.parametrize("name", list(XML_TRICKS))
@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_xml_entity_tricks_are_refused_in_any_encoding(app, client, name, encoding):
    text = XML_TRICKS[name]
    if encoding == "utf-16":
        text = text.replace('encoding="UTF-8"', 'encoding="UTF-16"')
    started = time.monotonic()
    response = send(client, "salesforce", text.encode(encoding))
    assert_refused(app, response, "salesforce", "DOCTYPE or ENTITY")
    assert "root:" not in response.get_data(as_text=True)  # /etc/passwd never echoed
    assert time.monotonic() - started < 5


def test_deeply_nested_xml_is_refused(app, client):
    body = _envelope("<a>" * 30000 + "</a>" * 30000).encode()
    assert len(body) < MAX_BODY
    response = send(client, "salesforce", body)
    assert_refused(app, response, "salesforce", "Notification")


# ---------------------------------------------------------------- structure-aware mutation fuzzing

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12)


def _paths(value, prefix=()):
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _paths(child, (*prefix, i))


def _mutate(document, path, replacement, delete: bool):
    if not path:
        return replacement
    target = document
    for step in path[:-1]:
        target = target[step]
    if delete and isinstance(target, dict):
        del target[path[-1]]
    else:
        target[path[-1]] = replacement
    return document


@pytest.mark.slow
@pytest.mark.parametrize("vendor, fixture", [
    ("generic", "generic/transaction.json"), ("hubspot", "hubspot/workflow_deal.json"),
    ("hubspot", "hubspot/deal_batch.json"), ("dynamics", "dynamics/opportunity_create.json"),
    ("sap", "sap/salesorder_created.json"), ("odoo", "odoo/sale_order.json")])
def test_any_value_anywhere_in_a_vendor_payload_never_causes_a_5xx(app, client, vendor, fixture):
    original = json.loads(fixture_bytes(fixture))
    paths = list(_paths(original))

    @given(path=st.sampled_from(paths), replacement=JSON_VALUES, delete=st.booleans())
    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(path, replacement, delete):
        body = json.dumps(_mutate(copy.deepcopy(original), path, replacement, delete)).encode()
        response = send(client, vendor, body)
        assert response.status_code < 500, (path, replacement, response.get_data(as_text=True)[:500])
        if response.status_code >= 400:
            assert reason(response)

    check()


XML_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\x01\x02\x03\x04\x05\x06"
                                 "\x07\x08\x0b\x0c\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d"
                                 "\x1e\x1f\ufffe\uffff"), max_size=300)


@pytest.mark.slow
def test_any_field_value_in_a_salesforce_notification_never_causes_a_5xx(app, client):
    original = valid("salesforce").decode()
    fields = sorted(set(re.findall(r"<sf:([A-Za-z_]+)>", original)))

    @given(field=st.sampled_from(fields), value=XML_TEXT)
    @settings(max_examples=60, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(field, value):
        body = re.sub(rf"<sf:{field}>[^<]*</sf:{field}>", f"<sf:{field}>{escape(value)}</sf:{field}>", original)
        response = send(client, "salesforce", body.encode())
        assert response.status_code < 500, (field, value, response.get_data(as_text=True)[:500])

    check()


NON_FINITE = ["1e400", "-1e400", "inf", "-inf", "Infinity", "nan", "NaN"]


def _assert_held_as_invalid(app, response, value: str) -> None:
    assert response.status_code == 202, response.get_data(as_text=True)[:400]
    outcome = response.get_json()["results"][0]
    assert outcome["status"] == "invalid" and outcome["gate"] == "hold", outcome
    assert "is not a finite number" in outcome["reason"] and repr(value) in outcome["reason"]
    assert [d["status"] for d in deliveries(app, "odoo")] == ["invalid"]
    assert count_screenings(app) == 0


@pytest.mark.parametrize("value", NON_FINITE)
def test_non_finite_numbers_for_a_float_field_are_an_invalid_delivery_with_a_hold(app, client, value):
    record = json.loads(valid("odoo"))
    record["amount_total"] = value
    _assert_held_as_invalid(app, send(client, "odoo", json.dumps(record).encode()), value)


@pytest.mark.parametrize("value", NON_FINITE)
def test_non_finite_numbers_for_an_int_field_are_an_invalid_delivery_with_a_hold(app_config, value):
    from server import create_app

    odoo = app_config["HRDD_ADAPTERS"]["adapters"]["odoo"]
    odoo["field_maps"] = {"sale.order": {"items": [{
        "sku": "x_hrdd_product_code", "name": "x_hrdd_product_name",
        "capabilities": {"field": "x_hrdd_capabilities", "split": ","},
        "quantity": {"field": "product_uom_qty", "type": "int"}}]}}
    app = create_app(app_config)
    record = {**json.loads(valid("odoo")), "product_uom_qty": value}
    _assert_held_as_invalid(app, send(app.test_client(), "odoo", json.dumps(record).encode()), value)


@pytest.mark.parametrize("value", ["1.000,50", "250.000,00", "1,5", "12,34,567", "1,000,00"])
def test_a_decimal_comma_is_an_invalid_delivery_not_a_thousandth_of_the_value(app, client, value):
    record = json.loads(valid("odoo"))
    record["amount_total"] = value
    response = send(client, "odoo", json.dumps(record).encode())
    outcome = response.get_json()["results"][0]
    assert outcome["status"] == "invalid" and outcome["gate"] == "hold", outcome
    assert f"{value!r} is not a number hrdd can read unambiguously" in outcome["reason"]
    assert count_screenings(app) == 0


@pytest.mark.parametrize("value, read", [("250,000", 250000.0), ("1,234,567.89", 1234567.89), ("250000.50", 250000.5),
                                         (" 42 ", 42.0), ("1,000.", 1000.0)])
def test_thousands_separators_and_plain_numbers_are_read(app, client, value, read):
    record = json.loads(valid("odoo"))
    record["amount_total"] = value
    outcome = send(client, "odoo", json.dumps(record).encode()).get_json()["results"][0]
    assert outcome["status"] == "screened", outcome
    stored = app.extensions["hrdd"].store.get_screening(outcome["screening_id"])
    assert stored["transaction"]["items"][0]["unit_price"] == read
