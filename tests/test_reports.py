"""Step 8 transparency report: aggregates in JSON, CSV, HTML and docx, with small cells suppressed."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

import docx
import pytest
import sqlalchemy as sa

from hrdd.workspace.tables import grievances as grievances_table
from hrdd.workspace.transparency import suppress
from tests.workspace_helpers import fixture, login, make_user, screen

YEAR = datetime.now(UTC).year


def test_small_cells_are_hidden_and_a_lone_hidden_cell_gets_a_companion():
    rows = {r["category"]: r for r in suppress({"Europe": 12, "Asia": 3, "Americas": 7, "Africa": 0}, 5)}
    assert rows["Asia"]["suppressed"] and rows["Asia"]["count"] is None
    assert rows["Americas"]["suppressed"]  # else Asia = total - 12 - 7
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
    assert regions["Americas"]["count"] == 7
    assert tables["screened_by_region"]["total"] == 15
    assert tables["screened_by_capability"]["rows"] == [
        {"category": "biometric identification", "count": 15, "suppressed": False}]
    grievance_rows = {row["category"]: row for row in tables["grievances"]["rows"]}
    assert grievance_rows["received"]["suppressed"]  # 3 reports: could identify a reporter
    assert grievance_rows["resolved or closed"]["count"] == 0
    assert "2 " not in str(regions) and "'count': 2" not in str(report)
    assert report["process"].startswith("Every sale")


def test_csv_report_and_role(populated, auth_headers):
    r = populated.get(f"/v1/reports/transparency?year={YEAR}&format=csv", headers=auth_headers("reviewer"))
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True))))
    asia = next(row for row in rows if row["table"] == "screened_by_region" and row["category"] == "Asia")
    assert asia["count"] == "<5"
    assert populated.get("/v1/reports/transparency?format=csv", headers=auth_headers("crm")).status_code == 403
    assert populated.get("/v1/reports/transparency?year=19x", headers=auth_headers("reviewer")).status_code == 400
    assert populated.get("/v1/reports/transparency?format=pdf", headers=auth_headers("reviewer")).status_code == 400


@pytest.mark.store
def test_threshold_comes_from_the_policy(app_config, tmp_path, auth_headers):
    from hrdd.config import load_config
    from server import create_app
    policy = tmp_path / "policy.yaml"
    policy.write_text(load_config()["HRDD_POLICY_FILE"].read_text(encoding="utf-8")
                      + "\nreports:\n  small_cell_threshold: 2\n", encoding="utf-8")
    application = create_app({**app_config, "HRDD_POLICY_FILE": str(policy)})
    client = application.test_client()
    _, crm = application.extensions["hrdd"].store.create_api_key("c", "crm")
    _, rev = application.extensions["hrdd"].store.create_api_key("r", "reviewer")
    _deals(client, {"Authorization": f"Bearer {crm}"}, 3, "VN", "asia")
    report = client.get(f"/v1/reports/transparency?year={YEAR}", headers={"Authorization": f"Bearer {rev}"}).get_json()
    application.extensions["hrdd"].store.engine.dispose()
    assert report["threshold"] == 2
    assert report["tables"][0]["rows"] == [{"category": "Asia", "count": 3, "suppressed": False}]


def test_docx_and_html_report(app, populated, auth_headers):
    r = populated.get(f"/v1/reports/transparency?year={YEAR}&format=docx", headers=auth_headers("reviewer"))
    assert r.status_code == 200
    document = docx.Document(io.BytesIO(r.data))
    text = "\n".join(p.text for p in document.paragraphs)
    assert f"Transparency report {YEAR}" in text and "due diligence process" in text
    cells = [[c.text for c in row.cells] for t in document.tables for row in t.rows]
    assert ["Asia", "<5"] in cells and ["Americas", "7"] in cells
    make_user(app)
    login(populated)
    page = populated.get(f"/workspace/reports/transparency?year={YEAR}").get_data(as_text=True)
    assert "Americas" in page and "&lt;5" in page
    download = populated.get(f"/workspace/reports/transparency.docx?year={YEAR}")
    assert download.status_code == 200 and download.data[:2] == b"PK"


def test_report_counts_resolved_grievances_and_reviewer_decisions(app, client, auth_headers):
    reviewer = auth_headers("reviewer")
    _deals(client, auth_headers("crm"), 5, "EG", "x")
    for case in client.get("/v1/cases", headers=reviewer).get_json()["cases"]:
        client.post(f"/v1/cases/{case['id']}/decision", headers=reviewer,
                    json={"decision": "decline", "rationale": "Human rights risk too high for this deal"})
    for _ in range(6):
        client.post("/v1/grievances", json={"subject_name": "Unit", "description": "Used against journalists " * 3},
                    environ_base={"REMOTE_ADDR": f"203.0.113.{_}"})
    with app.extensions["hrdd"].store.begin() as conn:
        ids = [r.id for r in conn.execute(sa.select(grievances_table.c.id))][:5]
        conn.execute(grievances_table.update().where(grievances_table.c.id.in_(ids)).values(status="resolved"))
    report = client.get(f"/v1/reports/transparency?year={YEAR}", headers=reviewer).get_json()
    tables = {t["name"]: {r["category"]: r["count"] for r in t["rows"]} for t in report["tables"]}
    assert tables["reviewer_decisions"]["declined"] == 5
    assert tables["grievances"] == {"received": 6, "resolved or closed": 5}


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
        "biometric identification": 6, "recording devices": 6}
    assert capabilities["total"] == tables["screened_by_region"]["total"] == 6
    assert "counted under each" in capabilities["title"]
    # The datasets the figures rest on, with their versions (the report had listed none).
    assert any(s.startswith("fiw: ") for s in report["sources"]), report["sources"]
    assert any(s.startswith("pts: ") for s in report["sources"]), report["sources"]
