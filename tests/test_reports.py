"""Step 8 transparency report: aggregates in JSON, CSV, HTML and docx, with small cells suppressed."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import time
from datetime import UTC, datetime, timedelta

import docx
import pytest
import sqlalchemy as sa

from hrdd.model import DECISIONS
from hrdd.tables import screenings
from hrdd.workspace import stats
from hrdd.workspace.transparency import suppress
from tests.workspace_helpers import fixture, login, make_user, screen

YEAR = datetime.now(UTC).year


def test_small_cells_are_hidden_and_a_lone_hidden_cell_gets_a_companion():
    rows = {r["category"]: r for r in suppress({"Europe": 12, "Asia": 3, "Americas": 7, "Africa": 0}, 5)}
    assert rows["Asia"]["suppressed"] and rows["Asia"]["count"] is None
    assert rows["Americas"]["suppressed"]  # else Asia = total - 12 - 7
    # Asia is small; Americas (7) is hidden only to protect it, so it must not read as "<5".
    assert (rows["Asia"]["marker"], rows["Americas"]["marker"], rows["Europe"]["marker"]) == ("<5", "suppressed", None)
    assert not rows["Europe"]["suppressed"] and rows["Europe"]["count"] == 12
    assert rows["Africa"]["count"] == 0 and not rows["Africa"]["suppressed"]
    two = {r["category"]: r for r in suppress({"a": 1, "b": 2, "c": 9}, 5)}
    assert two["a"]["suppressed"] and two["b"]["suppressed"] and not two["c"]["suppressed"]
    assert not any(r["suppressed"] for r in suppress({"a": 5, "b": 6}, 5))


def _deals(client, crm, count, country, object_prefix, **changes):
    body = fixture("transaction_egypt_biometric.json")
    for i in range(count):
        screen(client, crm, body, reference={"system": "sf", "object_type": "opportunity",
                                             "object_id": f"{object_prefix}-{i}"},
               end_user={**body["end_user"], "country": country}, deployment_countries=[country], **changes)


@pytest.fixture
def populated(app, client, auth_headers):
    crm = auth_headers("crm")
    _deals(client, crm, 6, "EG", "afr")    # Africa (Freedom House region): 6, hidden as the lone small cell's companion
    _deals(client, crm, 2, "VN", "asia")   # Asia: 2, hidden
    _deals(client, crm, 7, "BR", "amer")   # Americas: 7, shown
    for _ in range(3):
        client.post("/v1/grievances", json={"subject_name": "Unit", "description": "Used against journalists " * 3})
    return client


def test_json_report_suppresses_small_cells(populated, auth_headers):
    r = populated.get(f"/v1/reports/transparency?year={YEAR}", headers=auth_headers("reviewer"))
    assert r.status_code == 200
    report = r.get_json()
    assert report["year"] == YEAR and report["threshold"] == 5
    tables = {t["name"]: t for t in report["tables"]}
    regions = {row["category"]: row for row in tables["screened_by_region"]["rows"]}
    assert set(regions) == {"Africa", "Asia", "Americas"}
    assert regions["Asia"]["suppressed"] and regions["Asia"]["count"] is None
    assert regions["Africa"]["suppressed"]  # else Asia = total - Africa - Americas
    assert (regions["Asia"]["marker"], regions["Africa"]["marker"]) == ("<5", "suppressed")
    assert [m["marker"] for m in report["markers"]] == ["<5", "suppressed"]
    assert regions["Americas"]["count"] == 7
    assert tables["screened_by_region"]["total"] == 15
    assert tables["screened_by_capability"]["rows"] == [
        {"category": "Biometric identification", "count": 15, "suppressed": False, "marker": None}]
    grievance_rows = {row["category"]: row for row in tables["grievances"]["rows"]}
    assert grievance_rows["received in the year"]["suppressed"]  # 3 reports: could identify a reporter
    assert grievance_rows["closed or resolved in the year (whenever received)"]["count"] == 0
    assert "2 " not in str(regions) and "'count': 2" not in str(report)
    assert report["process"].startswith("Every sale")


def test_csv_report_and_role(populated, auth_headers):
    r = populated.get(f"/v1/reports/transparency?year={YEAR}&format=csv", headers=auth_headers("reviewer"))
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    regions = {row["category"]: row["count"] for row in rows if row["table"] == "screened_by_region"}
    # Asia (2) is small; Africa (6) is hidden only so Asia cannot be worked out from the total.
    assert regions == {"Africa": "suppressed", "Americas": "7", "Asia": "<5", "total": "15"}
    notes = {row["category"]: row["note"] for row in rows if row["table"] == "notes"}
    assert notes["<5"].startswith("a count from 1 to 4") and "protect another" in notes["suppressed"]
    assert notes["period"] == f"Year not yet ended: figures to {datetime.now(UTC).date().isoformat()}."
    assert populated.get("/v1/reports/transparency?format=csv", headers=auth_headers("crm")).status_code == 403
    assert populated.get("/v1/reports/transparency?year=19x", headers=auth_headers("reviewer")).status_code == 400
    assert populated.get("/v1/reports/transparency?format=pdf", headers=auth_headers("reviewer")).status_code == 400


def test_a_misspelt_query_parameter_is_refused_naming_it(app, client, auth_headers):
    reviewer = auth_headers("reviewer")
    for query, names in (("yaer=2023", ["yaer"]), ("fromat=csv", ["fromat"]),
                         (f"year={YEAR}&format=csv&Format=docx", ["Format"]),
                         ("year=2023&yaer=2024&x=1", ["x", "yaer"])):
        r = client.get(f"/v1/reports/transparency?{query}", headers=reviewer)
        body = r.get_json()
        assert (r.status_code, body["code"], body["status"]) == (400, "bad_request", 400), (query, body)
        assert sorted(body["errors"]) == names, body
        for name in names:
            assert f"'{name}'" in body["message"] and body["errors"][name] == [
                "unknown query parameter; accepted: format, year"]
        assert body["message"].endswith("; accepted: format, year")
    assert client.get("/v1/reports/transparency?fromat=csv", headers=auth_headers("crm")).status_code == 403
    assert client.get(f"/v1/reports/transparency?year={YEAR}&format=csv", headers=reviewer).status_code == 200
    make_user(app)
    login(client)
    for path in ("/workspace/reports/transparency?yaer=2023", "/workspace/reports/transparency.docx?yaer=2023"):
        page = client.get(path)
        assert page.status_code == 400 and page.mimetype == "text/html", path
        assert "Unknown query parameter &#39;yaer&#39;; accepted: year" in page.get_data(as_text=True)
    assert client.get(f"/workspace/reports/transparency?year={YEAR}").status_code == 200
    twice = client.get(f"/workspace/reports/transparency.docx?year={YEAR}&year={YEAR - 1}")
    assert twice.status_code == 400 and "&#39;year&#39; given more than once" in twice.get_data(as_text=True)
    # The other workspace pages with filters: a misspelt one is named, not silently left at its default.
    for path, message in (("/workspace/?stauts=all", "Unknown query parameter &#39;stauts&#39;; accepted: age, "
                                                      "capability, country, page, status"),
                          ("/workspace/?status=all&status=open", "&#39;status&#39; given more than once"),
                          ("/workspace/grievances/?satus=all", "Unknown query parameter &#39;satus&#39;; "
                                                              "accepted: page, status")):
        page = client.get(path)
        assert page.status_code == 400 and message in page.get_data(as_text=True), path
    assert client.get("/workspace/?status=all&country=EG&page=1").status_code == 200
    assert client.get("/workspace/grievances/?status=all").status_code == 200


def test_labels_read_as_written_and_an_unfinished_year_says_so(app, client, auth_headers):
    crm, reviewer = auth_headers("crm"), auth_headers("reviewer")
    _deals(client, crm, 5, "JO", "me", items=[_item("SRV-1", "it_infrastructure")])
    today = datetime.now(UTC).date().isoformat()
    note = f"Year not yet ended: figures to {today}."
    report = client.get(f"/v1/reports/transparency?year={YEAR}", headers=reviewer).get_json()
    assert (report["complete"], report["period_note"]) == (False, note)
    last = client.get(f"/v1/reports/transparency?year={YEAR - 1}", headers=reviewer).get_json()
    assert (last["complete"], last["period_note"]) == (True, None)
    document = docx.Document(io.BytesIO(client.get(f"/v1/reports/transparency?year={YEAR}&format=docx",
                                                   headers=reviewer).data))
    assert note in [p.text for p in document.paragraphs]
    assert ["IT infrastructure", "5"] in [[c.text for c in row.cells] for t in document.tables for row in t.rows]
    make_user(app)
    login(client)
    page = client.get(f"/workspace/reports/transparency?year={YEAR}").get_data(as_text=True)
    assert '<th scope="row">IT infrastructure</th>' in page and '<th scope="row">Middle East</th>' in page
    assert note in page
    assert note not in client.get(f"/workspace/reports/transparency?year={YEAR - 1}").get_data(as_text=True)
    message = f"year must be a four-digit year from 2000 to {YEAR} (got '{YEAR + 1}')"
    for fmt in ("json", "csv", "docx"):
        r = client.get(f"/v1/reports/transparency?year={YEAR + 1}&format={fmt}", headers=reviewer)
        assert r.status_code == 400 and r.get_json()["message"] == message
    assert client.get("/v1/reports/transparency?year=2030", headers=reviewer).status_code == 400
    page = client.get(f"/workspace/reports/transparency?year={YEAR + 1}")
    assert page.status_code == 400 and message.replace("'", "&#39;") in page.get_data(as_text=True)
    assert client.get(f"/workspace/reports/transparency.docx?year={YEAR + 1}").status_code == 400


def test_the_openapi_description_says_what_the_report_accepts(client):
    operation = client.get("/openapi.json").get_json()["paths"]["/v1/reports/transparency"]["get"]
    assert {p["name"] for p in operation["parameters"] if p["in"] == "query"} == {"year", "format"}
    assert "other than year and format" in operation["responses"]["400"]["description"]


@pytest.mark.store
def test_threshold_comes_from_the_policy(app_config, tmp_path, auth_headers):
    from hrdd.config import load_config
    from server import create_app
    policy = tmp_path / "policy.yaml"
    policy.write_text(load_config()["HRDD_POLICY_FILE"].read_text(encoding="utf-8")
                      .replace("small_cell_threshold: 5", "small_cell_threshold: 2"), encoding="utf-8")
    application = create_app({**app_config, "HRDD_POLICY_FILE": str(policy)})
    client = application.test_client()
    _, crm = application.extensions["hrdd"].store.create_api_key("c", "crm")
    _, rev = application.extensions["hrdd"].store.create_api_key("r", "reviewer")
    _deals(client, {"Authorization": f"Bearer {crm}"}, 3, "VN", "asia")
    report = client.get(f"/v1/reports/transparency?year={YEAR}", headers={"Authorization": f"Bearer {rev}"}).get_json()
    application.extensions["hrdd"].store.engine.dispose()
    assert report["threshold"] == 2
    assert report["tables"][0]["rows"] == [{"category": "Asia", "count": 3, "suppressed": False, "marker": None}]


def test_docx_and_html_report(app, populated, auth_headers):
    r = populated.get(f"/v1/reports/transparency?year={YEAR}&format=docx", headers=auth_headers("reviewer"))
    assert r.status_code == 200
    document = docx.Document(io.BytesIO(r.data))
    text = "\n".join(p.text for p in document.paragraphs)
    assert f"Transparency report {YEAR}" in text and "due diligence process" in text
    cells = [[c.text for c in row.cells] for t in document.tables for row in t.rows]
    assert ["Asia", "<5"] in cells and ["Americas", "7"] in cells and ["Africa", "suppressed"] in cells
    assert "\u201csuppressed\u201d: a figure hidden only to protect another" in text
    assert "\u201c<5\u201d: a count from 1 to 4" in text
    make_user(app)
    login(populated)
    page = populated.get(f"/workspace/reports/transparency?year={YEAR}").get_data(as_text=True)
    assert "Americas" in page and '<a href="#markers">&lt;5</a>' in page
    assert '<th scope="row">Africa</th><td class="num"><a href="#markers">suppressed</a>' in page
    assert "&ldquo;suppressed&rdquo;: a figure hidden only to protect another" in page
    download = populated.get(f"/workspace/reports/transparency.docx?year={YEAR}")
    assert download.status_code == 200 and download.data[:2] == b"PK"


GRIEVANCE_ROWS = ("received in the year", "received in the year and assessed as credible",
                  "closed or resolved in the year (whenever received)",
                  "open at the end of the year (whenever received)")
MEDIAN = "median days from receipt to closing, for grievances closed in the year"


def _grievances(client, count: int) -> list[str]:
    return [client.post("/v1/grievances", json={"subject_name": "Unit", "description": "Used against journalists " * 3},
                        environ_base={"REMOTE_ADDR": f"203.0.113.{n}"}).get_json()["reference"] for n in range(count)]


def _figures(client, reviewer, year: int) -> dict:
    report = client.get(f"/v1/reports/transparency?year={year}", headers=reviewer).get_json()
    return {t["name"]: {r["category"]: r["count"] if not r["suppressed"] else r["marker"] for r in t["rows"]}
            for t in report["tables"]}


def test_report_counts_resolved_grievances_and_reviewer_decisions(app, client, auth_headers):
    reviewer = auth_headers("reviewer")
    _deals(client, auth_headers("crm"), 5, "EG", "x")
    for case in client.get("/v1/cases", headers=reviewer).get_json()["cases"]:
        client.post(f"/v1/cases/{case['id']}/decision", headers=reviewer,
                    json={"decision": "decline", "rationale": "Human rights risk too high for this deal"})
    gids = _grievances(client, 6)
    for gid in gids[:5]:
        assert client.post(f"/v1/grievances/{gid}/actions", headers=reviewer, json={
            "action": "engage", "outcome": "Asked the customer for its account"}).status_code == 201
        assert client.post(f"/v1/grievances/{gid}/triage", headers=reviewer,
                           json={"status": "resolved", "credible": True}).status_code == 200
    tables = _figures(client, reviewer, YEAR)
    assert tables["reviewer_decisions"]["declined"] == 5
    assert tables["grievances"] == dict(zip(GRIEVANCE_ROWS, (6, 5, 5, "<5"), strict=True))
    assert tables["grievance_time_to_close"] == {MEDIAN: 0}
    assert tables["grievance_actions"] == {"engaged the customer": 5, "requested corrective action": 0,
                                           "suspended support and updates": 0, "terminated the contract": 0}
    detail = client.get(f"/v1/grievances/{gids[0]}", headers=reviewer).get_json()
    assert detail["closed_at"][:4] == str(YEAR)
    assert gids[0] not in str(tables) and "journalists" not in str(tables)


def test_a_past_years_grievance_figures_stay_fixed_when_closed_later(app, client, auth_headers, monkeypatch):
    """Received 20 December, closed 10 January: last year's report must read the same before and after."""
    from hrdd import audit
    from hrdd.workspace import grievances as grievance_module
    clock = {"now": f"{YEAR - 1}-12-20T10:00:00.000000Z"}
    monkeypatch.setattr(grievance_module, "now_iso", lambda: clock["now"])
    monkeypatch.setattr(audit, "now_iso", lambda: clock["now"])
    reviewer = auth_headers("reviewer")
    gids = _grievances(client, 6)
    clock["now"] = f"{YEAR - 1}-12-22T10:00:00.000000Z"
    for gid in gids[:5]:
        client.post(f"/v1/grievances/{gid}/triage", headers=reviewer, json={"status": "investigating", "credible": True})
    published = _figures(client, reviewer, YEAR - 1)
    assert published["grievances"] == dict(zip(GRIEVANCE_ROWS, (6, 5, 0, 6), strict=True))
    assert published["grievance_time_to_close"] == {MEDIAN: None}  # nothing closed: no median, not "None"
    csv_text = client.get(f"/v1/reports/transparency?year={YEAR - 1}&format=csv", headers=reviewer).get_data(as_text=True)
    assert [str(YEAR - 1), "grievance_time_to_close", MEDIAN, "", ""] in list(csv.reader(io.StringIO(csv_text)))
    document = docx.Document(io.BytesIO(client.get(f"/v1/reports/transparency?year={YEAR - 1}&format=docx",
                                                   headers=reviewer).data))
    assert [MEDIAN[:1].upper() + MEDIAN[1:], "\u2013"] in [[c.text for c in r.cells] for t in document.tables for r in t.rows]

    clock["now"] = f"{YEAR}-01-10T09:00:00.000000Z"
    for gid in gids[:5]:
        client.post(f"/v1/grievances/{gid}/actions", headers=reviewer,
                    json={"action": "suspend_support", "outcome": "Updates suspended"})
        client.post(f"/v1/grievances/{gid}/triage", headers=reviewer, json={"status": "resolved", "credible": True})
    client.post(f"/v1/grievances/{gids[5]}/triage", headers=reviewer, json={"status": "under_review", "credible": True})
    assert _figures(client, reviewer, YEAR - 1) == published
    this_year = _figures(client, reviewer, YEAR)
    assert this_year["grievances"] == dict(zip(GRIEVANCE_ROWS, (0, 0, 5, "<5"), strict=True))
    assert this_year["grievance_time_to_close"] == {MEDIAN: 21}
    assert this_year["grievance_actions"]["suspended support and updates"] == 5


def test_reopening_a_grievance_closed_in_an_earlier_year_leaves_that_years_figures(app, client, auth_headers,
                                                                                   monkeypatch):
    """Closed in December, reopened in January: last year still closed them, and had none open at its end."""
    from hrdd import audit
    from hrdd.workspace import grievances as grievance_module
    clock = {"now": f"{YEAR - 1}-12-01T10:00:00.000000Z"}
    monkeypatch.setattr(grievance_module, "now_iso", lambda: clock["now"])
    monkeypatch.setattr(audit, "now_iso", lambda: clock["now"])
    reviewer = auth_headers("reviewer")
    gids = _grievances(client, 6)
    clock["now"] = f"{YEAR - 1}-12-11T10:00:00.000000Z"
    for gid in gids:
        client.post(f"/v1/grievances/{gid}/triage", headers=reviewer, json={"status": "resolved", "credible": True})
    published = _figures(client, reviewer, YEAR - 1)
    assert published["grievances"] == dict(zip(GRIEVANCE_ROWS, (6, 6, 6, 0), strict=True))
    assert published["grievance_time_to_close"] == {MEDIAN: 10}

    clock["now"] = f"{YEAR}-01-05T09:00:00.000000Z"
    for gid in gids:  # new evidence: every one is reopened, and closed again a week later
        client.post(f"/v1/grievances/{gid}/triage", headers=reviewer, json={"status": "investigating"})
    assert _figures(client, reviewer, YEAR - 1) == published
    assert _figures(client, reviewer, YEAR)["grievances"] == dict(zip(GRIEVANCE_ROWS, (0, 0, 0, 6), strict=True))
    clock["now"] = f"{YEAR}-01-12T09:00:00.000000Z"
    for gid in gids:
        client.post(f"/v1/grievances/{gid}/triage", headers=reviewer, json={"status": "closed"})
    assert _figures(client, reviewer, YEAR - 1) == published
    this_year = _figures(client, reviewer, YEAR)
    assert this_year["grievances"] == dict(zip(GRIEVANCE_ROWS, (0, 0, 6, 0), strict=True))
    assert this_year["grievance_time_to_close"] == {MEDIAN: 42}  # from receipt to the closing that held


def test_the_median_time_to_close_is_hidden_for_few_closings(app, client, auth_headers):
    reviewer = auth_headers("reviewer")
    for gid in _grievances(client, 6)[:2]:
        client.post(f"/v1/grievances/{gid}/triage", headers=reviewer, json={"status": "closed", "credible": False})
    tables = _figures(client, reviewer, YEAR)
    assert tables["grievance_time_to_close"] == {MEDIAN: "suppressed"}
    assert tables["grievances"][GRIEVANCE_ROWS[2]] == "<5"


def test_capability_total_counts_transactions_and_the_report_names_its_data_sources(client, auth_headers):
    crm = auth_headers("crm")
    # Each deal carries two capabilities: it counts under both, and once in the total.
    _deals(client, crm, 6, "BR", "two", items=[
        {"sku": "FR-200", "name": "Face recognition", "capabilities": ["biometric_identification"]},
        {"sku": "CAM-10", "name": "Body camera", "capabilities": ["recording_devices"]}])
    report = client.get(f"/v1/reports/transparency?year={YEAR}", headers=auth_headers("reviewer")).get_json()
    tables = {t["name"]: t for t in report["tables"]}
    capabilities = tables["screened_by_capability"]
    assert {r["category"]: r["count"] for r in capabilities["rows"]} == {
        "Biometric identification": 6, "Recording devices": 6}
    assert capabilities["total"] == tables["screened_by_region"]["total"] == 6
    assert "counted under each" in capabilities["title"]
    # The datasets the figures rest on, with their versions (the report had listed none).
    assert any(s.startswith("fiw: ") for s in report["sources"]), report["sources"]
    assert any(s.startswith("pts: ") for s in report["sources"]), report["sources"]


# ---- the figures themselves: dashboard and transparency, counted in SQL ----

def _item(sku: str, *capabilities: str) -> dict:
    return {"sku": sku, "name": f"Product {sku}", "capabilities": list(capabilities), "quantity": 1,
            "unit_price": 1000, "currency": "USD"}


def _store_at(app, client, crm, when: datetime, country: str, items: list[dict], deal: str,
              template: str = "transaction_egypt_biometric.json") -> dict:
    """A screening of ``deal`` stored through the API, then dated ``when``; returns the API's reply."""
    body = fixture(template)
    stored = screen(client, crm, body, reference={"system": "sf", "object_type": "opportunity", "object_id": deal},
                    end_user={**body["end_user"], "country": country}, deployment_countries=[country], items=items)
    with app.extensions["hrdd"].store.begin() as conn:
        conn.execute(screenings.update().where(screenings.c.id == stored["id"]).values(created_at=when))
    return stored


@pytest.fixture
def away_from_utc(monkeypatch):
    """Local time nine hours ahead of UTC, so a figure taken in local time lands in the wrong month."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@contextlib.contextmanager
def _reading(app):
    """A connection whose session time zone is Tokyo's on PostgreSQL (SQLite has none)."""
    with app.extensions["hrdd"].store.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SET TIME ZONE 'Asia/Tokyo'"))
        yield conn


def test_dashboard_counts_by_utc_month_decision_country_and_capability(app, client, auth_headers, away_from_utc):
    crm = auth_headers("crm")
    periods = stats.months_back(12)
    month_start = datetime.fromisoformat(periods[-2] + "-01").replace(tzinfo=UTC)
    window_start = datetime.fromisoformat(periods[0] + "-01").replace(tzinfo=UTC)
    tick = timedelta(microseconds=1)
    stored = [  # (reply, period index or None when before the window)
        (_store_at(app, client, crm, month_start, "EG", deal="a", items=[
            _item("CAM-1", "biometric_identification", "location_tracking"),
            _item("CAM-2", "biometric_identification")]), 10),
        (_store_at(app, client, crm, month_start - tick, "NO", deal="b", items=[_item("ST-1", "data_storage")],
                   template="transaction_norway_storage.json"), 9),
        (_store_at(app, client, crm, datetime.now(UTC), "NO", deal="c", items=[_item("ST-1", "data_storage")],
                   template="transaction_norway_storage.json"), 11),
        (_store_at(app, client, crm, window_start, "BR", deal="d",
                   items=[_item("CAM-1", "biometric_identification")]), 0),
        (_store_at(app, client, crm, window_start - tick, "VN", deal="e",
                   items=[_item("IMSI-1", "cell_site_simulator")]), None),
    ]
    with _reading(app) as conn:
        data = stats.dashboard(conn)
    expected = {d: [0] * 12 for d in DECISIONS}
    for reply, period in stored:
        if period is not None:
            expected[reply["decision"]][period] += 1
    assert data["periods"] == periods
    assert data["by_month"] == expected
    assert data["total"] == 4
    assert data["by_country"] == [("NO", 2), ("BR", 1), ("EG", 1)]  # ties in code order
    # Deal a names biometric identification on two items: one screening, counted once.
    assert data["by_capability"] == [("biometric_identification", 2), ("data_storage", 2), ("location_tracking", 1)]
    make_user(app)
    login(client)
    page = client.get("/workspace/dashboard").get_data(as_text=True)
    assert "location tracking" in page and "Norway (NO)" in page


def test_dashboard_keeps_the_twelve_largest_countries(app, client, auth_headers):
    crm = auth_headers("crm")
    body = fixture("transaction_norway_storage.json")
    countries = ["AR", "AT", "BE", "CA", "CH", "CL", "DE", "DK", "ES", "FI", "FR", "GB", "IE"]
    for n, country in enumerate(countries):
        for i in range(2 if country in ("IE", "GB") else 1):
            screen(client, crm, body, reference={"system": "hubspot", "object_type": "deal", "object_id": f"{n}-{i}"},
                   end_user={**body["end_user"], "country": country}, deployment_countries=[country])
    with _reading(app) as conn:
        data = stats.dashboard(conn)
    assert data["by_country"] == [("GB", 2), ("IE", 2)] + [(c, 1) for c in countries[:10]]
    assert data["by_capability"] == [("data_storage", 15)] and data["total"] == 15


def test_transparency_counts_each_deals_latest_screening_of_the_year(app, client, auth_headers, away_from_utc):
    crm = auth_headers("crm")
    year = YEAR - 1
    first = datetime(year, 1, 1, tzinfo=UTC)
    tick = timedelta(microseconds=1)
    storage = {"items": [_item("ST-1", "data_storage")], "template": "transaction_norway_storage.json"}
    # Deal a: three screenings; the last of the year is the one at its very last instant.
    _store_at(app, client, crm, datetime(year, 3, 1, tzinfo=UTC), "EG", deal="a",
              items=[_item("CAM-1", "biometric_identification")])
    a = _store_at(app, client, crm, datetime(year + 1, 1, 1, tzinfo=UTC) - tick, "NO", deal="a", **storage)
    _store_at(app, client, crm, datetime(year + 1, 1, 1, tzinfo=UTC), "VN", deal="a",
              items=[_item("IMSI-1", "cell_site_simulator")])
    # Deal b: two screenings at the same instant; the later id wins.
    same = datetime(year, 6, 15, 12, tzinfo=UTC)
    b = [_store_at(app, client, crm, same, "BR", deal="b", items=[_item("CAM-1", "location_tracking")]),
         _store_at(app, client, crm, same, "DE", deal="b", **storage)]
    b_latest = max(b, key=lambda stored: stored["id"])
    # Deal c: only the year before. Deal d: its first instant, one capability named on two items.
    _store_at(app, client, crm, first - tick, "AR", deal="c", items=[_item("CAM-1", "biometric_identification")])
    d = _store_at(app, client, crm, first, "EG", deal="d", items=[
        _item("CAM-1", "location_tracking", "biometric_identification"), _item("CAM-2", "biometric_identification")])
    with _reading(app) as conn:
        deals = stats.deals_in_year(conn, year)
        next_year = stats.deals_in_year(conn, year + 1)
    assert sorted((x["country"], x["capabilities"], x["decision"]) for x in deals) == sorted([
        ("NO", ["data_storage"], a["decision"]),
        ("BR", ["location_tracking"], b[0]["decision"]) if b_latest is b[0] else ("DE", ["data_storage"], b[1]["decision"]),
        ("EG", ["biometric_identification", "location_tracking"], d["decision"]),  # distinct, sorted
    ])
    assert [(x["country"], x["capabilities"]) for x in next_year] == [("VN", ["cell_site_simulator"])]


def test_screenings_stored_without_capabilities_are_counted_from_their_requests(app, client, auth_headers):
    """Rows an older hrdd writes during a rolling upgrade have no capabilities column value."""
    crm = auth_headers("crm")
    now = datetime.now(UTC)
    old = _store_at(app, client, crm, now, "EG", deal="a", items=[
        _item("CAM-1", "biometric_identification"), _item("CAM-2", "location_tracking", "biometric_identification")])
    _store_at(app, client, crm, now, "NO", deal="b", items=[_item("ST-1", "data_storage")],
              template="transaction_norway_storage.json")
    with app.extensions["hrdd"].store.begin() as conn:
        conn.execute(screenings.update().where(screenings.c.id == old["id"]).values(capabilities=None))
    with _reading(app) as conn:
        data = stats.dashboard(conn)
        deals = stats.deals_in_year(conn, now.year)
    assert data["by_capability"] == [("biometric_identification", 1), ("data_storage", 1), ("location_tracking", 1)]
    assert sorted(x["capabilities"] for x in deals) == [["biometric_identification", "location_tracking"],
                                                         ["data_storage"]]


def test_the_compliance_lead_writes_the_report_from_the_command_line(app, client, auth_headers, app_config, tmp_path):
    from click.testing import CliRunner

    from hrdd.cli import cli
    from hrdd.plugins import make_plugin_manager
    make_plugin_manager().hook.hrdd_register_commands(cli=cli)
    _deals(client, auth_headers("crm"), 6, "BR", "cli")
    env = {"HRDD_DATABASE_URL": app_config["HRDD_DATABASE_URL"]}
    out = tmp_path / "report.csv"
    result = CliRunner().invoke(cli, ["report", "transparency", "--year", str(YEAR), "--format", "csv",
                                      "-o", str(out)], env=env)
    assert result.exit_code == 0, result.output
    rows = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert [str(YEAR), "screened_by_region", "Americas", "6", ""] in rows
    assert str(out) in result.output
    docx_out = tmp_path / "report.docx"
    assert CliRunner().invoke(cli, ["report", "transparency", "--year", str(YEAR), "-o", str(docx_out)],
                              env=env).exit_code == 0
    assert "Transparency report" in "\n".join(p.text for p in docx.Document(str(docx_out)).paragraphs)
    printed = CliRunner().invoke(cli, ["report", "transparency", "--year", str(YEAR), "--format", "json"], env=env)
    assert json.loads(printed.output)["year"] == YEAR
    bad = CliRunner().invoke(cli, ["report", "transparency", "--year", str(YEAR + 1)], env=env)
    assert bad.exit_code != 0 and f"from 2000 to {YEAR}" in bad.output
