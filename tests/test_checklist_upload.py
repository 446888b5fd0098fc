"""The checklist upload as export control uses it: mistakes named cell by cell, retries, wrong file formats."""

from __future__ import annotations

import io
import zipfile

import pytest

from tests.test_checklists import counts, download, fill, open_xlsx, question_rows, upload


@pytest.fixture
def screened(client, auth_headers, transaction):
    response = client.post("/v1/screenings", json=transaction, headers=auth_headers("crm"))
    assert response.status_code == 201
    return response.get_json()


def _preparer_row(wb) -> int:
    summary = wb["Summary"]
    return next(r for r in range(1, summary.max_row + 1) if summary.cell(row=r, column=1).value == "Preparer")


def _mistakes_everywhere(wb) -> None:
    """One mistake on each sheet the upload reads, as a hurried user makes them."""
    questions = wb["Questions"]
    rows = question_rows(questions)
    questions.cell(row=rows["exports_to_abusers"], column=12).value = "Finished"
    wb["Red flags"]["H2"] = "Fixed"
    wb["Parties"]["B2"] = "Someone else"
    wb["Parties"]["I2"] = "checked the registry"
    wb["Summary"].cell(row=_preparer_row(wb), column=2).value = "A. Preparer"
    wb["Summary"].cell(row=_preparer_row(wb), column=4).value = "tomorrow"


def test_one_refusal_names_every_bad_cell_on_every_sheet(app, client, auth_headers, screened):
    data = download(client, auth_headers, screened["id"])
    rows = question_rows(open_xlsx(data)["Questions"])
    signoff_cell = f"Summary!D{_preparer_row(open_xlsx(data))}"
    before = counts(app)
    response = upload(client, auth_headers, screened["id"], fill(data, {"past_misuse": "Y"}, _mistakes_everywhere))
    body = response.get_json()
    assert (response.status_code, body["code"]) == (422, "validation_error"), body
    errors = body["errors"]
    # Every sheet's mistakes in the one reply, so the user fixes them all before the next upload.
    assert set(errors) == {"answers", "cells", "red_flags", "parties", "signoff"}, errors
    answer_cell = f"Questions!F{rows['past_misuse']}"
    assert answer_cell in errors["answers"]["past_misuse"][0]
    assert "'Y' is not one of Yes, No, Unknown, N/A" in errors["answers"]["past_misuse"][0]
    assert f"Questions!L{rows['exports_to_abusers']} (exports_to_abusers)" in errors["cells"]
    assert "Red flags!H2" in errors["red_flags"]["RF-1.2"][0] and "'Fixed'" in errors["red_flags"]["RF-1.2"][0]
    assert "Parties!I2" in errors["parties"]
    assert list(errors["signoff"]) == [signoff_cell]
    for named in (answer_cell, f"Questions!L{rows['exports_to_abusers']}", "Red flags!H2", "Parties!I2", signoff_cell):
        assert named in body["message"], (named, body["message"])
    assert counts(app) == before


def _audit_count(app, action: str) -> int:
    import sqlalchemy as sa

    from hrdd.audit import audit_log
    with app.extensions["hrdd"].store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(audit_log)
                            .where(audit_log.c.action == action)).scalar_one()


def test_retrying_an_accepted_upload_replays_it(app, client, auth_headers, screened):
    # The network dropped the 201: the user sends the very same file again.
    filled = fill(download(client, auth_headers, screened["id"]), {"past_misuse": "Yes"})
    first = upload(client, auth_headers, screened["id"], filled)
    assert first.status_code == 201, first.get_json()
    before, audits = counts(app), _audit_count(app, "checklist.upload")
    again = upload(client, auth_headers, screened["id"], filled)
    body = again.get_json()
    assert again.status_code == 200, body
    assert body["id"] == first.get_json()["id"] and body["decision"] == "do_not_proceed"
    assert body["checklist_upload"] == first.get_json()["checklist_upload"]
    assert counts(app) == before and _audit_count(app, "checklist.upload") == audits
    # A changed workbook for the old screening is still refused: it would overwrite the newer screening.
    changed = fill(filled, {"accepts_safeguards": "No"})
    refused = upload(client, auth_headers, screened["id"], changed).get_json()
    assert refused["code"] == "checklist_superseded" and counts(app) == before


def test_a_question_the_screening_has_as_unknown_is_still_open(client, auth_headers, screened):
    # The deal came in with past_misuse "unknown": nobody has answered it, so it is not Done.
    ws = open_xlsx(download(client, auth_headers, screened["id"]))["Questions"]
    rows = question_rows(ws)
    assert ws.cell(row=rows["past_misuse"], column=6).value == "Unknown"
    assert ws.cell(row=rows["past_misuse"], column=12).value == "Open"
    assert ws.cell(row=rows["end_user_disclosed"], column=12).value == "Done"


def test_every_printed_page_names_the_screening_and_the_checklist_version():
    # Pages of a licence application's attachment get separated: each must say which screening it is of.
    from hrdd.checklists.workbook import build_workbook
    from tests.conftest import load_fixture
    from tests.test_checklists import TEMPLATES

    screening = load_fixture("checklist_screening_eg.json")
    template = TEMPLATES["state-dept-2020"]
    wb = open_xlsx(build_workbook(screening, template))
    printed = [ws for ws in wb.worksheets if ws.sheet_state == "visible"]
    assert len(printed) == 6
    for ws in printed:
        footer = ws.oddFooter.center.text or ""
        assert screening["id"] in footer and f"{template.id} {template.version}" in footer, (ws.title, footer)


def _ods() -> bytes:
    """What LibreOffice's default Save writes: an OpenDocument spreadsheet, its mimetype the first zip entry."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet", zipfile.ZIP_STORED)
        archive.writestr("content.xml", "<office:document-content/>")
        archive.writestr("META-INF/manifest.xml", "<manifest:manifest/>")
    return out.getvalue()


def _encrypted_xlsx() -> bytes:
    """The shape of an .xlsx Excel saved with a password: an OLE2 compound file holding EncryptionInfo and
    EncryptedPackage streams (names in the directory are UTF-16)."""
    directory = b"".join(name.encode("utf-16-le").ljust(64, b"\0") + b"\0" * 64
                         for name in ("Root Entry", "EncryptionInfo", "EncryptedPackage"))
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504 + directory + b"\0" * 1024


def _xls() -> bytes:
    directory = b"".join(name.encode("utf-16-le").ljust(64, b"\0") + b"\0" * 64 for name in ("Root Entry", "Workbook"))
    return b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 504 + directory + b"\0" * 1024


@pytest.mark.parametrize(("body", "says"), [
    (_ods(), "OpenDocument spreadsheet (.ods)"),
    (b"ID,Step,Topic,Question\npast_misuse,1,Product,Yes\n", "text file (CSV"),
    ("\ufeffID;Step;Answer\r\npast_misuse;1;Ja\r\n".encode("utf-8"), "text file (CSV"),
    (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "PDF"),
    (_encrypted_xlsx(), "password"),
    (_xls(), "Excel 97-2003 workbook (.xls)"),
], ids=["ods", "csv", "csv-semicolon-bom", "pdf", "encrypted", "xls"])
def test_a_workbook_saved_in_the_wrong_format_is_named(app, client, auth_headers, screened, body, says):
    before = counts(app)
    response = upload(client, auth_headers, screened["id"], body)
    payload = response.get_json()
    assert (response.status_code, payload["code"]) == (415, "unsupported_media_type"), payload
    assert says in payload["message"] and ".xlsx" in payload["message"], payload["message"]
    if says == "password":
        assert ".xls)" not in payload["message"]
    if says.startswith("Excel 97"):
        assert "password" not in payload["message"]
    assert counts(app) == before


@pytest.mark.parametrize("template_id", ["state-dept-2020", "eu-2021-821-art5", "bis-kyc-red-flags"])
def test_the_instructions_say_how_a_libreoffice_user_saves_and_that_a_resend_is_safe(template_id):
    from hrdd.checklists.workbook import build_workbook
    from tests.conftest import load_fixture
    from tests.test_checklists import TEMPLATES

    ws = open_xlsx(build_workbook(load_fixture("checklist_screening_eg.json"), TEMPLATES[template_id]))[
        "How to fill this in"]
    uploading = next(ws.cell(row=r, column=2).value for r in range(1, ws.max_row + 1)
                     if ws.cell(row=r, column=1).value == "Uploading")
    assert ".ods" in uploading and "LibreOffice" in uploading
    assert "every cell to correct, on every sheet, at once" in uploading
    assert "same file again" in uploading


def test_a_renamed_sheet_is_named_with_the_name_to_give_it_back(app, client, auth_headers, screened):
    # LibreOffice does not keep the workbook's structure lock, so a sheet can be renamed there.
    def rename(wb):
        wb["Questions"].title = "Fragen"

    before = counts(app)
    body = upload(client, auth_headers, screened["id"],
                  fill(download(client, auth_headers, screened["id"]), {"past_misuse": "Yes"}, rename)).get_json()
    assert body["code"] == "invalid_checklist"
    assert "'Fragen'" in body["message"] and "rename" in body["message"] and "'Questions'" in body["message"]
    assert counts(app) == before
