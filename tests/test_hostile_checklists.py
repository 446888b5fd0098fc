"""Hostile checklist uploads beyond tests/test_checklists.py's refusals: XML entity tricks inside the xlsx
parts, encrypted or exotic zip entries, corrupt streams, sparse-sheet CPU bombs and hostile cell text.
Each is refused with a 4xx naming the problem (or read safely), and a refusal stores nothing.
"""

from __future__ import annotations

import io
import re
import struct
import time
import zipfile

import pytest
from openpyxl import load_workbook

from tests.conftest import load_fixture

pytestmark = pytest.mark.api
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LAUGHS = ('<!DOCTYPE lolz [<!ENTITY lol0 "lol">'
          + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)) + "]>")
XXE = '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


@pytest.fixture
def screened(client, auth_headers):
    response = client.post("/v1/screenings", json=load_fixture("transaction_egypt_biometric.json"),
                           headers=auth_headers("crm"))
    assert response.status_code == 201
    return response.get_json()


@pytest.fixture
def workbook(client, auth_headers, screened) -> bytes:
    response = client.get(f"/v1/screenings/{screened['id']}/checklist.xlsx", headers=auth_headers("export"))
    assert response.status_code == 200
    return response.data


def upload(client, auth_headers, screening_id: str, data: bytes):
    return client.post(f"/v1/screenings/{screening_id}/checklist", data=data,
                       headers={**auth_headers("export"), "Content-Type": XLSX})


def counts(app):
    from hrdd.checklists.evidence import count_uploads

    store = app.extensions["hrdd"].store
    return store.count_screenings(), count_uploads(store)


def parts(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: archive.read(info.filename) for info in archive.infolist()}


def pack(entries: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in entries.items():
            archive.writestr(name, content)
    return out.getvalue()


def sheet_part(entries: dict[str, bytes], title: str) -> str:
    """The zip path of the worksheet called ``title``."""
    workbook = entries["xl/workbook.xml"].decode()
    rid = re.search(rf'name="{re.escape(title)}"[^>]*r:id="([^"]+)"', workbook).group(1)
    rels = entries["xl/_rels/workbook.xml.rels"].decode()
    target = re.search(rf'<Relationship[^>]*Id="{rid}"[^>]*Target="([^"]+)"', rels) or \
        re.search(rf'<Relationship[^>]*Target="([^"]+)"[^>]*Id="{rid}"', rels)
    return "xl/" + target.group(1).lstrip("/").removeprefix("xl/")


def with_prolog(xml: bytes, prolog: str, body_edit=None) -> bytes:
    """``xml`` with a DOCTYPE inserted after its XML declaration (and its body edited)."""
    text = xml.decode()
    end = text.index("?>") + 2 if text.startswith("<?xml") else 0
    text = text[:end] + prolog + text[end:]
    return (body_edit(text) if body_edit else text).encode()


def assert_refused(app, response, before, status: int, code: str, *words: str) -> None:
    payload = response.get_json()
    assert (response.status_code, payload["code"]) == (status, code), payload
    for word in words:
        assert word in payload["message"], payload["message"]
    assert "root:" not in payload["message"]  # /etc/passwd never echoed
    assert counts(app) == before


@pytest.mark.parametrize("sheet", ["Questions", "hrdd_meta", "Red flags", "Summary"])
@pytest.mark.parametrize("prolog, use", [(LAUGHS, "&lol9;"), (XXE, "&xxe;")])
def test_entity_tricks_in_a_worksheet_are_refused(app, client, auth_headers, screened, workbook, sheet, prolog, use):
    entries = parts(workbook)
    name = sheet_part(entries, sheet)
    # The entity is declared and used inside a cell, where a parser that expanded it would store it.
    entries[name] = with_prolog(entries[name], prolog,
                                lambda t: re.sub(r"<t>([^<]*)</t>", rf"<t>\1{use}</t>", t, count=1)
                                if "<t>" in t else t.replace("<v>", f"<v>{use}", 1))
    before = counts(app)
    started = time.monotonic()
    response = upload(client, auth_headers, screened["id"], pack(entries))
    assert_refused(app, response, before, 422, "invalid_checklist", "could not be read")
    assert time.monotonic() - started < 10


@pytest.mark.parametrize("part", ["[Content_Types].xml", "xl/workbook.xml", "xl/styles.xml", "docProps/core.xml",
                                  "xl/_rels/workbook.xml.rels"])
def test_entities_in_package_parts_are_never_expanded(app, client, auth_headers, screened, workbook, part):
    """Parts read with lxml (entities not resolved) or not at all: the upload is read as it would be without."""
    entries = parts(workbook)
    entries[part] = with_prolog(entries[part], XXE + LAUGHS.replace("<!DOCTYPE lolz [", "").replace("]>", ""))
    before = counts(app)
    response = upload(client, auth_headers, screened["id"], pack(entries))
    if response.status_code == 201:
        stored = app.extensions["hrdd"].store.get_screening(response.get_json()["id"])
        assert "root:" not in str(stored) and "lollol" not in str(stored)
    else:
        assert_refused(app, response, before, response.status_code, response.get_json()["code"])
        assert 400 <= response.status_code < 500


def _patch_headers(data: bytes, edit) -> bytes:
    """Apply ``edit(buffer, offset, central)`` to every local and central directory header of a zip."""
    buffer = bytearray(data)
    for signature, central in ((b"PK\x03\x04", False), (b"PK\x01\x02", True)):
        at = buffer.find(signature)
        while at >= 0:
            edit(buffer, at, central)
            at = buffer.find(signature, at + 4)
    return bytes(buffer)


def _encrypted(buffer, at, central):
    buffer[at + (8 if central else 6)] |= 0x1


def _deflate64(buffer, at, central):
    offset = at + (10 if central else 8)
    buffer[offset:offset + 2] = struct.pack("<H", 9)


@pytest.mark.parametrize("edit, word", [(_encrypted, "encrypted"), (_deflate64, "compression method")])
def test_encrypted_or_exotically_compressed_entries_are_refused(app, client, auth_headers, screened, workbook,
                                                                edit, word):
    before = counts(app)
    response = upload(client, auth_headers, screened["id"], _patch_headers(workbook, edit))
    assert_refused(app, response, before, 415, "unsupported_media_type", word)


def test_a_corrupt_compressed_sheet_is_refused(app, client, auth_headers, screened, workbook):
    entries = parts(workbook)
    name = sheet_part(entries, "Questions")
    data = bytearray(pack(entries))
    at = data.find(name.encode()) + len(name) + 20
    data[at:at + 24] = b"\xff" * 24
    before = counts(app)
    response = upload(client, auth_headers, screened["id"], bytes(data))
    assert_refused(app, response, before, 422, "invalid_checklist")


def test_too_many_parts_is_refused(app, client, auth_headers, screened, workbook):
    entries = {**parts(workbook), **{f"xl/media/image{i}.png": b"" for i in range(1001)}}
    before = counts(app)
    response = upload(client, auth_headers, screened["id"], pack(entries))
    assert_refused(app, response, before, 413, "uncompressed_too_large", "parts")


def test_a_sparse_sheet_reaching_the_last_cell_is_read_quickly(app, client, auth_headers, screened, workbook):
    """One cell at XFD1048576 (a 10 KB upload) used to cost minutes of CPU walking empty cells."""
    entries = parts(workbook)
    name = sheet_part(entries, "Questions")
    text = entries[name].decode()
    text = re.sub(r'<dimension ref="[^"]*"/>', '<dimension ref="A1:XFD1048576"/>', text)
    text = text.replace("</sheetData>", '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>far</t></is>'
                                        "</c></row></sheetData>")
    entries[name] = text.encode()
    started = time.monotonic()
    response = upload(client, auth_headers, screened["id"], pack(entries))
    assert response.status_code == 201, response.get_json()
    assert time.monotonic() - started < 10
    assert "far" not in str(response.get_json()["checklist_upload"])


def _edit_cells(data: bytes, edits: dict[str, str]) -> bytes:
    """Write text into the Questions sheet's notes column by question id (as a user would in Excel)."""
    wb = load_workbook(io.BytesIO(data))
    ws = wb["Questions"]
    header = [c.value for c in ws[1]]
    notes = header.index("Evidence / notes") + 1 if "Evidence / notes" in header else 7
    rows = {ws.cell(row=r, column=1).value: r for r in range(2, ws.max_row + 1)}
    for qid, text in edits.items():
        ws.cell(row=rows[qid], column=notes).value = text
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_escaped_control_characters_in_cells_are_read_as_text(app, client, auth_headers, screened, workbook):
    """OOXML's _xHHHH_ escapes could decode to NUL (refused by PostgreSQL) or control characters: they are
    kept as the literal text the cell shows, and formula-looking text stays text."""
    entries = parts(_edit_cells(workbook, {"past_misuse": "MARKER"}))
    hostile = "notes_x0000_with NUL _x0007_ and =cmd|' /C calc'!A0"
    part = next(n for n, b in entries.items() if b"MARKER" in b)
    entries[part] = entries[part].replace(b"MARKER", hostile.replace("&", "&amp;").replace("'", "&apos;").encode())
    response = upload(client, auth_headers, screened["id"], pack(entries))
    assert response.status_code == 201, response.get_json()
    upload_id = response.get_json()["checklist_upload"]["id"]
    from hrdd.checklists.evidence import uploads_of

    recorded = [u for u in uploads_of(app.extensions["hrdd"].store, screened["id"]) if u["id"] == upload_id][0]
    notes = recorded["record"]["responses"]["past_misuse"]["evidence_notes"]
    assert notes == hostile


def test_multipart_filename_with_control_characters(app, client, auth_headers, screened, workbook):
    response = client.post(f"/v1/screenings/{screened['id']}/checklist", headers=auth_headers("export"),
                           data={"file": (io.BytesIO(workbook), "check\x00list\x1b[31m.xlsx", XLSX)},
                           content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    from hrdd.checklists.evidence import uploads_of

    names = [u["filename"] for u in uploads_of(app.extensions["hrdd"].store, screened["id"])]
    assert names and all("\x00" not in n and "\x1b" not in n for n in names)


# ---------------------------------------------------------------- superseded screenings

def _order_with_past_misuse(client, auth_headers):
    order = {**load_fixture("transaction_egypt_biometric.json"), "stage": "order", "answers": {"past_misuse": "yes"}}
    response = client.post("/v1/screenings", json=order, headers=auth_headers("crm"))
    assert response.status_code == 201
    return response.get_json()


def test_an_older_screenings_checklist_cannot_replace_a_newer_screening(app, client, auth_headers, screened,
                                                                        workbook):
    """Uploading the quote's checklist after a blocked order would re-screen on the quote's facts and release it."""
    order = _order_with_past_misuse(client, auth_headers)
    assert order["transaction_id"] == screened["transaction_id"] and order["gate"] == "block"
    before = counts(app)
    response = upload(client, auth_headers, screened["id"], workbook)
    assert_refused(app, response, before, 409, "checklist_superseded", order["id"], "download")
    assert response.get_json()["errors"]["superseded_by"] == [order["id"]]
    governing = client.get(f"/v1/screenings/{screened['id']}", headers=auth_headers("crm")).get_json()
    assert governing["gate"] == "block" and governing["superseded_by"] == order["id"]


def _answer(data: bytes, qid: str, value: str) -> bytes:
    wb = load_workbook(io.BytesIO(data))
    ws = wb["Questions"]
    row = next(r for r in range(2, ws.max_row + 1) if ws.cell(row=r, column=1).value == qid)
    ws.cell(row=row, column=6).value = value
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def test_a_second_copy_of_the_same_checklist_cannot_drop_the_first_ones_answers(app, client, auth_headers,
                                                                                screened, workbook):
    first = upload(client, auth_headers, screened["id"], _answer(workbook, "past_misuse", "Yes"))
    assert first.status_code == 201 and first.get_json()["gate"] == "block"
    before = counts(app)
    second = upload(client, auth_headers, screened["id"], _answer(workbook, "accepts_safeguards", "Yes"))
    assert_refused(app, second, before, 409, "checklist_superseded", first.get_json()["id"])


def test_a_race_between_two_uploads_is_decided_when_the_screening_is_stored(app, client, auth_headers, screened,
                                                                            workbook, monkeypatch):
    """The second upload passed the early check before the first was stored: the check under the lock refuses it."""
    first = upload(client, auth_headers, screened["id"], _answer(workbook, "past_misuse", "Yes")).get_json()
    store = app.extensions["hrdd"].store
    monkeypatch.setattr(store, "latest_screening", lambda transaction_id: screened)
    before = counts(app)
    response = upload(client, auth_headers, screened["id"], _answer(workbook, "accepts_safeguards", "Yes"))
    assert_refused(app, response, before, 409, "checklist_superseded", first["id"])


# ---------------------------------------------------------------- formulas and header rows

def _cell_xml(entries: dict[str, bytes], workbook: bytes, qid: str, column: str, xml: str) -> str:
    """Replace the Questions sheet's cell ``column`` of question ``qid`` with raw cell XML."""
    ws = load_workbook(io.BytesIO(workbook))["Questions"]
    row = next(r for r in range(2, ws.max_row + 1) if ws.cell(row=r, column=1).value == qid)
    name = sheet_part(entries, "Questions")
    ref = f"{column}{row}"
    text, found = re.subn(rf'<c r="{ref}"[^>]*?(?:/>|>.*?</c>)', xml.replace("REF", ref), entries[name].decode(),
                          count=1)
    assert found == 1
    entries[name] = text.encode()
    return ref


def test_an_answer_given_by_a_formula_is_refused_naming_the_cell(app, client, auth_headers, screened, workbook):
    """Excel shows the formula's result (Yes); the file's cached value says No. Neither is trusted."""
    entries = parts(workbook)
    ref = _cell_xml(entries, workbook, "past_misuse", "F",
                    '<c r="REF" t="str"><f>IF(TRUE,"Yes","Yes")</f><v>No</v></c>')
    before = counts(app)
    response = upload(client, auth_headers, screened["id"], pack(entries))
    assert_refused(app, response, before, 422, "invalid_checklist", f"Questions!{ref}", "formula")


def test_a_formula_in_the_notes_is_refused_too(app, client, auth_headers, screened, workbook):
    entries = parts(workbook)
    ref = _cell_xml(entries, workbook, "past_misuse", "G", '<c r="REF" t="str"><f>"a"&amp;"b"</f><v>ab</v></c>')
    before = counts(app)
    response = upload(client, auth_headers, screened["id"], pack(entries))
    assert_refused(app, response, before, 422, "invalid_checklist", f"Questions!{ref}")


def _extra_column(header: str):
    def edit(data: bytes) -> bytes:
        wb = load_workbook(io.BytesIO(data))
        ws = wb["Questions"]
        ws.cell(row=1, column=13, value=header)
        for r in range(2, ws.max_row + 1):
            ws.cell(row=r, column=13, value="No")
        ws.column_dimensions["M"].hidden = True
        out = io.BytesIO()
        wb.save(out)
        return out.getvalue()
    return edit


@pytest.mark.parametrize("header", ["Answer", "answer", "Comments"])
def test_a_hidden_extra_column_is_refused(app, client, auth_headers, screened, workbook, header):
    """A hidden second "Answer" column later in the row used to win over the visible one."""
    before = counts(app)
    response = upload(client, auth_headers, screened["id"], _extra_column(header)(_answer(workbook, "past_misuse",
                                                                                          "Yes")))
    assert_refused(app, response, before, 422, "invalid_checklist", "'Questions'", "header row")


# ---------------------------------------------------------------- unpacked size per part

def test_a_sheet_row_of_millions_of_cells_is_refused_before_parsing(app, client, auth_headers, screened, workbook):
    entries = parts(workbook)
    name = sheet_part(entries, "Questions")
    entries[name] = entries[name].replace(b"</sheetData>",
                                          b'<row r="1900">' + b"<c><v>1</v></c>" * 2_000_000 + b"</row></sheetData>")
    body = pack(entries)
    assert len(body) < 200_000
    before = counts(app)
    started = time.process_time()
    response = upload(client, auth_headers, screened["id"], body)
    assert_refused(app, response, before, 413, "uncompressed_too_large", name)
    assert time.process_time() - started < 2


def test_a_styles_part_of_half_a_million_formats_is_refused_before_parsing(app, client, auth_headers, screened,
                                                                            workbook):
    entries = parts(workbook)
    entries["xl/styles.xml"] = re.sub(rb'<cellXfs count="\d+">', b'<cellXfs count="500001">' + b"<xf/>" * 500_000,
                                      entries["xl/styles.xml"])
    before = counts(app)
    started = time.process_time()
    response = upload(client, auth_headers, screened["id"], pack(entries))
    assert_refused(app, response, before, 413, "uncompressed_too_large", "xl/styles.xml")
    assert time.process_time() - started < 2


def _edited(workbook: bytes, edit) -> bytes:
    wb = load_workbook(io.BytesIO(workbook))
    edit(wb)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _question_row(ws, qid: str) -> int:
    return next(r for r in range(2, ws.max_row + 1) if ws.cell(row=r, column=1).value == qid)


def _signoff_row(ws, role: str) -> int:
    return next(r for r in range(1, ws.max_row + 1) if ws.cell(row=r, column=1).value == role)


@pytest.mark.parametrize("column, value, words", [
    ("K", "next week", ["due date", "'next week'", "not a date"]),
    ("K", "31/12/2026", ["due date", "not a date"]),
    ("L", "Finished", ["status", "'Finished'", "Open, In progress, Done"]),
])
def test_a_due_date_or_status_outside_the_cells_rules_is_refused_naming_the_cell(
        app, client, auth_headers, screened, workbook, column, value, words):
    def edit(wb):
        ws = wb["Questions"]
        ws[f"{column}{_question_row(ws, 'past_misuse')}"] = value
    row = _question_row(load_workbook(io.BytesIO(workbook))["Questions"], "past_misuse")
    before = counts(app)
    response = upload(client, auth_headers, screened["id"], _edited(workbook, edit))
    assert_refused(app, response, before, 422, "validation_error", f"Questions!{column}{row}")
    [(cell, [message])] = response.get_json()["errors"]["cells"].items()
    assert cell == f"Questions!{column}{row} (past_misuse)"
    assert all(word in message for word in words), message


@pytest.mark.parametrize("name, day, cell, words", [
    (None, "tomorrow", "D", ["sign-off date", "'tomorrow'", "not a date"]),
    ("Alice Export", "tomorrow", "D", ["sign-off date", "'tomorrow'"]),
    (None, None, "B", ["no name"]),  # a comment alone
])
def test_a_sign_off_that_is_no_signature_is_refused_naming_the_cell(
        app, client, auth_headers, screened, workbook, name, day, cell, words):
    row = _signoff_row(load_workbook(io.BytesIO(workbook))["Summary"], "Preparer")

    def edit(wb):
        ws = wb["Summary"]
        ws[f"B{row}"], ws[f"C{row}"], ws[f"D{row}"] = name, "Checked with legal", day
    before = counts(app)
    response = upload(client, auth_headers, screened["id"], _edited(workbook, edit))
    assert_refused(app, response, before, 422, "validation_error", f"Summary!{cell}{row}")
    message = " ".join(response.get_json()["errors"]["signoff"][f"Summary!{cell}{row}"])
    assert all(word in message for word in words), message


def test_real_dates_and_statuses_are_stored_as_such(app, client, auth_headers, screened, workbook):
    from datetime import date, datetime

    from hrdd.checklists.evidence import uploads_of

    def edit(wb):
        ws = wb["Questions"]
        row = _question_row(ws, "past_misuse")
        ws[f"K{row}"], ws[f"L{row}"] = datetime(2027, 1, 15), "in progress"
        ws[f"K{_question_row(ws, 'exports_to_abusers')}"] = "2027-02-01"
        summary = wb["Summary"]
        signed = _signoff_row(summary, "Preparer")
        summary[f"B{signed}"], summary[f"D{signed}"] = "Alice Export", date(2026, 12, 7)
    response = upload(client, auth_headers, screened["id"], _edited(workbook, edit))
    assert response.status_code == 201, response.get_json()
    [row] = uploads_of(app.extensions["hrdd"].store, screened["id"])
    responses = row["record"]["responses"]
    assert responses["past_misuse"]["due_date"] == "2027-01-15" and responses["past_misuse"]["status"] == "In progress"
    assert responses["exports_to_abusers"]["due_date"] == "2027-02-01"
    assert row["record"]["signoff"]["preparer"] == {"name": "Alice Export", "comment": None, "date": "2026-12-07"}
