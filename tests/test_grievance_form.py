"""The public grievance form and API: any script within the advertised limits, any country text, plain labels."""

from __future__ import annotations

import html
import re

import pytest
import sqlalchemy as sa

from hrdd.workspace.tables import grievances as grievances_table
from tests.test_grievances import REPORT
from tests.workspace_helpers import csrf_from


@pytest.fixture
def app_config(app_config):
    return {**app_config, "HRDD_GRIEVANCE_RATE_LIMIT": "100 per minute"}


def _stored(app) -> list:
    with app.extensions["hrdd"].store.engine.connect() as conn:
        return conn.execute(sa.select(grievances_table).order_by(grievances_table.c.received_at)).all()


def _post_form(client, **changes):
    token = csrf_from(client, "/grievances/")
    return client.post("/grievances/", data={"csrf_token": token, **REPORT, **changes})


@pytest.mark.parametrize("description", ["监控摄像头被用来识别抗议者。" * 280 + "他们被拘留", "😀" * 9_990 + "抗议者被拘留了。" + "x"])
def test_the_form_takes_the_advertised_characters_in_any_script(app, client, description):
    description = description[:10_000]
    r = _post_form(client, description=description, subject_name="公安部" * 100, location="开罗" * 150)
    assert r.status_code == 201, r.get_data(as_text=True)[:500]
    assert _stored(app)[-1].description == description


def test_the_form_counts_a_line_break_as_one_character(app, client):
    description = ("Cameras identified protesters.\r\n" * 400)[:10_000]
    assert _post_form(client, description=description).status_code == 201
    assert _stored(app)[-1].description == description.replace("\r\n", "\n").strip()


def test_the_form_says_how_long_each_field_may_be(client):
    page = client.get("/grievances/").get_data(as_text=True)
    assert 'maxlength="10000"' in page and 'maxlength="300"' in page and "10,000 characters" in page


def test_a_report_over_the_size_limit_is_told_the_character_limits(client):
    r = _post_form(client, description="监" * 20_000)
    page = r.get_data(as_text=True)
    assert r.status_code == 413 and "What happened" in page and "10,000 characters" in page
    assert "Back" in page
    api = client.post("/v1/grievances", json={**REPORT, "description": "x" * 200_000})
    assert api.status_code == 413 and "10,000 characters" in api.get_json()["message"]


def test_the_api_takes_the_advertised_characters_escaped(app, client):
    description = "😀" * 10_000
    body = '{"subject_name": "X", "description": "%s"}' % ("\\ud83d\\ude00" * 10_000)
    r = client.post("/v1/grievances", data=body, content_type="application/json")
    assert r.status_code == 201, r.get_json()
    assert _stored(app)[-1].description == description


@pytest.mark.parametrize("written, code", [
    ("مصر", "EG"), ("Égypte", "EG"), ("Ägypten", "EG"), ("中国", "CN"), ("Egypt", "EG"), ("eg", "EG"),
    ("Россия", None), ("Crimea", None), ("Tibet", None), ("Gaza", None), ("Cairo", None), ("unknown", None),
    ("I don't know", None)])
def test_any_country_text_is_accepted_and_kept_as_written(app, client, written, code):
    r = _post_form(client, country=written)
    assert r.status_code == 201, r.get_data(as_text=True)[:300]
    row = _stored(app)[-1]
    assert row.country_text == written and row.country == code
    api = client.post("/v1/grievances", json={**REPORT, "country": written})
    assert api.status_code == 201 and _stored(app)[-1].country == code


def test_the_officer_sees_the_reporters_country_and_sets_the_code(app, client, auth_headers):
    from tests.workspace_helpers import login, make_user
    gid = client.post("/v1/grievances", json={**REPORT, "country": "Crimea"}).get_json()["reference"]
    make_user(app)
    login(client)
    assert "“Crimea”" in client.get("/workspace/grievances/").get_data(as_text=True)
    page = client.get(f"/workspace/grievances/{gid}").get_data(as_text=True)
    assert "“Crimea”" in page and 'name="country"' in page
    reviewer = auth_headers("reviewer")
    refused = client.post(f"/v1/grievances/{gid}/triage", headers=reviewer, json={"country": "Crimea"})
    assert refused.status_code == 422 and "two-letter ISO code" in refused.get_json()["errors"]["country"][0]
    done = client.post(f"/v1/grievances/{gid}/triage", headers=reviewer, json={"country": "UA"}).get_json()
    assert done["country"] == "UA" and done["country_text"] == "Crimea" and done["status"] == "received"


def test_form_errors_use_the_labels_the_reporter_sees(client):
    r = _post_form(client, subject_name="", description="too short", location="x" * 301)
    page = r.get_data(as_text=True)
    assert r.status_code == 422
    assert ">Who used the product</a> is required" in page
    assert ">What happened</a> needs at least 20 characters" in page
    assert ">Place</a> is longer than 300 characters (it has 301)" in page
    assert "subject name" not in page.lower() and "description please" not in page


def test_a_screen_reader_hears_each_fields_error_at_the_field(client):
    """Tabbing to a field marked invalid, a screen reader reads why, not only "invalid"."""
    page = _post_form(client, subject_name="", description="too short").get_data(as_text=True)
    field = re.search(r'<textarea id="description"[^>]*>', page).group(0)
    assert 'aria-invalid="true"' in field and 'aria-describedby="description-hint description-error"' in field
    assert re.search(r'<span class="field-error" id="description-error">What happened needs at least 20 characters',
                     page)
    subject = re.search(r'<input id="subject_name"[^>]*>', page).group(0)
    assert "subject_name-error" in subject
    assert "location-error" not in page


def _form_fields(page: str) -> dict:
    """The hidden fields of the report form on ``page`` (the CSRF token)."""
    return dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', page))


def test_a_report_sent_twice_from_one_form_is_stored_once_with_the_same_token(app, client):
    """A reporter on a slow connection presses Send again, or goes Back and sends it again: one report, and
    the token they are shown works."""
    hidden = _form_fields(client.get("/grievances/").get_data(as_text=True))
    first = client.post("/grievances/", data={**hidden, **REPORT})
    again = client.post("/grievances/", data={**hidden, **REPORT})
    assert first.status_code == 201 and again.status_code == 200
    token = re.search(r'value="(trk_[^"]+)"', again.get_data(as_text=True)).group(1)
    assert token == re.search(r'value="(trk_[^"]+)"', first.get_data(as_text=True)).group(1)
    assert "already received" in again.get_data(as_text=True)
    back = client.post("/grievances/", data={**_form_fields(client.get("/grievances/").get_data(as_text=True)),
                                             **REPORT})
    assert back.status_code == 200 and token in back.get_data(as_text=True)
    assert len(_stored(app)) == 1
    status = client.post("/grievances/status", data={"csrf_token": hidden["csrf_token"], "token": token})
    assert status.status_code == 200
    # Back to the same page, another report written over it: a report of its own, with its own token.
    other = client.post("/grievances/", data={**hidden, **REPORT, "subject_name": "Border police"})
    assert other.status_code == 201 and len(_stored(app)) == 2
    assert token not in other.get_data(as_text=True)


def test_a_double_clicks_two_requests_racing_store_one_report_and_both_show_its_token(app, client, monkeypatch):
    """The second request looks before the first commits, misses it, and loses the race to insert."""
    from hrdd.workspace import grievances
    hidden = _form_fields(client.get("/grievances/").get_data(as_text=True))
    first = client.post("/grievances/", data={**hidden, **REPORT})
    looked = grievances.stored_receipt
    misses = iter([True])
    monkeypatch.setattr(grievances, "stored_receipt", lambda conn, token: None if next(misses, False)
                        else looked(conn, token))
    second = client.post("/grievances/", data={**hidden, **REPORT})
    assert second.status_code == 200 and "already received" in second.get_data(as_text=True)
    token = re.search(r'value="(trk_[^"]+)"', first.get_data(as_text=True)).group(1)
    assert token in second.get_data(as_text=True) and len(_stored(app)) == 1


def test_a_report_sent_after_the_page_expired_comes_back_filled_in(app, client):
    """The browser lost its session (hours offline, cookies cleared): nothing is stored, nothing typed is lost."""
    page = client.get("/grievances/").get_data(as_text=True)
    hidden = _form_fields(page)
    client.delete_cookie("hrdd_session")
    description = "Journalists were followed after their phones were located.\nTwo were detained."
    r = client.post("/grievances/", data={**hidden, **REPORT, "description": description, "reporter_name": "Thảo"},
                    headers={"Origin": "http://localhost"})
    text = r.get_data(as_text=True)
    assert r.status_code == 400 and not _stored(app)
    assert "not sent" in text and "Thảo" in text
    assert description in html.unescape(text)
    resent = _form_fields(text)
    assert resent["csrf_token"] != hidden["csrf_token"]
    done = client.post("/grievances/", data={**resent, **REPORT, "description": description})
    assert done.status_code == 201 and len(_stored(app)) == 1
    # From another site's page: nothing offered back (no report made for someone in their name).
    client.delete_cookie("hrdd_session")
    forged = client.post("/grievances/", data={**hidden, **REPORT}, headers={"Origin": "https://evil.example"})
    assert forged.status_code == 400 and REPORT["description"] not in forged.get_data(as_text=True)


def test_a_reporter_adds_information_with_the_token_and_the_officer_reads_it(app, client, auth_headers):
    """No attachments: the reporter describes the evidence and adds to the report later, anonymous throughout."""
    page = client.get("/grievances/").get_data(as_text=True)
    assert "cannot attach files" in page
    hidden = _form_fields(page)
    sent = client.post("/grievances/", data={**hidden, **REPORT}).get_data(as_text=True)
    assert "add information" in sent
    token = re.search(r'value="(trk_[^"]+)"', sent).group(1)
    shown = client.post("/grievances/status", data={"csrf_token": hidden["csrf_token"], "token": token})
    assert 'name="information"' in shown.get_data(as_text=True)
    added = "Ảnh chụp màn hình của tin nhắn: the officer in charge was named in a leaked memo (link kept offline)."
    r = client.post("/grievances/status/information",
                    data={"csrf_token": hidden["csrf_token"], "token": token, "information": added})
    assert r.status_code == 201 and "was added to your report" in r.get_data(as_text=True)
    empty = client.post("/grievances/status/information",
                        data={"csrf_token": hidden["csrf_token"], "token": token, "information": " "})
    assert empty.status_code == 422
    unknown = client.post("/grievances/status/information",
                          data={"csrf_token": hidden["csrf_token"], "token": "trk_" + "x" * 32, "information": added})
    assert unknown.status_code == 404 and added in html.unescape(unknown.get_data(as_text=True))
    api = client.post("/v1/grievances/information", json={"token": token, "information": "A second witness."})
    assert api.status_code == 201 and api.get_json()["reference"] == _stored(app)[0].id
    assert client.post("/v1/grievances/information", json={"token": "trk_x", "information": "x"}).status_code == 404
    wrong = client.post("/v1/grievances/information", json={"token": token, "information": 7, "file": "x"})
    assert wrong.status_code == 422 and set(wrong.get_json()["errors"]) == {"information", "file"}

    reviewer = auth_headers("reviewer")
    gid = _stored(app)[0].id
    detail = client.get(f"/v1/grievances/{gid}", headers=reviewer).get_json()
    assert [(a["actor"], a["action"], a["outcome"]) for a in detail["actions"]] == [
        ("reporter", "reporter_update", added), ("reporter", "reporter_update", "A second witness.")]
    listed = client.get("/v1/grievances", headers=reviewer).get_json()["grievances"][0]
    assert listed["reporter_updates"] == 2
    # Information from the reporter is not an action the company took: the report does not count it.
    report = client.get(f"/v1/reports/transparency?year={_stored(app)[0].received_at[:4]}",
                        headers=reviewer).get_json()
    actions = next(t for t in report["tables"] if t["name"] == "grievance_actions")
    assert all(row["count"] == 0 for row in actions["rows"])


def test_a_report_over_the_rate_limit_comes_back_with_the_limit_it_hit(app_config):
    """A newsroom behind one address hits the daily limit: told which limit, and nothing typed is lost."""
    from server import create_app
    application = create_app({**app_config, "HRDD_GRIEVANCE_RATE_LIMIT": "2 per day"})
    client = application.test_client()
    hidden = _form_fields(client.get("/grievances/").get_data(as_text=True))
    for n in range(2):
        assert client.post("/grievances/", data={**hidden, **REPORT, "location": f"Office {n}"}).status_code == 201
    description = "Our colleague's phone was infected after the interview; the lab report is with us."
    r = client.post("/grievances/", data={**hidden, **REPORT, "description": description})
    text = html.unescape(r.get_data(as_text=True))
    application.extensions["hrdd"].store.engine.dispose()
    assert r.status_code == 429
    assert "not sent" in text and "2 per 1 day" in text and "Wait a minute" not in text
    assert description in text and 'name="subject_name"' in text


def test_the_form_and_the_api_count_against_one_rate_limit(app_config):
    """Reports through the form and through POST /v1/grievances come in by the same door: one address's limit
    is not doubled by using both (nor additions to reports by using both of their doors)."""
    from server import create_app
    application = create_app({**app_config, "HRDD_GRIEVANCE_RATE_LIMIT": "3 per minute"})
    client = application.test_client()
    try:
        hidden = _form_fields(client.get("/grievances/").get_data(as_text=True))
        codes = [client.post("/v1/grievances", json={**REPORT, "location": "API 1"}).status_code,
                 client.post("/grievances/", data={**hidden, **REPORT, "location": "Form 1"}).status_code,
                 client.post("/v1/grievances", json={**REPORT, "location": "API 2"}).status_code,
                 client.post("/grievances/", data={**hidden, **REPORT, "location": "Form 2"}).status_code,
                 client.post("/v1/grievances", json={**REPORT, "location": "API 3"}).status_code]
        assert codes == [201, 201, 201, 429, 429]
        token = client.post("/v1/grievances", json=REPORT, environ_base={"REMOTE_ADDR": "198.51.100.9"}).get_json()["token"]
        more = {"token": token, "information": "The same unit was seen again at the border crossing."}
        elsewhere = {"REMOTE_ADDR": "203.0.113.4"}
        added = [client.post("/v1/grievances/information", json=more, environ_base=elsewhere),
                 client.post("/grievances/status/information", data={**hidden, **more}, environ_base=elsewhere),
                 client.post("/v1/grievances/information", json=more, environ_base=elsewhere),
                 client.post("/grievances/status/information", data={**hidden, **more}, environ_base=elsewhere)]
        assert [r.status_code for r in added] == [201, 201, 201, 429]
    finally:
        application.extensions["hrdd"].store.engine.dispose()
