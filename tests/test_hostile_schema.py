"""Property-based tests of the canonical transaction schema at POST /v1/screenings.

Valid bodies (drawn from the schema's own vocabulary) always screen and store; bodies made invalid in a
known way always give a 4xx in the one error shape naming the problem, and store nothing; arbitrary
JSON never gives a 5xx. Normalisation is a fixpoint: a validated body validates to itself.
"""

from __future__ import annotations

import copy
import json

import pycountry
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from hrdd.model import ANSWER_VALUES, DECISIONS, END_USER_TYPES, GATES, PARTY_ROLES, SECTORS, STAGES

pytestmark = pytest.mark.api
EXAMPLES = 60
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))
CAPABILITIES = ("intrusion_software", "communications_interception", "cell_site_simulator",
                "biometric_identification", "location_tracking", "social_media_monitoring", "data_analytics",
                "internet_filtering", "forensic_extraction", "recording_devices", "sensors", "drones",
                "it_infrastructure", "data_storage", "none")
CODES = sorted(c.alpha_2 for c in pycountry.countries)
COUNTRIES = st.sampled_from(CODES) | st.sampled_from(["Egypt", "egypt", "EGY", " NO ", "Germany", "FRA"])
# Text a CRM may send: any printable Unicode, no NUL or lone surrogates (those are refused as JSON).
TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=60).filter(str.strip)


def text(max_size: int):
    # Blank text is refused (and surrounding whitespace trimmed), so a valid value has a visible character.
    return st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=max_size).filter(str.strip)


# Question ids of the shipped checklist templates; answers under any other id are refused.
ANSWER_IDS = ("past_misuse", "exports_to_abusers", "end_user_disclosed", "accepts_safeguards",
              "surveillance_capable", "critical_component", "intermediaries_vetted", "review_date")


ITEMS = st.fixed_dictionaries(
    {"sku": text(100), "name": text(300),
     # "none" (no capability in the taxonomy) stands alone; a line sells more than nothing.
     "capabilities": st.just(["none"]) | st.lists(st.sampled_from([c for c in CAPABILITIES if c != "none"]),
                                                  min_size=1, max_size=5)},
    optional={"eccn": st.none() | text(40),
              "quantity": st.floats(min_value=0, max_value=1e12, exclude_min=True),
              "unit_price": st.none() | st.floats(min_value=0, max_value=1e12),
              "currency": st.none() | st.sampled_from(["USD", "EUR", "EGP"]),
              "component_of_surveillance_system": st.booleans()})
PARTIES = st.fixed_dictionaries(
    {"role": st.sampled_from(PARTY_ROLES), "name": text(300)},
    optional={"country": st.none() | COUNTRIES, "government_linked": st.none() | st.booleans()})
TRANSACTIONS = st.fixed_dictionaries(
    {"reference": st.fixed_dictionaries({"system": text(64), "object_type": text(64), "object_id": text(128)}),
     "stage": st.sampled_from(STAGES),
     "end_user": st.fixed_dictionaries({"name": text(300), "country": COUNTRIES},
                                       optional={"type": st.sampled_from(END_USER_TYPES),
                                                 "sector": st.sampled_from(SECTORS)}),
     "items": st.lists(ITEMS, min_size=1, max_size=3)},
    optional={"parties": st.lists(PARTIES, max_size=3),
              "deployment_countries": st.lists(COUNTRIES, max_size=4),
              "intended_use": st.none() | text(4000),
              "answers": st.dictionaries(st.sampled_from(ANSWER_IDS), st.sampled_from(ANSWER_VALUES),
                                         max_size=4)})
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=25)


def stored(app) -> int:
    return app.extensions["hrdd"].store.count_screenings()


def assert_error_shape(response) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.get_data(as_text=True)[:500])
    body = response.get_json()
    assert set(body) == {"code", "status", "message", "errors"}, body
    assert body["status"] == response.status_code and body["message"] and isinstance(body["errors"], dict)
    return body


def test_valid_transactions_always_screen_and_store(app, client, auth_headers):
    crm = auth_headers("crm")

    @given(body=TRANSACTIONS)
    @SETTINGS
    def check(body):
        before = stored(app)
        response = client.post("/v1/screenings", json=body, headers=crm)
        assert response.status_code == 201, response.get_data(as_text=True)[:800]
        result = response.get_json()
        assert result["decision"] in DECISIONS and result["gate"] in GATES
        assert stored(app) == before + 1
        again = client.get(f"/v1/screenings/{result['id']}", headers=crm).get_json()
        assert again["decision"] == result["decision"]
        assert again["transaction"]["end_user"]["country"] in CODES + ["XK"]

    check()


def test_validation_is_a_fixpoint(app):
    services = app.extensions["hrdd"]

    @given(body=TRANSACTIONS)
    @SETTINGS
    def check(body):
        once = services.validate(copy.deepcopy(body))
        assert services.validate(json.loads(json.dumps(once))) == once

    check()


def _paths(value, prefix=()):
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*prefix, key), child
            yield from _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield (*prefix, i), child
            yield from _paths(child, (*prefix, i))


def _set(body, path, value):
    target = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value


@st.composite
def invalid(draw):
    """A valid transaction broken in one way that the schema must refuse, and the field it must name."""
    body = draw(TRANSACTIONS)
    kind = draw(st.sampled_from(["missing", "unknown_field", "wrong_type", "enum", "country", "capability",
                                 "too_long", "empty_items"]))
    if kind == "missing":
        path = draw(st.sampled_from([("reference",), ("stage",), ("end_user",), ("items",),
                                     ("reference", "object_id"), ("end_user", "name"), ("end_user", "country"),
                                     ("items", 0, "sku"), ("items", 0, "capabilities")]))
        target = body
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]
        return body, path[0]
    if kind == "unknown_field":
        where = draw(st.sampled_from([(), ("reference",), ("end_user",), ("items", 0)]))
        target = body
        for step in where:
            target = target[step]
        name = draw(st.from_regex(r"\A[a-z]{1,12}\Z"))
        assume(name not in target)
        target[name] = draw(JSON.filter(lambda v: "\\u0000" not in json.dumps(v)))  # NUL is a 400
        return body, where[0] if where else name
    if kind == "wrong_type":
        strings = [p for p, v in _paths(body) if isinstance(v, str) and p[0] != "answers"]
        path = draw(st.sampled_from(strings))
        _set(body, path, draw(st.integers() | st.lists(st.integers(), max_size=2) | st.booleans()
                              | st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)))
        return body, path[0]
    if kind == "enum":
        path = draw(st.sampled_from([("stage",), ("end_user", "type"), ("end_user", "sector")]))
        _set(body, path, "not-" + draw(text(10)))
        return body, path[0]
    if kind == "country":
        # Digits (not three: those are ISO 3166-1 numeric codes) and made-up names.
        _set(body, ("end_user", "country"), draw(st.from_regex(r"\A([0-9]{1,2}|[0-9]{4,6})\Z")
                                                 | st.sampled_from(["Atlantis-Republic", "SE-1", "ZZ", "XX1"])))
        return body, "end_user"
    if kind == "capability":
        body["items"][0]["capabilities"] = ["x_" + draw(text(10))]
        return body, "items"
    if kind == "too_long":
        path = draw(st.sampled_from([("reference", "object_id"), ("end_user", "name"), ("items", 0, "sku")]))
        _set(body, path, "x" * 1000)
        return body, path[0]
    body["items"] = []
    return body, "items"


def test_invalid_transactions_are_a_4xx_naming_the_field_and_store_nothing(app, client, auth_headers):
    crm = auth_headers("crm")

    @given(case=invalid())
    @SETTINGS
    def check(case):
        body, field = case
        before = stored(app)
        response = client.post("/v1/screenings", json=body, headers=crm)
        error = assert_error_shape(response)
        assert response.status_code == 422 and error["code"] == "validation_error"
        assert field in error["errors"] and field in error["message"], (field, error)
        assert stored(app) == before

    check()


def test_arbitrary_json_never_causes_a_5xx(app, client, auth_headers):
    crm = auth_headers("crm")

    @given(body=JSON)
    @SETTINGS
    def check(body):
        before = stored(app)
        response = client.post("/v1/screenings", data=json.dumps(body), headers=crm, content_type="application/json")
        assert_error_shape(response)
        assert stored(app) == before

    check()
