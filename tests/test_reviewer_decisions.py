"""What reviewers' approvals leave to do: a second approval judged by the organisation's policy."""

from __future__ import annotations

import pytest

from tests.test_workspace_cases import _decide, _iran, _second_reviewer
from tests.workspace_helpers import case_of, screen

pytestmark = pytest.mark.store

LICENCE = "OFAC IR-2026-1187"


def _record(client, headers, txn) -> dict:
    r = client.get(f"/v1/transactions/{txn}", headers=headers)
    assert r.status_code == 200
    return r.get_json()


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
