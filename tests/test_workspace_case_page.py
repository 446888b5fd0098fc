"""The case page: what the case opened with beside the deal now, tailoring options, checklist uploads, layout."""

from __future__ import annotations

import html
import re

import pytest

from tests.test_checklists import download, fill, party_notes, question_rows, upload
from tests.workspace_helpers import case_of, fixture, login, make_user, screen

pytestmark = pytest.mark.store


def _text(page: str) -> str:
    """The page's text without tags, unescaped, spaces collapsed (what a reader sees)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _case_page(app, client, transaction_id: str) -> str:
    make_user(app)
    login(client)
    response = client.get(f"/workspace/cases/{case_of(app, transaction_id)['id']}")
    assert response.status_code == 200
    return _text(response.get_data(as_text=True))


def test_the_header_says_what_the_case_opened_with_and_the_engines_decision_now(app, client, auth_headers):
    crm = auth_headers("crm")
    quote = screen(client, crm, fixture("transaction_egypt_biometric.json"))
    order = screen(client, crm, fixture("transaction_egypt_biometric.json"), stage="order",
                   answers={"past_misuse": "yes", "end_user_disclosed": "yes"})
    assert (quote["decision"], order["decision"]) == ("escalate", "do_not_proceed")
    page = _case_page(app, client, quote["transaction_id"])
    assert f"At opening ({case_of(app, quote['transaction_id'])['opened_at'][:10]}, quote screening {quote['id']}): " \
           "Engine decision escalate" in page
    assert f"Engine decision now do not proceed (order screening {order['id']}" in page


def test_step_5_lists_the_tailoring_options_and_says_none_changes_the_decision(app, client, auth_headers):
    quote = screen(client, auth_headers("crm"), fixture("transaction_egypt_biometric.json"))
    assert [(o["remove_capability"], o["decision_without"]) for o in quote["tailoring"]] == [
        ("biometric_identification", "escalate")]
    page = _case_page(app, client, quote["transaction_id"])
    assert "no option changes the decision (1 option, each still escalate)" in page
    assert "Without biometric identification on FR-200: escalate (no change)" in page
    assert "no options" not in page


def _notes(notes: dict[str, str]):
    """A sheet edit typing evidence notes into the Questions sheet, by question id."""
    def edit(wb):
        ws = wb["Questions"]
        for qid, row in question_rows(ws).items():
            if qid in notes:
                ws.cell(row=row, column=7).value = notes[qid]
    return edit


def test_the_case_page_shows_who_gave_the_checklist_answers_their_notes_and_the_parties_review_notes(
        app, client, auth_headers):
    quote = screen(client, auth_headers("crm"), fixture("transaction_egypt_biometric.json"))

    def edits(wb):
        _notes({"past_misuse": "Checked Amnesty and UN reports 2019-2025; none name the Directorate."})(wb)
        party_notes({"Nile Integrated Systems": "Distributor vetted: ownership letter on file 42"})(wb)

    filled = fill(download(client, auth_headers, quote["id"]), {"past_misuse": "No"}, edits)
    uploaded = upload(client, auth_headers, quote["id"], filled)
    assert uploaded.status_code == 201, uploaded.get_json()
    upload_id = uploaded.get_json()["checklist_upload"]["id"]
    page = _case_page(app, client, quote["transaction_id"])
    assert re.search(rf"past_misuse : no \(from checklist upload {upload_id} ?, \d{{4}}-\d\d-\d\d \d\d:\d\d UTC, "
                     r"by test-export\)", page), page[page.index("Answers"):][:600]
    section = page[page.rindex("Checklist uploads (1)"):]  # the heading, after the contents link
    assert f"{upload_id} ·" in section and "by test-export" in section
    assert "past_misuse no Checked Amnesty and UN reports 2019-2025; none name the Directorate." in section
    assert "Parties review notes Nile Integrated Systems (distributor, AE; no match) : " \
           "Distributor vetted: ownership letter on file 42" in section
