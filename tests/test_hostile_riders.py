"""Rider variables with markup, over HTTP: query options and transaction text end up as literal text in the
Word file (no new elements, fields, hyperlinks or template substitutions), and unusable options are a 422.
"""

from __future__ import annotations

import io
import re
import zipfile
from xml.etree import ElementTree

import pytest

from tests.conftest import load_fixture
from tests.test_riders import OPTIONS

pytestmark = pytest.mark.api
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
MARKUP = ('</w:t></w:r><w:r><w:instrText>HYPERLINK "http://evil.example"</w:instrText></w:r><w:r><w:t>'
          ' {{seller_name}} [[audit]] **bold** <![CDATA[x]]> &amp; &lt; "q" \'a\' \u202eevil\u202c 👁')


def _document_xml(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return archive.read("word/document.xml").decode("utf-8")


def _texts(xml: str) -> str:
    root = ElementTree.fromstring(xml)
    return "".join(node.text or "" for node in root.iter(f"{W}t"))


@pytest.fixture
def hostile_screening(client, auth_headers):
    body = load_fixture("transaction_egypt_biometric.json")
    body["end_user"]["name"] = "Ministry " + MARKUP[:200]
    body["parties"][0]["name"] = "Partner " + MARKUP[:250]
    body["items"][0]["name"] = "Camera " + MARKUP[:250]
    body["intended_use"] = "Use " + MARKUP
    response = client.post("/v1/screenings", json=body, headers=auth_headers("crm"))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_markup_in_options_and_transaction_text_stays_text(client, auth_headers, hostile_screening):
    options = {**OPTIONS, "buyer_name": "Buyer " + MARKUP[:150], "agreement_reference": "{{cure_period}} <w:p/>"}
    response = client.get(f"/v1/screenings/{hostile_screening['id']}/rider.docx", query_string=options,
                          headers=auth_headers("contracts"))
    assert response.status_code == 200, response.get_json()
    xml = _document_xml(response.data)
    text = _texts(xml)  # well-formed XML, or this raises
    assert "Buyer </w:t></w:r><w:r><w:instrText>HYPERLINK" in text
    assert "{{cure_period}} <w:p/>" in text
    assert "Use " + MARKUP in text
    assert "Partner </w:t></w:r><w:r><w:instrText>HYPERLINK" in text  # the party, named in the rider
    assert "evil.example" not in "".join(n.text or "" for n in ElementTree.fromstring(xml).iter(f"{W}instrText"))
    assert not re.search(r"<w:hyperlink\b", xml)


@pytest.mark.parametrize("option, value, message", [
    ("buyer_name", "Acme\x07Bell", "control characters"),
    ("buyer_name", "Acme\x1b[31mRed", "control characters"),
    ("buyer_name", "A" * 5000, "at most"),
    ("cure_period", "²", "whole number"),
    ("cure_period", "9" * 5000, "whole number"),
    ("cure_period", "-1", "between"),
    ("seller_nam", "typo", "unknown rider option"),
])
def test_unusable_options_are_a_422_naming_them(client, auth_headers, hostile_screening, option, value, message):
    response = client.get(f"/v1/screenings/{hostile_screening['id']}/rider.docx",
                          query_string={**OPTIONS, option: value}, headers=auth_headers("contracts"))
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    body = response.get_json()
    assert option in body["errors"] and message in str(body["errors"][option])


def test_an_option_given_twice_is_a_400_not_its_first_value(client, auth_headers, hostile_screening):
    # "Evil Corp" was dropped without a word and the rider named the first seller.
    query = [*((k, v) for k, v in OPTIONS.items() if k != "seller_name"), ("seller_name", "Acme"),
             ("seller_name", "Evil Corp")]
    response = client.get(f"/v1/screenings/{hostile_screening['id']}/rider.docx", query_string=query,
                          headers=auth_headers("contracts"))
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert list(response.get_json()["errors"]) == ["seller_name"]
    assert "'seller_name' given more than once" in response.get_json()["message"]


def test_nul_in_an_option_is_refused_before_the_rider_is_built(client, auth_headers, hostile_screening):
    response = client.get(f"/v1/screenings/{hostile_screening['id']}/rider.docx",
                          query_string={**OPTIONS, "buyer_name": "Acme\x00"}, headers=auth_headers("contracts"))
    assert response.status_code == 400 and "NUL" in response.get_json()["message"]


def test_the_workspace_rider_form_echoes_hostile_values_as_text(app, client, auth_headers, hostile_screening,
                                                                  monkeypatch):
    """The form shows what was typed (and the hostile Buyer the transaction suggests) escaped, never as HTML."""
    from tests.workspace_helpers import csrf_from, login, make_user
    for name in OPTIONS:
        monkeypatch.delenv(f"HRDD_RIDER_{name.upper()}", raising=False)
    make_user(app)
    login(client)
    link = f"/workspace/screenings/{hostile_screening['id']}/rider"
    page = client.get(link).get_data(as_text=True)
    assert "<w:instrText>" not in page and "&lt;/w:t&gt;&lt;/w:r&gt;" in page  # the suggested Buyer, escaped
    script = '"><script>alert(1)</script>'
    response = client.post(link, data={"csrf_token": csrf_from(client, link), "seller_name": script})
    html = response.get_data(as_text=True)
    assert response.status_code == 422 and "<script>" not in html
    assert 'value="&#34;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in html
    assert client.get("/workspace/screenings/..%2F..%2Fv1%2Fscreenings/rider").status_code == 404


def test_an_evidence_pattern_that_is_not_text_is_named(tmp_path):
    """evidence_omit is a list of regular expressions a lawyer edits: an entry that is not one is named."""
    import shutil

    from hrdd.riders import DEFAULT_CLAUSES_DIR, ClauseLibraryError, load_library
    clauses = tmp_path / "clauses"
    shutil.copytree(DEFAULT_CLAUSES_DIR, clauses)
    frame = clauses / "rider.yaml"
    frame.write_text(frame.read_text(encoding="utf-8").replace("  evidence_omit:\n", "  evidence_omit:\n    - 42\n"),
                     encoding="utf-8")
    with pytest.raises(ClauseLibraryError, match="findings.evidence_omit must be a list of regular expressions"):
        load_library(clauses)


def test_a_confidential_flag_cannot_be_restated(tmp_path):
    """RF-7.1 is always withheld: a lawyer restating it (with words that could identify a report) is told so."""
    import shutil

    from hrdd.riders import DEFAULT_CLAUSES_DIR, ClauseLibraryError, load_library
    clauses = tmp_path / "clauses"
    shutil.copytree(DEFAULT_CLAUSES_DIR, clauses)
    frame = clauses / "rider.yaml"
    frame.write_text(frame.read_text(encoding="utf-8").replace(
        "  restated:\n", "  restated:\n    RF-7.1:\n      title: Grievance\n      evidence: Report received yesterday\n"),
        encoding="utf-8")
    with pytest.raises(ClauseLibraryError, match="findings.restated.RF-7.1: the flag is withheld"):
        load_library(clauses)
