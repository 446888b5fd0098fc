"""A deal's uploaded checklist answers stay on record: the CRM's next screening cannot drop them by saying unknown."""

from __future__ import annotations

import io
import zipfile
from datetime import date, datetime

import pytest

from tests.conftest import load_fixture
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
    # The newer checklist's known answer replaces the older one's, with no conflict to hold on; the gate
    # holds only for a reviewer to confirm the withdrawn Yes (critical RF-1.1).
    assert no["engine_gate"] == "release_with_conditions" and "past_misuse" not in no.get("answers_on_record", {})
    assert no["gate"] == "hold" and [r for r in no["hold_reasons"] if "must confirm the changed answer" in r]
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


def test_uploads_keyed_before_0707_are_found_after_the_upgrade(app, client, auth_headers, transaction):
    import sqlalchemy as sa

    from hrdd.checklists.evidence import checklist_uploads
    from hrdd.parties.normalize import Normaliser
    from hrdd.workspace.util import end_user_key
    from tests.conftest import migrate_down

    disguised = "\u0421yber Se\u0441urity Directorate"  # Cyrillic С and с: "Syber Sesurity" before 0707
    transaction["end_user"]["name"] = disguised
    quote = client.post("/v1/screenings", json=transaction, headers=auth_headers("crm")).get_json()
    filled = fill(download(client, auth_headers, quote["id"]), {"past_misuse": "Yes"})
    assert upload(client, auth_headers, quote["id"], filled, XLSX).status_code == 201
    store = app.extensions["hrdd"].store
    migrate_down(store, "0705_upload_end_users")
    with store.engine.begin() as conn:  # the key as 0705's code wrote it
        old = end_user_key(disguised, "EG", Normaliser.from_file(fold_homoglyphs=False))
        conn.execute(sa.update(checklist_uploads).values(end_user_key=old))
    store.upgrade()
    transaction["end_user"]["name"] = "Cyber Security Directorate"
    transaction["stage"] = "order"
    answer = screen(client, auth_headers, transaction)
    assert answer["gate"] == "block" and answer["answers_on_record"]["past_misuse"]["used"] is True


# ---- a re-screened deal's checklist carries the latest upload's own work (notes, owners, dates, text) ----

def _edit(values: dict[str, dict]):
    """A sheet edit typing into question rows by id: {qid: {column number: value}}, text kept as text."""
    from tests.test_checklists import question_rows

    def edit(wb):
        ws = wb["Questions"]
        rows = question_rows(ws)
        for qid, cells in values.items():
            for column, value in cells.items():
                cell = ws.cell(row=rows[qid], column=column, value=value)
                if isinstance(value, str):
                    cell.data_type = "s"  # typed as text (Excel's quote prefix), never a formula
    return edit


def _carry_upload(client, auth_headers, screening_id, values, template=None):
    filled = fill(download(client, auth_headers, screening_id, template), {}, _edit(values))
    response = upload(client, auth_headers, screening_id, filled, XLSX)
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _questions(data: bytes) -> dict[str, dict]:
    from tests.test_checklists import open_xlsx
    ws = open_xlsx(data)["Questions"]
    headers = [c.value for c in ws[1]]
    return {row[0].value: {h: c for h, c in zip(headers, row, strict=True)}
            for row in ws.iter_rows(min_row=2) if row[0].value}


def _summary(data: bytes) -> dict:
    from tests.test_checklists import open_xlsx
    return {r[0]: r[1] for r in open_xlsx(data)["Summary"].iter_rows(min_row=4, max_col=2, values_only=True) if r[0]}


WORK = {"tailoring_record": {6: "Removed live-matching module"}, "review_date": {6: date(2027, 6, 1)},
        "past_misuse": {6: "Yes", 7: "see file 123", 10: "J. Doe", 11: date(2026, 12, 31), 12: "Done"},
        "diversion_indicators": {6: "No", 7: "Route checked with the forwarder", 10: "J. Doe"}}


def test_a_rescreened_deals_checklist_carries_the_latest_uploads_work(app, client, auth_headers, transaction):
    from hrdd.checklists.evidence import uploads_of

    quote = screen(client, auth_headers, transaction)
    uploaded = _carry_upload(client, auth_headers, quote["id"], WORK)
    [row] = uploads_of(app.extensions["hrdd"].store, quote["id"])
    since = f"Carried from checklist upload {row['id']} of {row['uploaded_at'].isoformat()[:10]} by test-export."
    transaction["stage"] = "order"
    order = screen(client, auth_headers, transaction)
    data = download(client, auth_headers, order["id"])
    rows = _questions(data)
    assert rows["tailoring_record"]["Answer"].value == "Removed live-matching module"
    assert rows["tailoring_record"]["Evidence notes"].value == since
    assert rows["review_date"]["Answer"].value == datetime(2027, 6, 1)
    misuse = rows["past_misuse"]
    assert misuse["Answer"].value == "Yes" and misuse["Evidence notes"].value == f"{since}\nsee file 123"
    assert (misuse["Owner"].value, misuse["Due date"].value, misuse["Status"].value) == (
        "J. Doe", datetime(2026, 12, 31), "Done")
    assert rows["diversion_indicators"]["Evidence notes"].value.endswith("\nRoute checked with the forwarder")
    assert rows["training_provided"]["Evidence notes"].value is None
    assert _summary(data)["Carried from earlier checklists"].startswith(f"checklist upload {row['id']} of ")
    # Uploaded again unchanged, it records the same work; the next checklist names only the newest upload.
    again = upload(client, auth_headers, order["id"], data, XLSX)
    assert again.status_code == 201, again.get_json()
    newest = _questions(download(client, auth_headers, again.get_json()["id"]))
    upload_id = again.get_json()["checklist_upload"]["id"]
    assert newest["past_misuse"]["Evidence notes"].value.startswith(f"Carried from checklist upload {upload_id} ")
    assert newest["past_misuse"]["Evidence notes"].value.endswith(".\nsee file 123")
    # The screenings before the upload keep the checklist they had.
    assert _questions(download(client, auth_headers, quote["id"]))["tailoring_record"]["Answer"].value is None
    assert uploaded["checklist_upload"]["answers"]["past_misuse"] == "yes"


def test_carried_text_that_looks_like_a_formula_stays_text(client, auth_headers, transaction):
    quote = screen(client, auth_headers, transaction)
    hostile = {"tailoring_record": {6: "=1+1"}, "past_misuse": {7: "@SUM(1+9)*cmd|' /C calc'!A0",
                                                                 10: "=HYPERLINK(\"http://evil.example\")"}}
    _carry_upload(client, auth_headers, quote["id"], hostile)
    transaction["stage"] = "order"
    order = screen(client, auth_headers, transaction)
    data = download(client, auth_headers, order["id"])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in archive.read(name) and b"<f " not in archive.read(name), name
    rows = _questions(data)
    for cell in (rows["tailoring_record"]["Answer"], rows["past_misuse"]["Owner"]):
        assert cell.data_type == "s" and cell.quotePrefix, cell.value
    assert rows["tailoring_record"]["Answer"].value == "=1+1"
    assert rows["past_misuse"]["Evidence notes"].value.endswith("\n@SUM(1+9)*cmd|' /C calc'!A0")
    # Uploaded as downloaded, nothing reads as a formula and the text is recorded as it was.
    response = upload(client, auth_headers, order["id"], data, XLSX)
    assert response.status_code == 201, response.get_json()


def test_a_question_removed_from_the_template_is_not_carried(app_config, tmp_path):
    from tests.test_checklists import _app_with_own_templates

    app, directory, client, store, crm = _app_with_own_templates(app_config, tmp_path)
    export = {"Authorization": f"Bearer {store.create_api_key('e', 'export')[1]}"}
    headers = {"crm": crm, "export": export}
    body = load_fixture("transaction_egypt_biometric.json")
    quote = screen(client, headers.get, body)
    _carry_upload(client, headers.get, quote["id"], WORK)
    path = directory / "state-dept-2020.yaml"
    text = path.read_text(encoding="utf-8")
    start = text.index("  - id: tailoring_record")
    path.write_text(text[:start] + text[text.index("  # Step 6", start):], encoding="utf-8")
    body["stage"] = "order"
    order = screen(client, headers.get, body)
    data = download(client, headers.get, order["id"])
    rows = _questions(data)
    assert "tailoring_record" not in rows and rows["past_misuse"]["Owner"].value == "J. Doe"
    assert "Removed live-matching module" not in _all_text(data)
    store.engine.dispose()


def _all_text(data: bytes) -> str:
    from tests.test_checklists import open_xlsx
    return "\n".join(str(c.value) for ws in open_xlsx(data).worksheets for row in ws.iter_rows() for c in row
                     if c.value is not None)


def test_another_end_user_gets_nothing_carried_and_a_return_finds_it_again(client, auth_headers, transaction):
    quote = screen(client, auth_headers, transaction)
    _carry_upload(client, auth_headers, quote["id"], WORK)
    original = dict(transaction["end_user"])
    transaction["end_user"]["name"] = "National Archives Service"
    other = download(client, auth_headers, screen(client, auth_headers, transaction)["id"])
    assert "Carried from" not in _all_text(other) and "J. Doe" not in _all_text(other)
    assert _questions(other)["tailoring_record"]["Answer"].value is None
    transaction["end_user"] = {**original, "name": "The Directorate of Public Security."}
    back = _questions(download(client, auth_headers, screen(client, auth_headers, transaction)["id"]))
    assert back["tailoring_record"]["Answer"].value == "Removed live-matching module"


def test_work_on_facts_that_changed_is_not_carried_and_the_rest_is_reopened(client, auth_headers, transaction):
    quote = screen(client, auth_headers, transaction)
    assert "RF-4.5" not in [f["id"] for f in quote["red_flags"]]
    _carry_upload(client, auth_headers, quote["id"], WORK)
    transaction["parties"].append({"role": "consignee", "name": "Bosphorus Logistics", "country": "TR",
                                   "government_linked": False})
    moved = screen(client, auth_headers, transaction)
    assert "RF-4.5" in [f["id"] for f in moved["red_flags"]]
    data = download(client, auth_headers, moved["id"])
    rows = _questions(data)
    # RF-4.5 (diversion) is raised now: "no signs of diversion" was about a deal without this consignee.
    # Its No is not screened on the new facts either (answers_on_record: not used), so it is to be answered again.
    assert moved["answers_on_record"]["diversion_indicators"]["used"] is False
    assert "diversion_indicators" not in moved["transaction"]["answers"]
    diversion = rows["diversion_indicators"]
    assert diversion["Evidence notes"].value.startswith("Not carried from checklist upload chk_")
    assert "RF-4.5 reads differently" in diversion["Evidence notes"].value
    assert "Route checked" not in diversion["Evidence notes"].value
    assert (diversion["Owner"].value, diversion["Status"].value) == (None, "Open")
    # The end-user's record still stands, to be checked again now that the parties changed.
    misuse = rows["past_misuse"]
    assert misuse["Owner"].value == "J. Doe" and misuse["Status"].value == "Open"
    assert "The deal's parties and countries changed since: check that it still holds." in misuse["Evidence notes"].value
    assert "diversion_indicators (RF-4.5)" in _summary(data)["Carried from earlier checklists"]


# ---- the Parties sheet's review notes go with the party to the deal's next checklist ----

def _parties(data: bytes) -> list[tuple]:
    from tests.test_checklists import open_xlsx
    return [(r[0].value, r[1].value, r[2].value, r[4].value, r[8]) for r in open_xlsx(data)["Parties"].iter_rows(min_row=2)]


def test_parties_review_notes_are_carried_to_the_same_party_only(app, client, auth_headers, transaction):
    from hrdd.checklists.evidence import uploads_of
    from tests.test_checklists import party_notes

    transaction["parties"].append({"role": "agent", "name": "Delta Trading", "country": "EG", "government_linked": False})
    quote = screen(client, auth_headers, transaction)
    notes = {"Directorate of Public Security": "Ministry ownership letter on file 42",
             "Nile Integrated Systems": "=1+1 is what their reseller code reads; not listed anywhere",
             "Delta Trading": "Agent vetted by J. Doe in March"}
    filled = fill(download(client, auth_headers, quote["id"]), {}, party_notes(notes))
    assert upload(client, auth_headers, quote["id"], filled, XLSX).status_code == 201
    [row] = uploads_of(app.extensions["hrdd"].store, quote["id"])
    since = f"Carried from checklist upload {row['id']} of {row['uploaded_at'].isoformat()[:10]} by test-export."
    # At order the agent is gone, the distributor now also ships from Oman (another party) and a consignee
    # is new; the end-user is spelt differently but is the same one.
    transaction["stage"] = "order"
    transaction["end_user"]["name"] = "The Directorate of Public Security."
    transaction["parties"] = [transaction["parties"][0],
                              {**transaction["parties"][0], "country": "OM"},
                              {"role": "consignee", "name": "Bosphorus Logistics", "country": "TR"}]
    order = screen(client, auth_headers, transaction)
    data = download(client, auth_headers, order["id"])
    rows = _parties(data)
    assert [(r[0], r[1], r[2], r[4].value) for r in rows] == [
        ("end-user", "The Directorate of Public Security.", "EG", f"{since}\nMinistry ownership letter on file 42"),
        ("distributor", "Nile Integrated Systems", "AE", f"{since}\n{notes['Nile Integrated Systems']}"),
        ("distributor", "Nile Integrated Systems", "OM", None),
        ("consignee", "Bosphorus Logistics", "TR", None)]
    assert "Agent vetted" not in _all_text(data)  # the agent is no longer in the deal
    # The Summary says where the party notes came from, as it does for carried answers.
    assert f"{since[len('Carried from '):-1]}: " in _summary(data)["Carried from earlier checklists"]
    assert "2 parties' review notes" in _summary(data)["Carried from earlier checklists"]
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in archive.read(name) and b"<f " not in archive.read(name), name
    assert all(r[4].data_type == "s" for r in rows[:2])
    # Uploaded as downloaded, the notes are recorded without piling up the generated lines.
    again = upload(client, auth_headers, order["id"], data, XLSX).get_json()
    [second] = uploads_of(app.extensions["hrdd"].store, order["id"])
    newest = _parties(download(client, auth_headers, again["id"]))[0][4].value
    assert newest == (f"Carried from checklist upload {second['id']} of {second['uploaded_at'].isoformat()[:10]} "
                      "by test-export.\nMinistry ownership letter on file 42")
    # The quote's own checklist stays as it was.
    assert all(r[4].value is None for r in _parties(download(client, auth_headers, quote["id"])))


def test_parties_notes_follow_the_restricted_party_result_they_were_written_for():
    from types import SimpleNamespace

    from hrdd.checklists.carry import carried_party_notes
    from hrdd.checklists.parties import party_rows

    screening = load_fixture("checklist_screening_eg.json")
    nile = {"role": "distributor", "name": "Nile Integrated Systems", "country": "AE"}
    listed = {"party": nile, "list": "Entity List", "entry_id": "rpl-9", "name": "Nile Systems FZE",
              "matched_name": "Nile Systems FZE", "score": 88, "status": "possible"}
    screening["party_matches"] = [listed]
    assert [(r.role, r.result) for r in party_rows(screening)] == [("end-user", "no match"),
                                                                   ("distributor", "possible match")]

    def recorded(upload_id, day, parties):
        return SimpleNamespace(id=upload_id, uploaded_at=datetime.fromisoformat(f"{day}T10:00:00+00:00"),
                               uploaded_by="J. Doe", record={"parties": parties})

    def party(who, result="no match", entry=None, listed_on=None, notes=None):
        return {**who, "restricted_party_result": result, "matched_entry": entry, "list": listed_on,
                "review_notes": notes}

    end_user = {"role": "end-user", "name": "Directorate of Public Security", "country": "EG"}
    older = recorded("chk_OLD", "2026-01-05", [party(end_user, notes="Ownership letter"),
                                              party(nile, notes="Screened by hand: clean")])
    # The newest upload had the end-user's row cleared: that decides, the older note is not carried.
    newer = recorded("chk_NEW", "2026-02-01", [party(end_user)])
    carried = carried_party_notes(None, screening, [newer, older])
    assert carried.parties_by_upload == {"checklist upload chk_OLD of 2026-01-05 by J. Doe": 1}
    assert carried.cells == {1: "Carried from checklist upload chk_OLD of 2026-01-05 by J. Doe, written when the "
                          "restricted-party result was no match, which this screening no longer shows (possible "
                          "match (Nile Systems FZE / rpl-9; Entity List) now): check that it still holds.\n"
                          "Screened by hand: clean"}
    # Notes written on that very match go back to its row as they are, once the generated lines are shed.
    on_match = recorded("chk_MATCH", "2026-03-01", [party(nile, "possible match", "Nile Systems FZE / rpl-9",
                                                          "Entity List", carried.cells[1] + "\nFalse positive: other FZE")])
    assert carried_party_notes(None, screening, [on_match, newer, older]).cells[1] == (
        "Carried from checklist upload chk_MATCH of 2026-03-01 by J. Doe.\nScreened by hand: clean\n"
        "False positive: other FZE")


# ---- answers on record are about the facts they were given on: a deal whose facts changed is checked again ----

CLEARED = {"past_misuse": "No", "exports_to_abusers": "No", "end_user_disclosed": "Yes", "accepts_safeguards": "Yes"}
ENGINE_QUESTIONS = ("past_misuse", "exports_to_abusers", "end_user_disclosed", "accepts_safeguards")
CONSIGNEE = {"role": "consignee", "name": "Bosphorus Logistics", "country": "TR", "government_linked": False}


def _holds_on_conflict(screening) -> list[str]:
    return [r for r in screening.get("hold_reasons") or () if "the request answers" in r]


@pytest.fixture
def cleared(client, auth_headers, transaction):
    """The DESIGN example with its checklist uploaded answering the four engine questions the harmless way."""
    quote = screen(client, auth_headers, transaction)
    assert "checklist_completed" in quote["conditions"]
    uploaded = _upload(client, auth_headers, quote["id"], CLEARED)
    assert "checklist_completed" not in uploaded["conditions"]
    return uploaded


def test_answers_on_record_stand_while_the_deals_facts_are_the_same(client, auth_headers, transaction, cleared):
    # The order stage with another quantity: nothing the answers were about changed.
    transaction["stage"] = "order"
    transaction["items"][0]["quantity"] = 40
    order = screen(client, auth_headers, transaction)
    assert "checklist_completed" not in order["conditions"]
    for qid in ENGINE_QUESTIONS:
        note = order["answers_on_record"].get(qid)
        if qid == "end_user_disclosed":  # the request's own yes, the same as the upload's
            assert note is None and order["transaction"]["answers"][qid] == "yes"
            continue
        assert note["used"] is True and "not_used_because" not in note and "facts_changed" not in note
        assert note["source"] == f"checklist upload {cleared['checklist_upload']['id']}"


def test_a_party_spelt_differently_keeps_the_answers_on_record(client, auth_headers, transaction, cleared):
    # The same distributor as the CRM spells it at order: parties compare by the key reviewer decisions use.
    transaction["stage"] = "order"
    transaction["parties"][0]["name"] = "Nile Integrated-Systems LLC."
    order = screen(client, auth_headers, transaction)
    assert "checklist_completed" not in order["conditions"]
    for qid in ("past_misuse", "exports_to_abusers", "accepts_safeguards"):
        note = order["answers_on_record"][qid]
        assert note["used"] is True and "not_used_because" not in note and "facts_changed" not in note
    rows = _questions(download(client, auth_headers, order["id"]))
    assert "changed since" not in (rows["past_misuse"]["Evidence notes"].value or "")


def test_harmless_answers_on_record_are_not_used_once_the_deals_facts_changed(client, auth_headers, transaction,
                                                                              cleared):
    upload_id = cleared["checklist_upload"]["id"]
    # The CRM adds a consignee in Turkey, where the system will also be deployed.
    transaction["parties"].append(dict(CONSIGNEE))
    transaction["deployment_countries"].append("TR")
    del transaction["answers"]["end_user_disclosed"]
    preview = screen(client, auth_headers, transaction, "?dry_run=true")
    moved = screen(client, auth_headers, transaction)
    for answer in (preview, moved):
        assert "checklist_completed" in answer["conditions"]
        assert _holds_on_conflict(answer) == []
        for qid in ENGINE_QUESTIONS:
            assert answer["transaction"]["answers"].get(qid) in (None, "unknown"), qid
            note = answer["answers_on_record"][qid]
            assert note["used"] is False and "request_answer" not in note
            assert note["facts_changed"] == ["parties", "countries", "deployment countries"]
            assert note["not_used_because"].startswith(
                f"the deal's parties, countries and deployment countries changed since checklist upload {upload_id}")
    # The screening and its checklist agree: the download asks for the rows to be checked again.
    rows = _questions(download(client, auth_headers, moved["id"]))
    assert rows["past_misuse"]["Status"].value == "Open"
    assert "The deal's parties, countries and deployment countries changed since" in \
        rows["past_misuse"]["Evidence notes"].value


def test_an_unchanged_upload_of_the_new_checklist_does_not_answer_for_the_new_facts(client, auth_headers, transaction,
                                                                                   cleared):
    # The download pre-filled the answers the screening had set aside, so uploading it untouched recorded
    # them again and checklist_completed went away with nobody answering for the new facts.
    transaction["parties"].append(dict(CONSIGNEE))
    del transaction["answers"]["end_user_disclosed"]
    moved = screen(client, auth_headers, transaction)
    data = download(client, auth_headers, moved["id"])
    rows = _questions(data)
    for qid in ("past_misuse", "exports_to_abusers", "end_user_disclosed", "accepts_safeguards"):
        assert rows[qid]["Answer"].value in (None, "Unknown"), qid
        assert rows[qid]["Status"].value == "Open"
        assert f"That upload answered {CLEARED[qid]} on the facts then; this screening does not use that answer: " \
               "answer again." in rows[qid]["Evidence notes"].value, qid
    again = upload(client, auth_headers, moved["id"], data, XLSX).get_json()
    assert "checklist_completed" in again["conditions"]
    # Answered for the new facts, they count again.
    answered = _upload(client, auth_headers, again["id"], CLEARED)
    assert "checklist_completed" not in answered["conditions"]


def test_a_request_answering_otherwise_on_changed_facts_is_no_conflict(client, auth_headers, transaction, cleared):
    transaction["deployment_countries"] = ["EG", "JO"]
    transaction["answers"]["accepts_safeguards"] = "no"
    moved = screen(client, auth_headers, transaction)
    assert "RF-6.1" in [f["id"] for f in moved["red_flags"]]
    note = moved["answers_on_record"]["accepts_safeguards"]
    assert note["used"] is False and "request_answer" not in note
    assert note["not_used_because"].startswith("the deal's countries and deployment countries changed since ")
    assert _holds_on_conflict(moved) == []


def test_a_risky_answer_on_record_is_still_used_after_the_facts_changed(client, auth_headers, transaction, blocked):
    transaction["parties"].append(dict(CONSIGNEE))
    moved = screen(client, auth_headers, transaction)
    # Conservative: a Yes to past misuse keeps raising RF-1.1 whatever else changed.
    assert moved["gate"] == "block" and "RF-1.1" in [f["id"] for f in moved["red_flags"]]
    note = moved["answers_on_record"]["past_misuse"]
    assert note["used"] is True and note["answer"] == "yes" and "not_used_because" not in note
    assert note["facts_changed"] == ["parties", "countries"]


def test_an_upload_on_the_new_facts_makes_its_answers_used_again(client, auth_headers, transaction, cleared):
    transaction["parties"].append(dict(CONSIGNEE))
    transaction["deployment_countries"].append("TR")
    moved = screen(client, auth_headers, transaction)
    assert "checklist_completed" in moved["conditions"]
    rechecked = _upload(client, auth_headers, moved["id"], CLEARED)
    assert "checklist_completed" not in rechecked["conditions"]
    transaction["stage"] = "order"
    order = screen(client, auth_headers, transaction)
    assert "checklist_completed" not in order["conditions"]
    for qid in ("past_misuse", "exports_to_abusers", "accepts_safeguards"):
        note = order["answers_on_record"][qid]
        assert note["used"] is True and "not_used_because" not in note, qid
        assert note["source"] == f"checklist upload {rechecked['checklist_upload']['id']}"
    # Back on the first facts, the newest upload (made on other facts) is not used for them either.
    transaction["parties"].pop()
    transaction["deployment_countries"].remove("TR")
    back = screen(client, auth_headers, transaction)
    assert "checklist_completed" in back["conditions"]
    assert back["answers_on_record"]["past_misuse"]["source"] == f"checklist upload {rechecked['checklist_upload']['id']}"


def test_an_upload_leaving_a_question_blank_on_new_facts_does_not_revive_the_old_answer(
        client, auth_headers, transaction, cleared):
    transaction["parties"].append(dict(CONSIGNEE))
    moved = screen(client, auth_headers, transaction)
    # Answered again except past_misuse, which the compliance officer sets back to Unknown.
    rechecked = _upload(client, auth_headers, moved["id"], {**CLEARED, "past_misuse": "Unknown"})
    assert "checklist_completed" in rechecked["conditions"]
    note = rechecked["answers_on_record"]["past_misuse"]
    assert note["used"] is False and note["source"] == f"checklist upload {cleared['checklist_upload']['id']}"
    assert "exports_to_abusers" not in rechecked.get("answers_on_record", {})


ENGINE_FLAGS = {"past_misuse": "RF-1.1", "exports_to_abusers": "RF-2.2", "end_user_disclosed": "RF-4.1",
                "accepts_safeguards": "RF-6.1"}


@pytest.mark.parametrize("qid", ENGINE_QUESTIONS)
def test_the_engines_risky_answers_are_the_ones_that_raise_its_flags(engine_services, transaction, qid):
    from hrdd.checklists.on_record import ENGINE_RISKY_ANSWERS, risky_answers
    from hrdd.checklists.templates import load_templates
    from hrdd.model import Transaction

    for answer in ("yes", "no", "n/a"):
        screening = engine_services.screen(Transaction.from_dict({**transaction, "answers": {qid: answer}}))
        raised = ENGINE_FLAGS[qid] in [f.id for f in screening.red_flags]
        assert raised == (answer in ENGINE_RISKY_ANSWERS[qid]), (qid, answer)
    # The shipped templates mark the same answers as risky.
    from hrdd.checklists.service import checklists_dir
    assert risky_answers(load_templates(checklists_dir()))[qid] == ENGINE_RISKY_ANSWERS[qid]


def test_an_answer_not_used_on_changed_facts_is_not_screened_and_holds_nothing():
    from hrdd.checklists.on_record import conflict_holds
    from hrdd.recorded_answers import lay_under

    stale = {"answer": "no", "source": "checklist upload chk_1", "facts_changed": ["parties"],
             "not_used_because": "the deal's parties changed since checklist upload chk_1 of 2026-01-02: ..."}
    fresh = {"answer": "yes", "source": "checklist upload chk_1"}
    recorded = {"past_misuse": stale, "exports_to_abusers": stale, "accepts_safeguards": stale,
                "end_user_disclosed": stale, "intermediaries_vetted": fresh}
    answers, notes = lay_under({"past_misuse": "unknown", "exports_to_abusers": "yes", "accepts_safeguards": "no"},
                               recorded)
    assert answers == {"past_misuse": "unknown", "exports_to_abusers": "yes", "accepts_safeguards": "no",
                       "intermediaries_vetted": "yes"}
    # Noted where the answer would have been used or conflicted; the request's own equal answer needs no note.
    assert set(notes) == {"past_misuse", "exports_to_abusers", "end_user_disclosed", "intermediaries_vetted"}
    assert all(notes[q] == {**stale, "used": False} for q in ("past_misuse", "exports_to_abusers", "end_user_disclosed"))
    assert conflict_holds({"answers_on_record": notes}) == []
    # An upload's own answer wins over a stale one without a note, as over a current one.
    _, notes = lay_under({"exports_to_abusers": "yes"}, {"exports_to_abusers": {**stale, "request_wins": True}})
    assert notes == {}


def test_answers_on_changed_facts_are_read_the_same_under_the_lock(app, client, auth_headers, transaction, cleared,
                                                                   monkeypatch):
    services = app.extensions["hrdd"]
    engine_screen, screened = services.screen, []
    monkeypatch.setattr(services, "screen", lambda t: screened.append(t) or engine_screen(t))
    transaction["parties"].append(dict(CONSIGNEE))
    moved = screen(client, auth_headers, transaction)
    assert moved["answers_on_record"]["past_misuse"]["used"] is False
    # Screened without, then with the answers read under the lock; read again there, they compare equal.
    assert len(screened) == 2


def test_the_case_page_says_why_an_answer_on_record_was_not_used(app, client, auth_headers, transaction, cleared):
    from tests.workspace_helpers import case_of, login, make_user

    transaction["parties"].append(dict(CONSIGNEE))
    del transaction["answers"]["end_user_disclosed"]
    moved = screen(client, auth_headers, transaction)
    make_user(app)
    login(client)
    page = client.get(f"/workspace/cases/{case_of(app, moved['transaction_id'])['id']}").get_data(as_text=True)
    upload_id = cleared["checklist_upload"]["id"]
    # In the request as unknown, and left out of it.
    assert (f"<code>past_misuse</code>: unknown <span class=\"muted\">(the request's answer; checklist upload "
            f"{upload_id} answered no, not used: the deal&#39;s parties and countries changed since") in page
    assert (f"<li><code>end_user_disclosed</code>: yes <span class=\"muted\">(checklist upload {upload_id}; not used: "
            "the deal&#39;s parties and countries changed since") in page
    assert "not known to the request" not in page


# ---------------------------------------------------------------- withdrawn answers wait for a reviewer

def _cases(client, auth_headers, transaction_id: str) -> list[dict]:
    listed = client.get("/v1/cases?status=all", headers=auth_headers("reviewer")).get_json()["cases"]
    return [c for c in listed if c["transaction_id"] == transaction_id]


@pytest.mark.parametrize("withdrawn_to", ["No", "Unknown"])
def test_an_upload_withdrawing_a_critical_answer_holds_until_a_reviewer_confirms(
        app, client, auth_headers, transaction, withdrawn_to):
    # The CRM says past misuse: RF-1.1 (critical), do_not_proceed, a case opens. Export control alone then
    # uploads the checklist with No (or Unknown): recorded, but the gate holds for a human rights reviewer.
    transaction["answers"]["past_misuse"] = "yes"
    quote = screen(client, auth_headers, transaction)
    assert (quote["decision"], quote["gate"]) == ("do_not_proceed", "block")
    [case] = _cases(client, auth_headers, quote["transaction_id"])
    response = upload(client, auth_headers, quote["id"],
                      fill(download(client, auth_headers, quote["id"]), {"past_misuse": withdrawn_to}), XLSX)
    assert response.status_code == 201, response.get_json()
    uploaded = response.get_json()
    upload_id = uploaded["checklist_upload"]["id"]
    assert uploaded["transaction"]["answers"]["past_misuse"] == withdrawn_to.lower()  # the answer is recorded
    assert "RF-1.1" not in [f["id"] for f in uploaded["red_flags"]] and uploaded["engine_gate"] != "block"
    assert uploaded["gate"] == "hold"
    [reason] = [r for r in uploaded["hold_reasons"] if upload_id in r]
    assert f"changed past_misuse from Yes to {withdrawn_to}, which had raised RF-1.1 (critical)" in reason
    assert "a human rights reviewer must confirm the changed answer" in reason and case["id"] in reason
    assert uploaded["checklist_upload"]["withdrawn"] == [{"question": "past_misuse", "from": "yes",
                                                          "to": withdrawn_to.lower(),
                                                          "flags": [{"id": "RF-1.1", "severity": "critical"}]}]
    # The case stays open, with the withdrawal noted on it.
    [still] = _cases(client, auth_headers, quote["transaction_id"])
    assert still["id"] == case["id"] and still["status"] == "open"
    notes = client.get(f"/v1/cases/{case['id']}", headers=auth_headers("reviewer")).get_json()["notes"]
    assert any(upload_id in n["text"] and "must confirm the changed answer" in n["text"] for n in notes)
    # The CRM's next call (its own field still "unknown") is held the same way.
    transaction["answers"]["past_misuse"] = "unknown"
    assert screen(client, auth_headers, transaction)["gate"] == "hold"
    assert screen(client, auth_headers, transaction, "?dry_run=true")["gate"] == "hold"
    # A reviewer's decision after the upload confirms it: the hold goes, the decision governs.
    decided = client.post(f"/v1/cases/{case['id']}/decision", headers=auth_headers("reviewer"),
                          json={"decision": "approve", "rationale": "Reports checked: no misuse by this unit."})
    assert decided.status_code == 201, decided.get_json()
    txn = client.get(f"/v1/transactions/{quote['transaction_id']}", headers=auth_headers("crm")).get_json()
    assert txn["gate"] == "release" and not any(upload_id in r for r in txn["hold_reasons"])


def test_a_withdrawn_answer_reopens_a_decided_deal_for_review(client, auth_headers, transaction):
    transaction["answers"]["past_misuse"] = "yes"
    quote = screen(client, auth_headers, transaction)
    [case] = _cases(client, auth_headers, quote["transaction_id"])
    assert client.post(f"/v1/cases/{case['id']}/decision", headers=auth_headers("reviewer"),
                       json={"decision": "decline", "rationale": "Documented misuse by this directorate."}
                       ).status_code == 201
    response = upload(client, auth_headers, quote["id"],
                      fill(download(client, auth_headers, quote["id"]), {"past_misuse": "No"}), XLSX)
    uploaded = response.get_json()
    # The decline still stands (the flags only fell); the withdrawal opened a new case for a reviewer.
    assert uploaded["gate"] == "block"
    opened = [c for c in _cases(client, auth_headers, quote["transaction_id"]) if c["status"] == "open"]
    assert len(opened) == 1 and opened[0]["id"] != case["id"]
    assert uploaded["checklist_upload"]["id"] in opened[0]["reason"]


def test_which_severities_need_a_reviewer_is_policy(app_config, tmp_path, request, transaction):
    from hrdd.config import PROJECT_ROOT
    original = (PROJECT_ROOT / "policy" / "default.yaml").read_text(encoding="utf-8")
    assert "confirm_withdrawn_severities: [critical, high]" in original
    policy = tmp_path / "policy.yaml"
    policy.write_text(original.replace("confirm_withdrawn_severities: [critical, high]",
                                       "confirm_withdrawn_severities: [high]"), encoding="utf-8")
    app_config["HRDD_POLICY_FILE"] = str(policy)
    client, headers = request.getfixturevalue("client"), request.getfixturevalue("auth_headers")
    transaction["answers"]["past_misuse"] = "yes"
    quote = screen(client, headers, transaction)
    response = upload(client, headers, quote["id"],
                      fill(download(client, headers, quote["id"]), {"past_misuse": "No"}), XLSX)
    uploaded = response.get_json()
    assert uploaded["checklist_upload"]["withdrawn"] == [] and uploaded["gate"] == uploaded["engine_gate"]


def test_a_due_date_stored_as_words_before_the_check_is_not_carried_as_text(app, client, auth_headers, transaction):
    # Uploads stored before due dates were checked may hold "next week": the next workbook's date cell
    # must not get it as text (its owner and status still come along).
    import sqlalchemy as sa
    from openpyxl import load_workbook

    from hrdd.checklists.evidence import checklist_uploads
    from tests.test_checklists import question_rows
    quote = screen(client, auth_headers, transaction)

    def owner(wb):
        ws = wb["Questions"]
        ws.cell(row=question_rows(ws)["past_misuse"], column=10).value = "Dana"
    filled = fill(download(client, auth_headers, quote["id"]), {"exports_to_abusers": "No"}, owner)
    uploaded = upload(client, auth_headers, quote["id"], filled, XLSX).get_json()
    store = app.extensions["hrdd"].store
    with store.begin() as conn:
        row = conn.execute(sa.select(checklist_uploads.c.record)).scalar_one()
        row["responses"]["past_misuse"]["due_date"] = "next week"
        conn.execute(checklist_uploads.update().values(record=row))
    ws = load_workbook(io.BytesIO(download(client, auth_headers, uploaded["id"])))["Questions"]
    at = question_rows(ws)["past_misuse"]
    assert ws.cell(row=at, column=10).value == "Dana"
    assert ws.cell(row=at, column=11).value is None
