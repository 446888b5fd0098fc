"""A deal's uploaded checklist answers stay on record: the CRM's next screening cannot drop them by saying unknown."""

from __future__ import annotations

import pytest

from tests.test_checklists import XLSX, download, fill, upload


@pytest.fixture
def blocked(client, auth_headers, transaction):
    """The DESIGN example screened at quote, then its checklist uploaded with past_misuse = Yes."""
    quote = client.post("/v1/screenings", json=transaction, headers=auth_headers("crm")).get_json()
    filled = fill(download(client, auth_headers, quote["id"]), {"past_misuse": "Yes"})
    response = upload(client, auth_headers, quote["id"], filled, XLSX)
    assert response.status_code == 201, response.get_json()
    uploaded = response.get_json()
    assert uploaded["gate"] == "block" and "answers_on_record" not in uploaded
    return uploaded


def screen(client, auth_headers, body, query=""):
    response = client.post(f"/v1/screenings{query}", json=body, headers=auth_headers("crm"))
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def test_the_crms_next_screening_keeps_the_uploaded_answer(client, auth_headers, transaction, blocked):
    # The CRM's order-stage call still sends its own field, "unknown": the checklist's Yes must stand.
    transaction["stage"] = "order"
    order = screen(client, auth_headers, transaction)
    assert transaction["answers"]["past_misuse"] == "unknown"
    assert order["decision"] == "do_not_proceed" and order["gate"] == "block"
    assert "RF-1.1" in [f["id"] for f in order["red_flags"]]
    assert order["transaction"]["answers"]["past_misuse"] == "yes"
    carried = order["answers_on_record"]["past_misuse"]
    assert carried["used"] is True and carried["answer"] == "yes"
    assert carried["source"] == f"checklist upload {blocked['checklist_upload']['id']}"
    assert carried["recorded_by"] == "test-export" and carried["recorded_at"].endswith("Z")
    # Left out altogether, the same; and a what-if dry run answers as the stored screening would.
    del transaction["answers"]["past_misuse"]
    assert screen(client, auth_headers, transaction)["gate"] == "block"
    assert screen(client, auth_headers, transaction, "?dry_run=true")["decision"] == "do_not_proceed"


def test_a_different_known_answer_is_kept_and_holds_the_gate(client, auth_headers, transaction, blocked):
    transaction["answers"]["past_misuse"] = "no"
    # A what-if dry run previews the same hold, with its reason.
    preview = screen(client, auth_headers, transaction, "?dry_run=true")
    assert preview["gate"] == "hold" and any(
        "the request answers past_misuse 'no' but the deal's checklist upload" in r for r in preview["hold_reasons"])
    answer = screen(client, auth_headers, transaction)
    assert answer["transaction"]["answers"]["past_misuse"] == "no"
    assert answer["answers_on_record"]["past_misuse"] == {
        **answer["answers_on_record"]["past_misuse"], "used": False, "request_answer": "no", "answer": "yes"}
    assert answer["gate"] == "hold"
    assert any("the request answers past_misuse 'no' but the deal's checklist upload" in r and "answered 'yes'" in r
               for r in answer["hold_reasons"])
    txn = client.get(f"/v1/transactions/{answer['transaction_id']}", headers=auth_headers("reviewer")).get_json()
    assert txn["gate"] == "hold"


def test_a_new_end_user_carries_nothing(client, auth_headers, transaction, blocked):
    transaction["end_user"]["name"] = "National Archives Service"
    answer = screen(client, auth_headers, transaction)
    assert "answers_on_record" not in answer
    assert answer["transaction"]["answers"]["past_misuse"] == "unknown"
    assert "RF-1.1" not in [f["id"] for f in answer["red_flags"]]
    # Spelled differently, the same end-user still carries the answer.
    transaction["end_user"]["name"] = "The Directorate of Public Security."
    assert screen(client, auth_headers, transaction)["answers_on_record"]["past_misuse"]["used"] is True


def test_the_latest_upload_is_what_stays_on_record(client, auth_headers, transaction, blocked):
    filled = fill(download(client, auth_headers, blocked["id"]), {"past_misuse": "No"})
    second = upload(client, auth_headers, blocked["id"], filled, XLSX)
    assert second.status_code == 201, second.get_json()
    assert second.get_json()["transaction"]["answers"]["past_misuse"] == "no"
    after = screen(client, auth_headers, transaction)
    assert after["answers_on_record"]["past_misuse"]["answer"] == "no"
    assert after["answers_on_record"]["past_misuse"]["source"] == \
        f"checklist upload {second.get_json()['checklist_upload']['id']}"
    assert "RF-1.1" not in [f["id"] for f in after["red_flags"]]


def test_another_deal_carries_nothing(client, auth_headers, transaction, blocked):
    transaction["reference"]["object_id"] = "another-opportunity"
    answer = screen(client, auth_headers, transaction)
    assert "answers_on_record" not in answer and answer["gate"] != "block"


def test_rescreening_keeps_the_uploaded_answer_and_reports_no_change(app, client, auth_headers, transaction, blocked):
    from hrdd.rescreen import rescreen

    transaction["stage"] = "order"
    order = screen(client, auth_headers, transaction)
    assert order["gate"] == "block"
    with app.app_context():
        result = rescreen(app.extensions["hrdd"], stages=("order",))
    assert result.examined >= 1 and result.errors == [] and result.decision_changes == []


# ---- found by review: every upload counts, the end-user's own answers, an upload racing a CRM call ----

@pytest.fixture
def german(transaction):
    """A German law-enforcement deal: released with conditions unless past_misuse is Yes (then blocked)."""
    transaction["end_user"].update(country="DE", type="government", sector="law_enforcement")
    transaction["deployment_countries"] = ["DE"]
    transaction["parties"][0]["country"] = "DE"
    return transaction


def _upload(client, auth_headers, screening_id, answers, template="state-dept-2020"):
    filled = fill(download(client, auth_headers, screening_id, template), answers)
    response = upload(client, auth_headers, screening_id, filled, XLSX)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_a_second_upload_with_another_template_keeps_the_first_ones_yes(client, auth_headers, german):
    first = screen(client, auth_headers, german)
    assert first["gate"] == "release_with_conditions"
    yes = _upload(client, auth_headers, first["id"], {"past_misuse": "Yes"})
    assert yes["gate"] == "block"
    kyc = _upload(client, auth_headers, yes["id"], {"kyc_unusual_payment": "No"}, "bis-kyc-red-flags")
    assert kyc["gate"] == "block"
    later = screen(client, auth_headers, german)
    assert later["gate"] == "block" and set(later["answers_on_record"]) == {"past_misuse", "kyc_unusual_payment"}


def test_an_upload_on_the_crms_screening_keeps_the_carried_yes(client, auth_headers, german):
    first = screen(client, auth_headers, german)
    _upload(client, auth_headers, first["id"], {"past_misuse": "Yes"})
    crm = screen(client, auth_headers, german)
    assert crm["gate"] == "block"
    # Its checklist is the only one that may be uploaded now; the CRM's request says "unknown".
    kyc = _upload(client, auth_headers, crm["id"], {"kyc_unusual_payment": "No"}, "bis-kyc-red-flags")
    assert kyc["gate"] == "block"
    assert screen(client, auth_headers, german)["gate"] == "block"


def test_an_upload_saying_unknown_keeps_the_yes_and_one_saying_no_replaces_it(client, auth_headers, german):
    first = screen(client, auth_headers, german)
    yes = _upload(client, auth_headers, first["id"], {"past_misuse": "Yes"})
    unknown = _upload(client, auth_headers, yes["id"], {"past_misuse": "Unknown"})
    assert unknown["gate"] == "block" and unknown["answers_on_record"]["past_misuse"]["used"] is True
    no = _upload(client, auth_headers, unknown["id"], {"past_misuse": "No"})
    # The newer checklist's known answer replaces the older one's, with no conflict to hold on.
    assert no["gate"] == "release_with_conditions" and "past_misuse" not in no.get("answers_on_record", {})
    assert screen(client, auth_headers, german)["answers_on_record"]["past_misuse"]["answer"] == "no"


def test_a_deal_returning_to_an_end_user_finds_its_answers_again(client, auth_headers, german):
    first = screen(client, auth_headers, german)
    _upload(client, auth_headers, first["id"], {"past_misuse": "Yes"})
    original = dict(german["end_user"])
    german["end_user"]["name"] = "Bundespolizei"
    other = screen(client, auth_headers, german)
    assert other["gate"] == "release_with_conditions"
    _upload(client, auth_headers, other["id"], {"past_misuse": "No"})
    german["end_user"] = original
    assert screen(client, auth_headers, german)["gate"] == "block"


def test_an_upload_committed_while_a_crm_call_is_screened_is_not_overtaken(app, client, auth_headers, german,
                                                                          monkeypatch):
    import threading

    first = screen(client, auth_headers, german)
    filled = fill(download(client, auth_headers, first["id"]), {"past_misuse": "Yes"})
    services = app.extensions["hrdd"]
    engine_screen, uploads = services.screen, []

    def upload_right_after_the_engine(transaction):
        screening = engine_screen(transaction)
        if not uploads:  # the compliance officer's upload commits after the CRM call was screened
            uploads.append(None)
            thread = threading.Thread(target=lambda: uploads.append(upload(
                app.test_client(), auth_headers, first["id"], filled, XLSX)))
            thread.start()
            thread.join(60)
        return screening

    monkeypatch.setattr(services, "screen", upload_right_after_the_engine)
    crm = screen(client, auth_headers, german)
    assert uploads[1].status_code == 201 and uploads[1].get_json()["gate"] == "block"
    # Stored after the upload, the CRM's screening carries its Yes (screened again under the deal's lock).
    assert crm["gate"] == "block" and crm["answers_on_record"]["past_misuse"]["used"] is True
    txn = client.get(f"/v1/transactions/{crm['transaction_id']}", headers=auth_headers("reviewer")).get_json()
    assert txn["gate"] == "block"


def test_the_case_page_says_where_a_carried_answer_came_from(app, client, auth_headers, transaction, blocked):
    from tests.workspace_helpers import case_of, login, make_user

    transaction["stage"] = "order"
    order = screen(client, auth_headers, transaction)
    make_user(app)
    login(client)
    page = client.get(f"/workspace/cases/{case_of(app, order['transaction_id'])['id']}").get_data(as_text=True)
    upload_id = blocked["checklist_upload"]["id"]
    assert f"<code>past_misuse</code>: yes <span class=\"muted\">(from checklist upload {upload_id}," in page
    assert "test-export; not known to the request)" in page


def test_uploads_made_before_0705_are_found_after_the_upgrade(app, client, auth_headers, transaction, blocked):
    from tests.conftest import migrate_down

    store = app.extensions["hrdd"].store
    migrate_down(store, "0704_record_versions")  # checklist_uploads without end_user_key
    store.upgrade()
    transaction["end_user"]["name"] = "Directorate of Public-Security"
    answer = screen(client, auth_headers, transaction)
    assert answer["gate"] == "block" and answer["answers_on_record"]["past_misuse"]["used"] is True
