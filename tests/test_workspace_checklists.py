"""The workspace's checklist page: export-control staff find a deal, download and upload checklists without the API."""

from __future__ import annotations

import html as markup
import io
import re

import pytest

from tests.test_checklists import XLSX, counts, fill
from tests.workspace_helpers import csrf_from, fixture, login, make_user, screen

PAGE = "/workspace/checklists/"


@pytest.fixture
def app_config(app_config):
    app_config["HRDD_SESSION_COOKIE_SECURE"] = "0"
    return app_config


@pytest.fixture
def deal(client, auth_headers):
    """The DESIGN example deal, screened at quote stage (escalate, hold)."""
    return screen(client, auth_headers("crm"), fixture("transaction_egypt_biometric.json"))


@pytest.fixture
def exporter(app, client):
    """A signed-in export-control user."""
    make_user(app, "erin", role="export")
    assert login(client, "erin").status_code == 302
    return client


def _download(client, screening_id: str) -> bytes:
    response = client.get(f"/workspace/checklists/{screening_id}.xlsx")
    assert response.status_code == 200 and response.mimetype == XLSX, response.status_code
    return response.data


def _upload(client, data: bytes, name: str = "checklist.xlsx", token: str | None = None):
    token = csrf_from(client, PAGE) if token is None else token
    return client.post("/workspace/checklists/upload", content_type="multipart/form-data",
                       data={"csrf_token": token, "file": (io.BytesIO(data), name)})


def _text(response) -> str:
    return markup.unescape(re.sub(r"\s+", " ", response.get_data(as_text=True)))


def test_an_export_user_signs_in_to_the_checklist_page_and_sees_only_its_pages(app, client, deal):
    make_user(app, "erin", role="export")
    signed_in = login(client, "erin")
    assert signed_in.status_code == 302 and signed_in.headers["Location"].endswith(PAGE)
    page = client.get(PAGE)
    assert page.status_code == 200
    html = _text(page)
    assert 'name="file" type="file"' in html and 'enctype="multipart/form-data"' in html
    nav = html.split('aria-label="Workspace"')[1].split("</nav>")[0]
    assert "Checklists" in nav and not any(w in nav for w in ("Cases", "Dashboard", "Grievances", "Transparency"))
    # The workspace's index (the case queue) sends them to their page; every reviewer page refuses them.
    index = client.get("/workspace/")
    assert index.status_code == 302 and index.headers["Location"].endswith(PAGE)
    from tests.workspace_helpers import case_of
    case = case_of(app, deal["transaction_id"])
    for path in (f"/workspace/cases/{case['id']}", "/workspace/dashboard", "/workspace/grievances/",
                 "/workspace/reports/transparency", f"/workspace/screenings/{deal['id']}/rider"):
        assert client.get(path).status_code == 403, path
    assert client.post(f"/workspace/cases/{case['id']}/note",
                       data={"csrf_token": csrf_from(client, PAGE), "text": "hi"}).status_code == 403


def test_the_deal_is_found_by_screening_id_and_by_its_crm_reference(exporter, deal):
    by_id = exporter.get(PAGE, query_string={"q": deal["id"]})
    by_reference = exporter.get(PAGE, query_string={"q": "0067F000003pmdW"})
    for response in (by_id, by_reference):
        html = _text(response)
        assert response.status_code == 200
        assert f'<span id="deal-screening">{deal["id"]}</span>' in html
        assert "Directorate of Public Security" in html and "quote stage" in html
        assert "escalate" in html and 'data-gate="hold"' in html
        assert "No checklist has been uploaded" in html
        assert f'/workspace/checklists/{deal["id"]}.xlsx' in html
    missing = exporter.get(PAGE, query_string={"q": "no-such-deal"})
    assert missing.status_code == 404 and "No deal found for “no-such-deal”" in _text(missing)


def test_a_reference_id_in_two_systems_lists_both_deals(exporter, client, auth_headers, deal):
    body = fixture("transaction_egypt_biometric.json")
    body["reference"] = {**body["reference"], "system": "hubspot", "object_type": "deal"}
    other = screen(client, auth_headers("crm"), body)
    html = _text(exporter.get(PAGE, query_string={"q": "0067F000003pmdW"}))
    assert "2 deals have the reference id" in html
    assert f"q={deal['transaction_id']}" in html and f"q={other['transaction_id']}" in html


def test_upload_a_filled_checklist_and_see_the_new_decision(app, exporter, deal):
    data = _download(exporter, deal["id"])
    filled = fill(data, {"past_misuse": "Yes", "review_date": "2027-03-31"})
    response = _upload(exporter, filled, "egypt.xlsx")
    html = _text(response)
    assert response.status_code == 200, html
    assert "Checklist recorded" in html and "(egypt.xlsx)" in html
    new = re.search(r'<strong id="new-screening">([^<]+)</strong>', html).group(1)
    assert new != deal["id"]
    assert 'id="result-decision">do not proceed<' in html and 'data-gate="block"' in html
    answered = dict(re.findall(r"<tr><td><code>(\w+)</code>.*?</td><td>(.*?)</td><td>(?:.*?)</td></tr>", html))
    assert answered == {"past_misuse": "<strong>Yes</strong>", "end_user_disclosed": "Yes"}
    assert "<td>Unknown</td>" in html and "<td>Yes <span class=\"muted\">(unchanged)</span></td>" in html
    from hrdd.checklists.evidence import uploads_of
    store = app.extensions["hrdd"].store
    [row] = uploads_of(store, deal["id"])
    assert row["new_screening_id"] == new and row["uploaded_by"] == "erin"
    assert store.latest_screening(deal["transaction_id"])["decision"] == "do_not_proceed"
    from hrdd import audit
    with store.engine.connect() as conn:
        [entry] = [e for e in audit.entries(conn, subject=row["id"]) if e["action"] == "checklist.upload"]
    assert entry["actor"] == "user:erin"
    # The deal's page lists the upload, and its checklist is now the new screening's.
    page = _text(exporter.get(PAGE, query_string={"q": deal["id"]}))
    assert row["id"] in page and f'<span id="deal-screening">{new}</span>' in page
    assert f"Screening {deal['id']} has been superseded by screening {new}" in page


def test_an_answer_withdrawn_that_raised_a_critical_flag_is_said_to_go_to_a_reviewer(exporter, deal):
    first = _text(_upload(exporter, fill(_download(exporter, deal["id"]), {"past_misuse": "Yes"})))
    blocked = re.search(r'<strong id="new-screening">([^<]+)</strong>', first).group(1)
    response = _upload(exporter, fill(_download(exporter, blocked), {"past_misuse": "No"}))
    html = _text(response)
    assert response.status_code == 200 and "Sent to a human rights reviewer" in html
    assert "<code>past_misuse</code>: Yes → No (had raised RF-1.1 (critical))" in html
    assert 'data-gate="hold"' in html


def test_the_same_workbook_again_is_a_replay_not_a_second_screening(app, exporter, deal):
    filled = fill(_download(exporter, deal["id"]), {"past_misuse": "No"})
    assert _upload(exporter, filled).status_code == 200
    before = counts(app)
    again = _upload(exporter, filled)
    html = _text(again)
    assert again.status_code == 200 and "Already recorded" in html and "no second screening was made" in html
    assert counts(app) == before


def test_a_refused_upload_lists_every_bad_cell_and_keeps_the_form(app, exporter, deal):
    data = _download(exporter, deal["id"])
    before = counts(app)
    bad = fill(data, {"past_misuse": "Maybe", "accepts_safeguards": "Perhaps"})
    response = _upload(exporter, bad)
    html = _text(response)
    assert response.status_code == 422 and "Not recorded" in html
    cells = re.findall(r"<tr><td>(Questions![A-Z]+\d+)</td><td>answer (\w+)</td><td>([^<]+)</td></tr>", html)
    assert {(c[1]) for c in cells} == {"past_misuse", "accepts_safeguards"}
    assert any("'Maybe' is not one of Yes, No, Unknown, N/A" in c[2] for c in cells)
    assert 'name="file" type="file"' in html and "Nothing was stored" in html
    assert counts(app) == before


def test_a_superseded_screenings_workbook_says_which_checklist_to_use(client, auth_headers, exporter, deal):
    old = _download(exporter, deal["id"])
    newest = screen(client, auth_headers("crm"), fixture("transaction_egypt_biometric.json"), stage="order")
    response = _upload(exporter, fill(old, {"past_misuse": "No"}))
    html = _text(response)
    assert response.status_code == 409
    # The API's own words, and a link to the checklist to fill in instead.
    assert f"has been superseded by screening '{newest['id']}'" in html
    assert f'href="/workspace/checklists/{newest["id"]}.xlsx"' in html
    assert f"is the checklist of screening {deal['id']} (quote stage) of deal 0067F000003pmdW" in html


def test_files_that_are_no_checklist_are_named(exporter, deal):
    empty = _upload(exporter, b"", name="")
    assert empty.status_code == 422 and "Choose the filled-in checklist workbook" in _text(empty)
    pdf = _upload(exporter, b"%PDF-1.7 printed", name="checklist.pdf")
    assert pdf.status_code == 415 and "This is a PDF" in _text(pdf)


def test_a_file_over_the_limit_gets_a_page_naming_the_limit(app_config):
    from server import create_app
    application = create_app({**app_config, "HRDD_CHECKLIST_MAX_UPLOAD": 4000})
    client = application.test_client()
    try:
        make_user(application, "erin", role="export")
        login(client, "erin")
        huge = _upload(client, b"PK\x03\x04" + b"x" * 200_000)
        assert huge.status_code == 413 and "limit of 4,000 bytes" in _text(huge)
        assert 'name="file" type="file"' in _text(huge)
        over = _upload(client, b"PK\x03\x04" + b"x" * 5000)  # within the form's framing allowance
        assert over.status_code == 413 and "the limit is 4000 bytes" in _text(over)
    finally:
        application.extensions["hrdd"].store.engine.dispose()


def test_a_reviewer_may_download_but_not_upload(app, client, deal):
    make_user(app, "rita", role="reviewer")
    login(client, "rita")
    page = _text(client.get(PAGE, query_string={"q": deal["id"]}))
    assert 'type="file"' not in page and "Uploading a filled-in checklist is for export-control staff" in page
    data = _download(client, deal["id"])
    before = counts(app)
    assert _upload(client, fill(data, {"past_misuse": "No"})).status_code == 403
    assert counts(app) == before


def test_an_upload_needs_the_csrf_token(app, exporter, deal):
    filled = fill(_download(exporter, deal["id"]), {"past_misuse": "No"})
    before = counts(app)
    for token in ("", "forged"):
        assert _upload(exporter, filled, token=token).status_code == 400
    assert counts(app) == before


def test_an_unknown_template_is_named_and_another_template_downloads(exporter, deal):
    wrong = exporter.get(f"/workspace/checklists/{deal['id']}.xlsx", query_string={"template": "nope"})
    assert wrong.status_code == 422 and "Cannot download" in _text(wrong)
    assert "unknown checklist template 'nope'" in _text(wrong) and "Nothing was stored" not in _text(wrong)
    eu = exporter.get(f"/workspace/checklists/{deal['id']}.xlsx", query_string={"template": "eu-2021-821-art5"})
    assert eu.status_code == 200 and "eu-2021-821-art5" in eu.headers["Content-Disposition"]


def test_the_case_page_links_to_its_deals_checklist_page(app, client, deal):
    from tests.workspace_helpers import case_of
    make_user(app)
    login(client)
    case = case_of(app, deal["transaction_id"])
    html = _text(client.get(f"/workspace/cases/{case['id']}"))
    assert f'href="/workspace/checklists/?q={deal["transaction_id"]}" id="checklist-page"' in html
    nav = html.split('aria-label="Workspace"')[1].split("</nav>")[0]
    assert all(w in nav for w in ("Cases", "Checklists", "Dashboard", "Grievances"))


def test_hrdd_users_create_makes_an_export_user_who_signs_in_to_the_checklists(app, client, database_url):
    import os
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", "from hrdd.cli import main; main()", "users", "create", "erin",
                           "--role", "export", "--password-stdin"], input="a long enough passphrase 42\n",
                          capture_output=True, text=True, env={**os.environ, "HRDD_DATABASE_URL": database_url},
                          timeout=120)
    assert done.returncode == 0 and "Created export erin." in done.stdout, done.stderr
    signed_in = login(client, "erin", "a long enough passphrase 42")
    assert signed_in.status_code == 302 and signed_in.headers["Location"].endswith(PAGE)


def test_a_form_part_without_a_name_is_not_a_server_error(app, exporter, deal):
    # Found by schemathesis: a hand-made multipart body whose part has no name (no form key) was a 500.
    import re as _re
    page = exporter.get("/workspace/checklists/", query_string={"q": deal["id"]}).get_data(as_text=True)
    token = _re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    boundary = "b0undary"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{token}\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data\r\n\r\nstray\r\n--{boundary}--\r\n").encode()
    before = counts(app)
    r = exporter.post("/workspace/checklists/upload", data=body,
                      content_type=f"multipart/form-data; boundary={boundary}")
    assert r.status_code < 500 and r.status_code != 201
    assert counts(app) == before
