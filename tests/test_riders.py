"""Contract riders: clause selection, rendering, document structure, safety, the API, the CLI and LibreOffice."""

from __future__ import annotations

import copy
import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from docx import Document
from docx.oxml.ns import qn

from hrdd.riders import (
    DEFAULT_CLAUSES_DIR,
    ClauseLibraryError,
    Facts,
    VariableError,
    build_document,
    build_rider,
    load_library,
    select,
)
from hrdd.riders.ooxml import read_custom_properties
from hrdd.riders.vocabulary import CAPABILITY_IDS, RED_FLAG_IDS
from tests.conftest import load_fixture

OPTIONS = {
    "seller_name": "Acme Vision Ltd",
    "buyer_name": "Nile Integrated Systems LLC",
    "agreement_reference": "AV-2026-0147",
    "governing_law": "the laws of England and Wales",
    "grievance_contact": "https://acme-vision.example/grievance",
    "cure_period": "30",
}
W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"


@pytest.fixture(scope="module")
def library():
    return load_library(DEFAULT_CLAUSES_DIR)


def screening(name: str) -> dict:
    return copy.deepcopy(load_fixture(f"screening_{name}.json"))


def ids(selection) -> set[str]:
    return {c.id for c in selection.clauses}


def all_text(document) -> str:
    """Body paragraphs, table cells and footers, as a reader sees them (field results included)."""
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.extend(cell.text for cell in row.cells)
    parts.extend(p.text for s in document.sections for p in s.footer.paragraphs)
    return "\n".join(parts)


def instructions(element) -> list[str]:
    return [" ".join(t.text.split()) for t in element.iter(f"{W}instrText")]


def clause_headings(document):
    return [p for p in document.paragraphs
            if p.style.name == "Heading 1" and p._p.pPr is not None and p._p.pPr.numPr is not None]


# -- selection ----------------------------------------------------------------------------------------

def test_low_risk_rider_leaves_out_audit_training_and_cut_off(library):
    chosen = ids(select(library, Facts.from_screening(screening("proceed_de"))))
    assert {"definitions", "end-use", "export-compliance", "no-transfer", "grievance", "reporting",
            "survival", "general"} <= chosen
    assert not chosen & {"audit", "training", "cut-off", "remediation", "human-rights-compliance",
                         "diversion-controls", "notification"}


def test_escalated_rider_carries_audit_training_and_cut_off(library):
    selection = select(library, Facts.from_screening(screening("escalated_eg")))
    chosen = ids(selection)
    assert {"audit", "training", "cut-off", "remediation", "human-rights-compliance", "notification",
            "diversion-controls", "technical-safeguards", "data-governance"} <= chosen
    assert [t.capability for t in selection.technical] == ["biometric_identification"]
    assert "government-end-user" in {r.id for r in selection.recitals}


def test_safeguards_rider_has_cut_off_but_not_audit_or_training(library):
    chosen = ids(select(library, Facts.from_screening(screening("safeguards_co"))))
    assert {"cut-off", "remediation", "human-rights-compliance", "notification"} <= chosen
    assert not chosen & {"audit", "training", "diversion-controls"}


def test_private_end_users_own_use_is_not_held_to_the_state_surveillance_tests(library):
    # A retailer's footfall analytics with a diversion flag: no judge authorises each use of a shop's
    # analytics, and the no-transfer clause does not speak of "any other government ministry".
    private = Facts(decision="proceed_with_safeguards", flags=frozenset({"RF-4.5"}),
                    capabilities=frozenset({"data_analytics"}))
    assert "human-rights-compliance" not in ids(select(library, private))
    for public in (replace(private, government=True), replace(private, security_sector=True),
                   replace(private, flags=frozenset({"RF-4.2"})), replace(private, decision="escalate")):
        assert "human-rights-compliance" in ids(select(library, public))
    document, _ = build_document(screening("proceed_de"), OPTIONS, library)
    assert "any other government ministry" not in all_text(document)
    assert "security or intelligence body other than the End-User itself" in all_text(document)


@pytest.mark.parametrize("decision", ["proceed", "proceed_with_safeguards", "escalate", "do_not_proceed"])
def test_more_risk_never_means_fewer_clauses(library, decision):
    order = ["proceed", "proceed_with_safeguards", "escalate", "do_not_proceed"]
    base = Facts(decision="proceed", capabilities=frozenset({"it_infrastructure"}))
    lower = ids(select(library, base))
    higher = ids(select(library, Facts(decision=decision, capabilities=base.capabilities)))
    assert lower <= higher
    if order.index(decision) >= 2:
        assert {"audit", "training", "cut-off"} <= higher


@pytest.mark.parametrize("flag,expected", [
    ("RF-4.1", {"diversion-controls", "audit"}),
    ("RF-4.3", {"diversion-controls", "audit"}),
    ("RF-4.5", {"diversion-controls", "audit"}),
    ("RF-4.2", {"diversion-controls"}),
    ("RF-1.1", {"audit"}),
    ("RF-1.4", {"audit"}),
    ("RF-6.1", {"cut-off"}),
])
def test_red_flags_bring_their_clauses(library, flag, expected):
    plain = ids(select(library, Facts(decision="proceed")))
    flagged = ids(select(library, Facts(decision="proceed", flags=frozenset({flag}))))
    assert expected <= flagged
    assert not expected & plain


def test_security_sector_with_high_risk_capability_needs_training(library):
    facts = Facts(decision="proceed", security_sector=True, capabilities=frozenset({"location_tracking"}))
    assert "training" in ids(select(library, facts))
    facts = Facts(decision="proceed", security_sector=True, capabilities=frozenset({"sensors"}))
    assert "training" not in ids(select(library, facts))


@pytest.mark.parametrize("capability", [c for c in CAPABILITY_IDS if c != "none"])
def test_each_capability_has_its_technical_schedule_part(library, capability):
    selection = select(library, Facts(decision="proceed", capabilities=frozenset({capability})))
    assert [t.capability for t in selection.technical] == [capability]
    assert "technical-safeguards" in ids(selection)


def test_no_surveillance_capability_means_no_technical_schedule(library):
    selection = select(library, Facts(decision="proceed", capabilities=frozenset({"none"})))
    assert selection.technical == () and "technical-safeguards" not in ids(selection)
    assert selection.schedules == {"schedule:findings": 1}


def test_a_referenced_clause_is_pulled_in(tmp_path):
    clauses = tmp_path / "clauses"
    shutil.copytree(DEFAULT_CLAUSES_DIR, clauses)
    reporting = clauses / "reporting.md"
    reporting.write_text(reporting.read_text().rstrip() + "\n\nThe audit rights in clause [[audit]] are not affected.\n")
    selection = select(load_library(clauses), Facts(decision="proceed"))
    assert "audit" in ids(selection) and selection.pulled_in == ("audit",)


# -- rendering ----------------------------------------------------------------------------------------

APPROVAL = {"decision_id": "dec_1", "case_id": "case_1", "outcome": "approve_with_conditions",
            "label": "Approve with conditions", "gate": "release_with_conditions",
            "decided_at": "2026-12-01T09:30:00Z", "decided_by": "user:amira",
            "conditions": "Deploy only at ministry building entrances; no connection to street cameras.",
            "safeguards": [{"id": "audit", "title": "Audit, inspection and records"}],
            "information_requested": None}


def everything() -> dict:
    """A screening that selects every clause, recital and technical part of the library."""
    s = screening("blocked_ae")
    s["red_flags"] += [{"id": f, "step": 0, "severity": "medium", "title": f"flag {f}", "evidence": "test",
                        "source": "test"} for f in RED_FLAG_IDS if f not in {x["id"] for x in s["red_flags"]}]
    s["transaction"]["items"].append({"sku": "ALL-1", "name": "Everything Suite",
                                      "capabilities": list(CAPABILITY_IDS)})
    s["review"] = APPROVAL  # a reviewer's conditions of approval in force
    return s


def test_every_clause_renders_with_variables_substituted(library):
    document, selection = build_document(everything(), OPTIONS, library)
    assert {c.id for c in selection.texts()} == {c.id for c in library.all_texts()}
    text = all_text(document)
    headings = [p.text for p in clause_headings(document)]
    assert headings == [c.title for c in library.clauses]
    for part in library.technical:
        assert part.title in text
    assert "{{" not in text and "[[" not in text and "**" not in text
    for value in OPTIONS.values():
        if value != "30":
            assert value in text
    assert "within 30 days after the Seller's notice" in text
    assert "State Security Bureau of United Arab Emirates" in text
    assert "Mobile Extraction Suite (SKU MX-9) and Everything Suite (SKU ALL-1)" in text
    assert "only for the following purpose: Counter-terrorism investigations" in text


def test_missing_intended_use_uses_the_registry_fallback(library):
    s = screening("proceed_de")
    s["transaction"]["intended_use"] = None
    document, _ = build_document(s, OPTIONS, library)
    assert "only for the following purpose: the purpose described in the Agreement" in all_text(document)


def test_transaction_text_is_inserted_as_text_never_markup(library):
    hostile = 'Ministry **X** {{seller_name}} [[audit]] <w:p/> & "Q"\x07\x1b'
    s = screening("escalated_eg")
    s["transaction"]["end_user"]["name"] = hostile
    s["transaction"]["intended_use"] = "*Lawful* use \\* {{cure_period}}"
    s["red_flags"][0]["evidence"] = "</w:t><w:instrText>HYPERLINK evil</w:instrText>"
    document, _ = build_document(s, OPTIONS, library)
    text = all_text(document)
    assert 'Ministry **X** {{seller_name}} [[audit]] <w:p/> & "Q"' in text
    assert "*Lawful* use \\* {{cure_period}}" in text
    assert "</w:t><w:instrText>HYPERLINK evil</w:instrText>" in text
    assert not any("HYPERLINK" in i for i in instructions(document.element.body))
    bold_runs = [r.text for p in document.paragraphs for r in p.runs if r.bold]
    assert not any("X" == r.strip() for r in bold_runs)


def test_missing_and_bad_options_are_named(library):
    with pytest.raises(VariableError) as missing:
        build_rider(screening("escalated_eg"), {"seller_name": "Acme"}, library, config={})
    assert set(missing.value.errors) == {"buyer_name", "agreement_reference", "governing_law",
                                         "grievance_contact", "cure_period"}
    with pytest.raises(VariableError) as bad:
        build_rider(screening("escalated_eg"), {**OPTIONS, "cure_period": "soon", "sellr_name": "x"}, library,
                    config={})
    assert set(bad.value.errors) == {"cure_period", "sellr_name"}
    assert "whole number" in bad.value.errors["cure_period"][0]


def test_low_risk_rider_does_not_need_a_cure_period(library):
    options = {k: v for k, v in OPTIONS.items() if k != "cure_period"}
    assert build_rider(screening("proceed_de"), options, library, config={})[:2] == b"PK"


def test_options_fall_back_to_configuration(library):
    config = {f"HRDD_RIDER_{k.upper()}": v for k, v in OPTIONS.items()}
    document, _ = build_document(screening("escalated_eg"), {"buyer_name": "Other Buyer SA"}, library, config)
    text = all_text(document)
    assert "Acme Vision Ltd" in text and "Other Buyer SA" in text and "Nile Integrated Systems LLC" not in text


def with_parties() -> dict:
    """The escalated Egypt deal with a consignee named in Greek and a party of no stated country."""
    s = screening("escalated_eg")
    s["transaction"]["parties"] += [{"role": "consignee", "name": "Σύστημα Ασφαλείας Α.Ε.", "country": "GR"},
                                    {"role": "other", "name": "Andes Tráfico S.A.S.", "country": None}]
    return s


PARTY_LABELS = ["Nile Integrated Systems (distributor, United Arab Emirates)",
                "Σύστημα Ασφαλείας Α.Ε. (consignee, Greece)", "Andes Tráfico S.A.S. (other party)"]


def test_the_rider_names_every_party_with_its_role_and_country(library):
    document, _ = build_document(with_parties(), OPTIONS, library)
    text = all_text(document)
    # In the definitions, which the transfer and diversion clauses use.
    assert (f'"Disclosed Parties" means the persons, other than the End-User, disclosed to the Seller for the '
            f'Screening as parties to the transaction, with their roles and countries as stated in Schedule 1, '
            f'namely: {PARTY_LABELS[0]}; {PARTY_LABELS[1]} and {PARTY_LABELS[2]}.') in text
    assert "every Intermediary, including each Disclosed Party other than the Buyer, agrees in writing" in text
    assert "every Intermediary involved in the transaction, each of which is a Disclosed Party" in text
    # In Schedule 1, one line each.
    rows = {row.cells[0].text: row.cells[1].text for table in document.tables for row in table.rows}
    assert rows["Disclosed Parties (role, country)"] == "\n".join(PARTY_LABELS)
    assert "{{" not in text and "[[" not in text


def test_a_rider_with_no_other_party_says_so(library):
    document, _ = build_document(screening("proceed_de"), OPTIONS, library)
    text = all_text(document)
    assert "with their roles and countries as stated in Schedule 1, namely: none." in text
    rows = {row.cells[0].text: row.cells[1].text for table in document.tables for row in table.rows}
    assert rows["Disclosed Parties (role, country)"] == "—"


# -- structure after reopening --------------------------------------------------------------------------

def test_rider_reopens_with_expected_structure(library):
    s = screening("escalated_eg")
    body = build_rider(s, OPTIONS, library)
    document = Document(io.BytesIO(body))
    _, selection = build_document(s, OPTIONS, library)
    paragraphs = document.paragraphs
    assert paragraphs[0].style.name == "Title" and paragraphs[0].text == "Human Rights and End-Use Rider"
    assert paragraphs[1].style.name == "Subtitle" and paragraphs[1].text == "to Agreement AV-2026-0147"
    headings = clause_headings(document)
    assert [h.text for h in headings] == [c.title for c in selection.clauses]
    # Every clause heading is level 0 of the same list; sub-clauses are level 1, items (a) level 2.
    num_ids = {h._p.pPr.numPr.numId.val for h in headings}
    assert len(num_ids) == 1 and {h._p.pPr.numPr.ilvl.val for h in headings} == {0}
    styles = {p.style.name for p in paragraphs}
    assert {"List Number", "List Number 2", "Heading 1", "Heading 2"} <= styles
    numbered = [p for p in paragraphs if p.style.name == "List Number 2"
                and p._p.pPr.numPr is not None and p._p.pPr.numPr.numId.val in num_ids]
    assert numbered and all(p._p.pPr.numPr.ilvl.val == 2 for p in numbered)
    # Each clause heading carries a bookmark; every REF field points at an existing bookmark.
    bookmarks = {b.get(qn("w:name")) for b in document.element.body.iter(qn("w:bookmarkStart"))}
    for clause in selection.clauses:
        assert f"_Ref_{clause.id.replace('-', '_')}" in bookmarks
    refs = [i for i in instructions(document.element.body) if i.startswith("REF ")]
    assert refs and all(r.split()[1] in bookmarks for r in refs)
    assert "REF _Ref_schedule_findings \\h" in refs and "SEQ Schedule \\* ARABIC" in instructions(document.element.body)
    # Recitals cite the UN Guiding Principles and the 2020 guidance.
    text = all_text(document)
    assert "United Nations Guiding Principles on Business and Human Rights" in text
    assert "30 September 2020" in text
    assert "Schedule 1 — Findings" in text and "Schedule 2 — Technical safeguards" in text
    # Findings schedule: every red flag with its title and the public-source figures of its evidence.
    for flag in s["red_flags"]:
        assert flag["id"] in text and flag["title"] in text
    assert "Egypt: Freedom in the World 2025 F (rule of law) 2/16" in text
    # Footer: screening id and live page numbers.
    footer = document.sections[0].footer
    assert s["id"] in footer.paragraphs[0].text
    assert {"PAGE", "NUMPAGES"} <= set(instructions(footer._element))
    # Signature block for both parties.
    signature = document.tables[0]
    assert "Acme Vision Ltd" in signature.cell(0, 0).text and "Nile Integrated" in signature.cell(0, 1).text
    # Core and custom properties trace the signed copy back to its clause texts.
    props = document.core_properties
    assert props.title == "Human Rights and End-Use Rider — AV-2026-0147"
    assert s["id"] in props.subject and "RF-2.1" not in props.keywords and props.identifier == s["id"]
    custom = read_custom_properties(document)
    assert custom["HRDD Screening"] == s["id"]
    assert custom["HRDD Clauses"] == "; ".join(selection.manifest())
    assert "cut-off@1.0.0" in custom["HRDD Clauses"] and "technical/tech-biometric-identification@1.0.0" in custom["HRDD Clauses"]
    assert custom["HRDD Clause Digest"].startswith("sha256:") and len(custom["HRDD Clause Digest"]) == 71


def test_cross_references_show_computed_clause_numbers(library):
    document, selection = build_document(screening("escalated_eg"), OPTIONS, library)
    numbers = selection.numbers
    text = all_text(document)
    assert f"described in clause {numbers['grievance']}, that the Products" in text
    survivors = [str(numbers[c.id]) for c in selection.survivors()]
    assert f"Clauses {', '.join(survivors[:-1])} and {survivors[-1]} survive" in text


def test_digest_changes_when_a_clause_text_changes(tmp_path, library):
    clauses = tmp_path / "clauses"
    shutil.copytree(DEFAULT_CLAUSES_DIR, clauses)
    edited = clauses / "end-use.md"
    edited.write_text(edited.read_text().replace("stifle dissent", "suppress dissent"))
    s = screening("proceed_de")
    before = read_custom_properties(build_document(s, OPTIONS, library)[0])["HRDD Clause Digest"]
    after = read_custom_properties(build_document(s, OPTIONS, load_library(clauses))[0])["HRDD Clause Digest"]
    assert before != after


# -- library validation -----------------------------------------------------------------------------------

def broken_library(tmp_path, name: str, text: str) -> Path:
    clauses = tmp_path / "clauses"
    shutil.copytree(DEFAULT_CLAUSES_DIR, clauses)
    (clauses / name).write_text(text)
    return clauses


@pytest.mark.parametrize("text,message", [
    ("no front matter here\n", "no front matter"),
    ("---\nid: x-y\ntitle: [unclosed\n---\nBody.\n", "not valid YAML"),
    ("---\nid: extra\ntitle: T\nversion: 1.0.0\norder: 1\nrationale: R\nvariables: []\n"
     "applies_when: [{flags: [RF-9.9]}]\n---\nBody.\n", "unknown red-flag id 'RF-9.9'"),
    ("---\nid: extra\ntitle: T\nversion: 1.0.0\norder: 1\nrationale: R\nvariables: []\n"
     "applies_when: always\n---\nPay {{fee}} under clause [[nowhere]].\n", "undeclared variable(s): fee"),
    ("---\nid: extra\ntitle: T\nversion: 1.0.0\norder: 1\nrationale: R\nvariables: []\n"
     "applies_when: always\n---\nSee clause [[nowhere]].\n", "[[nowhere]] refers to no clause"),
    ("---\nid: extra\ntitle: T\nversion: 1.0.0\norder: 1\nrationale: R\nvariables: []\n"
     "applies_when: [{weather: sunny}]\n---\nBody.\n", "unknown condition 'weather'"),
])
def test_broken_clause_files_are_reported_by_name(tmp_path, text, message):
    with pytest.raises(ClauseLibraryError) as error:
        load_library(broken_library(tmp_path, "extra.md", text))
    assert "extra.md" in str(error.value) and message in str(error.value)


@pytest.mark.parametrize("name,edit,message", [
    ("rider.yaml", ("title: Human Rights and End-Use Rider", "title: [Human Rights"),
     "rider.yaml: not valid YAML at line 8, column 9: did not find expected ',' or ']' "
     "(while parsing a flow sequence started at line 7)"),
    ("variables.yaml", ("  label: Seller\n", "  label: Seller\n   max: 3\n"),
     "variables.yaml: not valid YAML at line 16, column 7: mapping values are not allowed in this context"),
])
def test_broken_yaml_in_the_frame_or_registry_is_one_line_naming_the_line(tmp_path, name, edit, message):
    clauses = tmp_path / "clauses"
    shutil.copytree(DEFAULT_CLAUSES_DIR, clauses)
    text = (clauses / name).read_text(encoding="utf-8")
    assert edit[0] in text
    (clauses / name).write_text(text.replace(edit[0], edit[1], 1), encoding="utf-8")
    with pytest.raises(ClauseLibraryError) as error:
        load_library(clauses, strict=True)
    problems = [str(p) for p in error.value.problems]
    assert problems == [message] and "<unicode string>" not in problems[0]


def test_clauses_check_reports_two_clauses_at_the_same_position_naming_both(tmp_path):
    clauses = tmp_path / "clauses"
    shutil.copytree(DEFAULT_CLAUSES_DIR, clauses)
    cut_off = clauses / "cut-off.md"
    cut_off.write_text(cut_off.read_text().replace("\norder: 110\n", "\norder: 100\n"))
    from hrdd_plugins import rider

    from hrdd.cli import cli
    rider.hrdd_register_commands(cli=cli)
    result = CliRunner().invoke(cli, ["clauses", "check", "--dir", str(clauses)])
    assert result.exit_code == 1
    assert f"{clauses}/grievance.md: order 100 is also the order of cut-off.md" in result.output


@pytest.mark.parametrize("line", [
    "The Buyer shall not * sell the Products.",                       # an asterisk meant literally
    "The Buyer shall not:\n* sell the Products; or\n* lend them.",     # Markdown's other bullet
    "The Buyer shall pay 5 * 3 * 2 units.",                           # two of them, which italicised "3"
])
def test_a_stray_asterisk_is_reported(tmp_path, line):
    text = ("---\nid: extra\ntitle: T\nversion: 1.0.0\norder: 999\nrationale: R\nvariables: []\n"
            f"applies_when: always\n---\n{line}\n")
    with pytest.raises(ClauseLibraryError) as error:
        load_library(broken_library(tmp_path, "extra.md", text))
    assert "extra.md: stray '*'" in str(error.value) and "\\*" in str(error.value)


def test_a_clause_file_with_windows_line_ends_reads_like_one_with_unix_line_ends(tmp_path, library):
    clauses = tmp_path / "clauses"
    shutil.copytree(DEFAULT_CLAUSES_DIR, clauses)
    for path in (clauses / "audit.md", clauses / "rider.yaml", clauses / "variables.yaml"):
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    crlf = load_library(clauses)
    assert crlf.by_id["audit"].paragraphs == library.by_id["audit"].paragraphs
    assert len(crlf.by_id["audit"].paragraphs) > 3
    s = screening("escalated_eg")
    assert all_text(build_document(s, OPTIONS, crlf)[0]) == all_text(build_document(s, OPTIONS, library)[0])


@pytest.mark.parametrize("end_user,words", [
    ({"type": "government", "sector": "law_enforcement"}, "a government body in the security sector"),
    ({"type": "government", "sector": "civil_administration"}, "a government body"),
    ({"type": "government_linked", "sector": "telecom_operator"}, "a government-linked body"),
    ({"type": "private", "sector": "internal_security"}, "a private body in the security sector"),
])
def test_the_recital_says_what_kind_of_body_the_end_user_is(library, end_user, words):
    s = screening("escalated_eg")
    s["transaction"]["end_user"].update(end_user)
    text = all_text(build_document(s, OPTIONS, library)[0])
    assert f"The Products are to be used by Directorate of Public Security, {words}. The parties" in text
    assert "government, government-linked or security-sector" not in text


def test_the_words_of_a_worded_value_are_checked(tmp_path):
    clauses = tmp_path / "clauses"
    shutil.copytree(DEFAULT_CLAUSES_DIR, clauses)
    registry = clauses / "variables.yaml"
    registry.write_text(registry.read_text().replace("    ngo: a non-governmental organisation\n",
                                                     "    church: a church\n"))
    with pytest.raises(ClauseLibraryError, match="variables.yaml: end_user_description: words must map some of "
                                                 "government, government_linked"):
        load_library(clauses)


def test_delivery_through_a_disclosed_consignee_abroad_is_provided_for(library):
    """A Turkish consignee delivers on to the Egyptian End-User: the diversion clause must allow it."""
    s = screening("escalated_eg")
    s["transaction"]["parties"].append({"role": "consignee", "name": "Anadolu Lojistik A.Ş.", "country": "TR"})
    s["red_flags"].append({"id": "RF-4.5", "step": 4, "severity": "medium", "title": "Consignee differs",
                           "evidence": "consignee in Türkiye", "source": "step 4"})
    document, selection = build_document(s, OPTIONS, library)
    text = " ".join(all_text(document).split())
    assert "diversion-controls" in {c.id for c in selection.clauses}
    assert ("either directly or through a Disclosed Party whose role is to receive or distribute the Products "
            "(such as a consignee or distributor, wherever it is established) for onward delivery to the "
            "End-User at that address") in text
    assert "Anadolu Lojistik A.Ş. (consignee, Türkiye)" in text


def test_a_frame_written_before_the_parties_row_loads_with_the_shipped_label(tmp_path):
    clauses = tmp_path / "clauses"
    shutil.copytree(DEFAULT_CLAUSES_DIR, clauses)
    frame = clauses / "rider.yaml"
    frame.write_text(frame.read_text().replace("    parties: Disclosed Parties (role, country)\n", ""))
    assert load_library(clauses).frame.summary_labels["parties"] == "Disclosed Parties (role, country)"
    # Any other label missing is still reported, naming every key the frame must give.
    other = tmp_path / "other"
    shutil.copytree(clauses, other)
    (other / "rider.yaml").write_text(frame.read_text().replace("    end_user: End-User\n", ""))
    with pytest.raises(ClauseLibraryError) as error:
        load_library(other)
    assert "rider.yaml: findings.summary_labels must give a label for each of findings.summary_rows" in str(error.value)
    assert "end_user, parties, countries" in str(error.value)


def test_a_file_broken_while_running_keeps_the_last_valid_library(tmp_path, caplog, monkeypatch):
    from hrdd.riders import library as library_module
    clauses = tmp_path / "clauses"
    shutil.copytree(DEFAULT_CLAUSES_DIR, clauses)
    good = load_library(clauses)
    monkeypatch.setattr(library_module, "RECHECK_SECONDS", 0)
    (clauses / "audit.md").write_text("---\nid: audit\n")
    assert load_library(clauses) is good
    assert "audit.md" in caplog.text and "last valid version" in caplog.text
    with pytest.raises(ClauseLibraryError, match="audit.md"):
        load_library(clauses, strict=True)


def test_startup_refuses_a_broken_clause_file(tmp_path, app_config):
    from hrdd.errors import StartupError
    from server import create_app
    clauses = broken_library(tmp_path, "end-use.md", "---\nid: end-use\ntitle: [oops\n---\nText.\n")
    with pytest.raises(StartupError, match="end-use.md"):
        create_app({**app_config, "HRDD_CLAUSES_DIR": str(clauses)})


def test_hrdd_names_a_broken_clause_file_in_one_line_without_a_traceback(tmp_path, database_url):
    """Every ``hrdd`` command that starts the app says which file is broken and why, and exits non-zero."""
    clauses = tmp_path / "clauses"
    shutil.copytree(DEFAULT_CLAUSES_DIR, clauses)
    cut_off = clauses / "cut-off.md"
    cut_off.write_text(cut_off.read_text().replace("[[no-transfer]]", "[[no-transfers]]", 1))
    env = {**os.environ, "HRDD_CLAUSES_DIR": str(clauses), "HRDD_DATABASE_URL": database_url,
           "HRDD_VAR_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "hrdd.cli", "keys", "list"], env=env, capture_output=True,
                            text=True, timeout=120, cwd=Path(__file__).parents[1])
    assert result.returncode != 0
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{cut_off}: [[no-transfers]] refers to no clause" in lines[0]


# -- HTTP and CLI ---------------------------------------------------------------------------------------

def stored_screening(client, auth_headers) -> dict:
    response = client.post("/v1/screenings", json=load_fixture("transaction_egypt_biometric.json"),
                           headers=auth_headers("crm"))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def test_screening_lists_the_clause_safeguards(client, auth_headers):
    body = stored_screening(client, auth_headers)
    kinds = {s["id"]: s["kind"] for s in body["safeguards"]}
    assert body["decision"] == "escalate"
    assert kinds["cut-off"] == kinds["audit"] == kinds["training"] == "clause"
    assert kinds["tech-biometric-identification"] == "technical"


def test_rider_download_over_http(client, auth_headers):
    body = stored_screening(client, auth_headers)
    url = f"/v1/screenings/{body['id']}/rider.docx"
    response = client.get(url, query_string=OPTIONS, headers=auth_headers("contracts"))
    assert response.status_code == 200
    assert response.mimetype == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert f'rider-{body["id"]}.docx' in response.headers["Content-Disposition"]
    document = Document(io.BytesIO(response.data))
    assert read_custom_properties(document)["HRDD Screening"] == body["id"]
    assert "Audit, inspection and records" in [h.text for h in clause_headings(document)]

    missing = client.get(url, query_string={"seller_name": "Acme"}, headers=auth_headers("contracts"))
    assert missing.status_code == 422
    error = missing.get_json()
    assert "buyer_name" in error["message"] and "cure_period" in error["errors"]
    assert client.get(url, query_string=OPTIONS, headers=auth_headers("crm")).status_code == 403
    assert client.get("/v1/screenings/scr_nope/rider.docx", query_string=OPTIONS,
                      headers=auth_headers("contracts")).status_code == 404


WITHHELD_TITLE = "A concern about the End-User is under review"
WITHHELD_EVIDENCE = "A report concerning the End-User is under review by the Seller."


FINDING = "Finding and evidence"


def flag_rows(document) -> dict[str, dict[str, str]]:
    """Schedule 1's red-flag rows by flag id: each cell as the Buyer reads it, under its column's heading."""
    table = next(t for t in document.tables if any(r.cells[0].text.startswith("RF-") for r in t.rows))
    headings = [c.text for c in table.rows[0].cells]
    return {row.cells[0].text: dict(zip(headings, (c.text for c in row.cells), strict=True))
            for row in table.rows[1:]}


def test_the_rider_never_identifies_a_grievance_about_the_end_user(client, auth_headers):
    """The Buyer signs the rider and may be the accused agency: no reference, date, status or count."""
    reviewer = auth_headers("reviewer")
    body = load_fixture("transaction_egypt_biometric.json")
    gids = []
    for _ in range(2):
        gid = client.post("/v1/grievances", json={
            "subject_name": body["end_user"]["name"], "country": "EG",
            "description": "Cameras were used to identify people at a peaceful protest."}).get_json()["reference"]
        assert client.post(f"/v1/grievances/{gid}/triage", headers=reviewer, json={
            "status": "investigating", "credible": True,
            "end_user": {"name": body["end_user"]["name"], "country": "EG"}}).status_code == 200
        gids.append(gid)
    stored = stored_screening(client, auth_headers)
    internal = next(f for f in stored["red_flags"] if f["id"] == "RF-7.1")
    assert all(gid in internal["evidence"] for gid in gids)  # the screening JSON stays internal
    response = client.get(f"/v1/screenings/{stored['id']}/rider.docx", query_string=OPTIONS,
                          headers=auth_headers("contracts"))
    assert response.status_code == 200
    document = Document(io.BytesIO(response.data))
    row = flag_rows(document)["RF-7.1"]
    assert row[FINDING] == f"{WITHHELD_TITLE}\n{WITHHELD_EVIDENCE}"
    text = all_text(document)
    for leak in (*gids, *(g.removeprefix("grv_") for g in gids), "status investigating", "grievance(s)", "received 2"):
        assert leak not in text, leak


def test_a_library_without_withheld_wording_still_withholds_rf71(library, tmp_path):
    clauses = tmp_path / "clauses"
    shutil.copytree(DEFAULT_CLAUSES_DIR, clauses)
    frame = clauses / "rider.yaml"
    text = frame.read_text(encoding="utf-8")
    start = text.index("  withheld:")
    frame.write_text(text[:start] + text[text.index("  restated:"):], encoding="utf-8")
    s = screening("escalated_eg")
    s["red_flags"].append({"id": "RF-7.1", "step": 7, "severity": "high", "source": "step 7",
                           "title": "An open credible grievance concerns this end-user or transaction",
                           "evidence": "1 open grievance(s) assessed as credible by a reviewer: "
                                       "grv_01M98NTKZP6QSRQSHKE8355ZTX received 2026-12-07, status investigating"})
    for lib in (library, load_library(clauses)):
        document, _ = build_document(s, OPTIONS, lib)
        row = flag_rows(document)["RF-7.1"]
        assert "grv_" not in all_text(document) and "status investigating" not in all_text(document)
        assert "under review" in row[FINDING] and "credible" not in row[FINDING]
    other = next(f for f in s["red_flags"] if f["id"] != "RF-7.1")
    assert "Freedom in the World 2025 status NF (total 18/100)" in other["evidence"]
    assert "Freedom in the World 2025 status NF (total 18/100)" in flag_rows(
        build_document(s, OPTIONS, library)[0])[other["id"]][FINDING]


# -- what the Buyer receives -------------------------------------------------------------------------------

# The Seller's internal assessment, as the screening JSON words it: never in the file the Buyer signs.
INTERNAL = ("Risk score", "/100 (", "Outcome", "Escalated for review", "Do not proceed", "compliance officer",
            "Checklist answer", "= yes", "ruleset", "parties 1", "Reference data used", "tier high", "tier ",
            "high at <=", "threshold", "country risk", "critical-tier")


def escalated_with_internal_evidence(client, auth_headers) -> dict:
    """The Egypt deal with a checklist answer raising RF-2.2: escalated, with every kind of evidence."""
    body = load_fixture("transaction_egypt_biometric.json")
    body["answers"]["exports_to_abusers"] = "yes"
    response = client.post("/v1/screenings", json=body, headers=auth_headers("crm"))
    assert response.status_code == 201, response.get_json()
    stored = response.get_json()
    assert stored["gate"] != "block" and {"RF-1.2", "RF-2.1", "RF-2.2", "RF-3.1"} <= {f["id"] for f in stored["red_flags"]}
    evidence = " ".join(f["evidence"] for f in stored["red_flags"])
    assert "Checklist answer exports_to_abusers = yes" in evidence and "(tier high)" in evidence
    assert "(high at <= 10, medium at <= 16)" in evidence
    return stored


def test_schedule_1_states_the_findings_not_the_sellers_internal_assessment(client, auth_headers):
    stored = escalated_with_internal_evidence(client, auth_headers)
    response = client.get(f"/v1/screenings/{stored['id']}/rider.docx", query_string=OPTIONS,
                          headers=auth_headers("contracts"))
    assert response.status_code == 200, response.get_json()
    document = Document(io.BytesIO(response.data))
    text = all_text(document)
    for internal in INTERNAL:
        assert internal not in text, internal
    rows = flag_rows(document)
    titles = {f["id"]: f["title"] for f in stored["red_flags"]}
    for flag_id in ("RF-1.2", "RF-2.1", "RF-3.1", "RF-3.2"):
        assert rows[flag_id][FINDING].startswith(titles[flag_id])  # the flag's own title, as screened
    # The public-source figures behind the findings stay, in full.
    assert "to Egypt: Freedom in the World 2025: Not Free, 18/100; Political Terror Scale 2023: 4" in rows["RF-1.2"][FINDING]
    assert rows["RF-3.1"][FINDING].endswith("freedom of expression and associational rights (D+E) 4/28.")
    # A checklist answer is stated in the words of rider.yaml's findings.restated.
    assert "the End-User has supplied surveillance products to governments that abuse human rights" in rows["RF-2.2"][FINDING]
    # The Seller's rating of each flag is internal too: no severity column, no severity in any cell.
    assert all(list(row) == ["Red flag", "Step", FINDING, "Source"] for row in rows.values()), rows
    severities = {f["severity"] for f in stored["red_flags"]}
    assert not any(cell in severities for row in rows.values() for cell in row.values())


def test_the_document_properties_say_what_the_file_is_not_the_decision(client, auth_headers):
    stored = escalated_with_internal_evidence(client, auth_headers)
    data = client.get(f"/v1/screenings/{stored['id']}/rider.docx", query_string=OPTIONS,
                      headers=auth_headers("contracts")).data
    document = Document(io.BytesIO(data))
    props = document.core_properties
    assert props.title == "Human Rights and End-Use Rider — AV-2026-0147"
    for value in (props.keywords, props.subject, props.comments, props.title):
        assert "decision" not in value and "escalate" not in value and "RF-" not in value, value
    custom = read_custom_properties(document)
    assert "HRDD Decision" not in custom and custom["HRDD Screening"] == stored["id"]
    assert not any("escalate" in v for v in custom.values())
    import zipfile
    app_xml = zipfile.ZipFile(io.BytesIO(data)).read("docProps/app.xml").decode()
    assert "Microsoft" not in app_xml and "<Pages>" not in app_xml and "<Words>" not in app_xml
    from hrdd import __version__
    assert f"<Application>hrdd {__version__}</Application>" in app_xml


def test_schedule_1_names_capabilities_as_schedule_2_does(library):
    s = screening("proceed_de")
    s["transaction"]["items"] = [
        {"sku": "SRV-1", "name": "Rack servers", "capabilities": ["it_infrastructure"]},
        {"sku": "LT-9", "name": "TrackNet", "capabilities": ["location_tracking", "data_analytics"]}]
    document, selection = build_document(s, OPTIONS, library)
    products = dict((row.cells[0].text, row.cells[1].text) for row in document.tables[1].rows)[
        "Products and capabilities"]
    # Not "it infrastructure": the words of the Part headings in Schedule 2, in a sentence's case.
    assert products == "Rack servers (SRV-1): IT infrastructure\nTrackNet (LT-9): location tracking, data analytics and fusion"
    assert {t.title for t in selection.technical} >= {"IT infrastructure", "Location tracking", "Data analytics and fusion"}


def test_what_schedule_1_shows_is_clause_data(library, tmp_path):
    """A library may list more summary rows (an internal copy) or cut other phrases out of the evidence."""
    clauses = tmp_path / "clauses"
    shutil.copytree(DEFAULT_CLAUSES_DIR, clauses)
    frame = clauses / "rider.yaml"
    text = frame.read_text(encoding="utf-8")
    text = text.replace("summary_rows: [screening, date,", "summary_rows: [risk, screening, date,")
    text = text.replace("    screening: Screening\n", "    screening: Screening\n    risk: Internal risk score\n")
    text = text.replace("  evidence_omit:\n", "  evidence_omit:\n    - ' ?Political Terror Scale [^;]*;'\n")
    frame.write_text(text, encoding="utf-8")
    s = screening("escalated_eg")
    shipped = all_text(build_document(s, OPTIONS, library)[0])
    edited = all_text(build_document(s, OPTIONS, load_library(clauses))[0])
    assert "Internal risk score\n100/100 (high)" in edited and "risk score" not in shipped.lower()
    assert "Political Terror Scale" in shipped and "Political Terror Scale" not in edited
    frame.write_text(text.replace("summary_rows: [risk,", "summary_rows: [mood,"), encoding="utf-8")
    with pytest.raises(ClauseLibraryError, match="findings.summary_rows must list"):
        load_library(clauses, strict=True)


def test_the_red_flag_columns_schedule_1_prints_are_clause_data(library, tmp_path):
    """An internal copy may add the severity column; a library written with five headings keeps all five."""
    clauses = tmp_path / "clauses"
    shutil.copytree(DEFAULT_CLAUSES_DIR, clauses)
    frame = clauses / "rider.yaml"
    text = frame.read_text(encoding="utf-8")
    assert "    step: Step\n" in text
    s = screening("escalated_eg")
    severity_of = {f["id"]: f["severity"] for f in s["red_flags"]}
    frame.write_text(text.replace("    step: Step\n", "    step: Step\n    severity: Internal rating\n"), encoding="utf-8")
    rows = flag_rows(build_document(s, OPTIONS, load_library(clauses, strict=True))[0])
    assert {flag_id: row["Internal rating"] for flag_id, row in rows.items()} == severity_of
    assert list(rows["RF-1.2"]) == ["Red flag", "Step", "Internal rating", FINDING, "Source"]
    start, end = text.index("  flag_columns:\n"), text.index("    source: Source\n") + len("    source: Source\n")
    older = text[:start] + "  flag_columns: [Flag, Step, Severity, Finding, Source]\n" + text[end:]
    frame.write_text(older, encoding="utf-8")
    rows = flag_rows(build_document(s, OPTIONS, load_library(clauses, strict=True))[0])
    assert list(rows["RF-1.2"]) == ["Flag", "Step", "Severity", "Finding", "Source"]
    assert rows["RF-1.2"]["Severity"] == severity_of["RF-1.2"]
    for bad, message in (("    score: Score\n", "unknown: score"), ("", "missing: finding")):
        edited = text.replace("    finding: Finding and evidence\n", bad) if not bad \
            else text.replace("    step: Step\n", "    step: Step\n" + bad)
        frame.write_text(edited, encoding="utf-8")
        with pytest.raises(ClauseLibraryError, match=f"findings.flag_columns must map the columns.*{message}"):
            load_library(clauses, strict=True)
    frame.write_text(text.replace("  evidence_omit:\n", "  evidence_omit:\n    - '(unclosed'\n"), encoding="utf-8")
    with pytest.raises(ClauseLibraryError, match=r"rider.yaml: findings.evidence_omit entry 1 \('\(unclosed'\)"):
        load_library(clauses, strict=True)


# -- only the governing screening of a deal that may go ahead has a rider -----------------------------------

def test_a_superseded_screening_has_no_rider_and_names_the_governing_one(client, auth_headers, tmp_path, app):
    body = load_fixture("transaction_egypt_biometric.json")
    first = client.post("/v1/screenings", json=body, headers=auth_headers("crm")).get_json()
    latest = first
    for n in range(3):
        body["intended_use"] = f"Access control at ministry buildings, phase {n + 2}"
        latest = client.post("/v1/screenings", json=body, headers=auth_headers("crm")).get_json()
    assert latest["gate"] != "block"
    response = client.get(f"/v1/screenings/{first['id']}/rider.docx", query_string=OPTIONS,
                          headers=auth_headers("contracts"))
    assert response.status_code == 409
    error = response.get_json()
    link = f"/v1/screenings/{latest['id']}/rider.docx"
    assert error["code"] == "screening_superseded" and link in error["message"]
    assert error["errors"] == {"superseded_by": [latest["id"]], "rider": [link]}
    assert client.get(link, query_string=OPTIONS, headers=auth_headers("contracts")).status_code == 200
    cli, runner = cli_runner(app)
    result = runner.invoke(cli, ["rider", first["id"], "-o", str(tmp_path / "x.docx"),
                                 *[f"--set={k}={v}" for k, v in OPTIONS.items()]], obj=_script_info(app))
    assert result.exit_code == 1 and latest["id"] in result.output and not (tmp_path / "x.docx").exists()


def test_a_blocked_deal_has_no_rider(client, auth_headers):
    """The lawyer's case: the deal's first screening, superseded since, and the Buyer now on a list (RF-4.3)."""
    body = load_fixture("transaction_egypt_biometric.json")
    first = client.post("/v1/screenings", json=body, headers=auth_headers("crm")).get_json()
    assert first["decision"] == "escalate"
    body["parties"].append({"role": "consignee", "name": "Hikvision Digital Technology Co Ltd", "country": "CN"})
    blocked = client.post("/v1/screenings", json=body, headers=auth_headers("crm")).get_json()
    assert blocked["gate"] == "block" and "RF-4.3" in {f["id"] for f in blocked["red_flags"]}
    for sid in (first["id"], blocked["id"]):
        response = client.get(f"/v1/screenings/{sid}/rider.docx", query_string=OPTIONS,
                              headers=auth_headers("contracts"))
        assert response.status_code == 409, sid
        error = response.get_json()
        assert error["code"] == "deal_blocked" and "No rider is issued for a blocked deal" in error["message"]
        assert "RF-4.3" in error["message"] and error["errors"]["gate"] == ["block"]


def test_withheld_wording_must_name_a_known_flag(tmp_path):
    clauses = tmp_path / "clauses"
    shutil.copytree(DEFAULT_CLAUSES_DIR, clauses)
    frame = clauses / "rider.yaml"
    frame.write_text(frame.read_text(encoding="utf-8").replace("    RF-7.1:\n", "    RF-9.9:\n"), encoding="utf-8")
    with pytest.raises(ClauseLibraryError, match="unknown red flag 'RF-9.9'"):
        load_library(clauses)


def test_rider_options_from_configuration(app_config, tmp_path):
    from server import create_app
    app = create_app({**app_config, **{f"HRDD_RIDER_{k.upper()}": v for k, v in OPTIONS.items()}})
    try:
        client = app.test_client()
        _, crm = app.extensions["hrdd"].store.create_api_key("crm", "crm")
        _, contracts = app.extensions["hrdd"].store.create_api_key("contracts", "contracts")
        sid = client.post("/v1/screenings", json=load_fixture("transaction_egypt_biometric.json"),
                          headers={"Authorization": f"Bearer {crm}"}).get_json()["id"]
        response = client.get(f"/v1/screenings/{sid}/rider.docx", headers={"Authorization": f"Bearer {contracts}"})
        assert response.status_code == 200
        assert "Acme Vision Ltd" in all_text(Document(io.BytesIO(response.data)))
    finally:
        app.extensions["hrdd"].store.engine.dispose()


def cli_runner(app):
    from hrdd_plugins import rider

    from hrdd.cli import cli
    rider.hrdd_register_commands(cli=cli)
    return cli, CliRunner()


def _rider_command(screening_id: str, out) -> list[str]:
    """`hrdd rider SCREENING -o OUT` with every rider option given on the command line."""
    args = ["rider", screening_id, "-o", str(out)]
    for name, value in OPTIONS.items():
        args += [f"--{name.replace('_', '-')}", value]
    return args


def test_cli_rider_and_clauses_check(app, client, auth_headers, tmp_path):
    body = stored_screening(client, auth_headers)
    cli, runner = cli_runner(app)
    out = tmp_path / "rider.docx"
    result = runner.invoke(cli, _rider_command(body["id"], out), obj=_script_info(app))
    assert result.exit_code == 0, result.output
    assert Document(str(out)).paragraphs[0].text == "Human Rights and End-Use Rider"
    result = runner.invoke(cli, ["rider", body["id"], "-o", str(out)], obj=_script_info(app))
    assert result.exit_code != 0 and "seller_name" in result.output
    result = runner.invoke(cli, ["clauses", "check"], obj=_script_info(app))
    assert result.exit_code == 0 and "OK" in result.output, result.output
    broken = broken_library(tmp_path, "extra.md", "---\nid: extra\n---\nBody\n")
    result = runner.invoke(cli, ["clauses", "check", "--dir", str(broken)], obj=_script_info(app))
    assert result.exit_code == 1 and "extra.md: missing front matter field(s)" in result.output


def test_cli_names_its_own_options_for_missing_rider_variables(app, client, auth_headers, tmp_path, monkeypatch):
    for name in OPTIONS:
        monkeypatch.delenv(f"HRDD_RIDER_{name.upper()}", raising=False)
    body = stored_screening(client, auth_headers)
    cli, runner = cli_runner(app)
    result = runner.invoke(cli, ["rider", body["id"], "-o", str(tmp_path / "x.docx"),
                                 "--seller-name", "Acme Vision Ltd"], obj=_script_info(app))
    assert result.exit_code == 1 and "query parameter" not in result.output
    assert ("agreement_reference: required: give the option --agreement-reference or configure "
            "HRDD_RIDER_AGREEMENT_REFERENCE") in result.output
    assert "cure_period: required: give the option --cure-period or configure HRDD_RIDER_CURE_PERIOD" in result.output
    # A variable a lawyer added to variables.yaml has no option of its own: --set gives it.
    from hrdd_plugins.rider import cli_option
    assert cli_option("buyer_address") == "--set buyer_address=VALUE"
    # Over HTTP the same variable is a query parameter.
    missing = client.get(f"/v1/screenings/{body['id']}/rider.docx", query_string={"seller_name": "Acme"},
                         headers=auth_headers("contracts")).get_json()
    assert missing["errors"]["agreement_reference"] == [
        "required: give the query parameter 'agreement_reference' or configure HRDD_RIDER_AGREEMENT_REFERENCE"]


def test_clauses_check_reports_a_broken_configured_library_without_starting_the_app(tmp_path, monkeypatch):
    from hrdd_plugins import rider

    from hrdd.cli import cli
    rider.hrdd_register_commands(cli=cli)
    broken = broken_library(tmp_path, "audit.md", "---\nid: audit\ntitle: x\n")
    monkeypatch.setenv("HRDD_CLAUSES_DIR", str(broken))
    result = CliRunner().invoke(cli, ["clauses", "check"])
    assert result.exit_code == 1
    assert "audit.md: no front matter" in result.output and "1 problem(s)" in result.output


def test_cli_rider_from_json_file(app, tmp_path):
    cli, runner = cli_runner(app)
    source = tmp_path / "screening.json"
    source.write_text(json.dumps(screening("safeguards_co")))
    out = tmp_path / "co.docx"
    args = ["rider", "--json", str(source), "-o", str(out)] + [f"--set={k}={v}" for k, v in OPTIONS.items()]
    result = runner.invoke(cli, args, obj=_script_info(app))
    assert result.exit_code == 0, result.output
    assert "Alcaldía de Medellín" in all_text(Document(str(out)))


def test_cli_rider_from_json_file_is_refused_for_a_blocked_deal(app, client, auth_headers, tmp_path):
    cli, runner = cli_runner(app)
    options = [f"--set={k}={v}" for k, v in OPTIONS.items()]
    out = tmp_path / "blocked.docx"
    # A file the store does not know: the gate it states decides, as the API's 409 deal_blocked does.
    source = tmp_path / "blocked.json"
    source.write_text(json.dumps(screening("blocked_ae")))
    result = runner.invoke(cli, ["rider", "--json", str(source), "-o", str(out), *options], obj=_script_info(app))
    assert result.exit_code == 1 and "No rider is issued for a blocked deal" in result.output, result.output
    assert not out.exists()
    # A stored screening saved to a file is judged by its deal in the store, whatever the file says.
    body = {**load_fixture("transaction_egypt_biometric.json"), "answers": {"past_misuse": "yes"}}
    stored = client.post("/v1/screenings", json=body, headers=auth_headers("crm")).get_json()
    assert stored["gate"] == "block"
    source.write_text(json.dumps({**stored, "gate": "release"}))
    result = runner.invoke(cli, ["rider", "--json", str(source), "-o", str(out), *options], obj=_script_info(app))
    assert result.exit_code == 1 and "No rider is issued for a blocked deal" in result.output, result.output
    source.write_text("[1, 2]")
    result = runner.invoke(cli, ["rider", "--json", str(source), "-o", str(out), *options], obj=_script_info(app))
    assert result.exit_code == 1 and "blocked.json: not a screening (a JSON object" in result.output, result.output
    assert not out.exists()


def _script_info(app):
    from flask.cli import ScriptInfo
    return ScriptInfo(create_app=lambda: app)


# -- LibreOffice ----------------------------------------------------------------------------------------

def soffice_to_pdf(docx: Path, outdir: Path) -> Path:
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if not soffice:
        pytest.skip("LibreOffice (soffice) is not installed: apt-get install libreoffice-writer-nogui")
    profile = outdir / f"lo-profile-{uuid.uuid4().hex}"
    subprocess.run([soffice, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--convert-to", "pdf",
                    "--outdir", str(outdir), str(docx)], check=True, capture_output=True, timeout=180)
    pdf = outdir / (docx.stem + ".pdf")
    assert pdf.exists() and pdf.read_bytes()[:5] == b"%PDF-"
    return pdf


def pdf_text(pdf: Path) -> str:
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext is not installed: apt-get install poppler-utils")
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True,
                          text=True).stdout


def test_libreoffice_converts_the_rider_to_pdf(library, tmp_path):
    s = screening("escalated_eg")
    docx = tmp_path / "rider.docx"
    docx.write_bytes(build_rider(s, OPTIONS, library))
    text = " ".join(pdf_text(soffice_to_pdf(docx, tmp_path)).split())
    assert "Human Rights and End-Use Rider" in text
    assert "1. Definitions and interpretation" in text
    assert "Schedule 1 — Findings" in text and "Page 1 of" in text and s["id"] in text
    assert "(a) to stifle dissent" in text
    for internal in ("Risk score", "Outcome", "Escalated for review", "ruleset", "tier high", "country risk"):
        assert internal not in text, internal
    assert "(D) The Products are to be used by Directorate of Public Security, a government body in the security sector." in text


def test_the_parties_read_in_the_pdf_libreoffice_makes(library, tmp_path):
    docx = tmp_path / "parties.docx"
    docx.write_bytes(build_rider(with_parties(), OPTIONS, library))
    # Without the footers, where a page breaks the definition; the table's two columns share lines.
    lines = [line for line in pdf_text(soffice_to_pdf(docx, tmp_path)).splitlines() if "· Page" not in line]
    flat = " ".join(" ".join(lines).split())
    assert f"namely: {PARTY_LABELS[0]}; {PARTY_LABELS[1]} and {PARTY_LABELS[2]}." in flat
    schedule = flat[flat.index("Schedule 1 — Findings"):]
    assert "Disclosed Parties (role," in schedule and all(label in schedule for label in PARTY_LABELS)
    assert "{{" not in flat and "[[" not in flat


def test_cross_references_follow_a_clause_inserted_in_the_word_file(library, tmp_path):
    """A lawyer inserts a new clause 2 by hand: LibreOffice updates every reference to later clauses."""
    document, selection = build_document(screening("escalated_eg"), OPTIONS, library)
    headings = clause_headings(document)
    inserted = copy.deepcopy(headings[0]._p)
    for bookmark in [*inserted.iter(qn("w:bookmarkStart")), *inserted.iter(qn("w:bookmarkEnd"))]:
        bookmark.getparent().remove(bookmark)
    headings[1]._p.addprevious(inserted)
    docx = tmp_path / "edited.docx"
    document.save(str(docx))
    text = " ".join(pdf_text(soffice_to_pdf(docx, tmp_path)).split())
    grievance = selection.numbers["grievance"]
    assert f"described in clause {grievance + 1}, that the Products" in text
    assert f"meanings given in clause {selection.numbers['end-use'] + 1}." in text


# -- the workspace's rider form ----------------------------------------------------------------------------

def _rider_link(client, case_id: str) -> str:
    import re
    page = client.get(f"/workspace/cases/{case_id}").get_data(as_text=True)
    match = re.search(r'<a href="([^"]+)">Contract rider \(\.docx\)</a>', page)
    assert match, "no rider link on the case page"
    return match.group(1)


def test_the_case_pages_rider_link_asks_for_the_variables_then_downloads_the_rider(app, client, auth_headers,
                                                                                  monkeypatch):
    from tests.workspace_helpers import case_of, csrf_from, login, make_user
    for name in OPTIONS:
        monkeypatch.delenv(f"HRDD_RIDER_{name.upper()}", raising=False)
    make_user(app)
    login(client)
    stored = stored_screening(client, auth_headers)
    link = _rider_link(client, case_of(app, stored["transaction_id"])["id"])
    page = client.get(link)
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    for label in ("Seller", "Buyer", "Agreement reference", "Governing law", "Grievance contact", "Cure period (days)"):
        assert f">{label}</label>" in html, label
    assert 'name="buyer_name" type="text" value="Nile Integrated Systems"' in html  # the disclosed distributor
    assert 'name="cure_period" type="number" value="" min="5" max="180"' in html
    token = csrf_from(client, link)

    missing = client.post(link, data={"csrf_token": token, "seller_name": "Acme Vision Ltd", "cure_period": "3"})
    assert missing.status_code == 422 and missing.mimetype == "text/html"
    html = missing.get_data(as_text=True)
    assert "Agreement reference: required" in html and "Governing law: required" in html
    assert "Cure period (days): must be between 5 and 180" in html and "query parameter" not in html
    assert 'name="seller_name" type="text" value="Acme Vision Ltd"' in html  # what was typed stays
    bad = client.post(link, data={"csrf_token": token, **OPTIONS, "cure_period": "3"})
    assert bad.status_code == 422 and "Cure period (days): must be between 5 and 180" in bad.get_data(as_text=True)

    assert client.post(link, data=OPTIONS).status_code == 400  # no CSRF token
    done = client.post(link, data={"csrf_token": token, **OPTIONS})
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.mimetype == "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    assert f'rider-{stored["id"]}.docx' in done.headers["Content-Disposition"]
    text = all_text(Document(io.BytesIO(done.data)))
    assert "Acme Vision Ltd" in text and "AV-2026-0147" in text


def test_the_rider_form_prefills_configured_values_and_sends_superseded_screenings_on(app, client, auth_headers):
    from tests.workspace_helpers import csrf_from, login, make_user
    app.config["HRDD_RIDER_SELLER_NAME"] = "Acme Vision Ltd"
    make_user(app)
    login(client)
    body = load_fixture("transaction_egypt_biometric.json")
    first = client.post("/v1/screenings", json=body, headers=auth_headers("crm")).get_json()
    body["intended_use"] = "Access control at ministry buildings and their car parks"
    latest = client.post("/v1/screenings", json=body, headers=auth_headers("crm")).get_json()
    page = client.get(f"/workspace/screenings/{latest['id']}/rider")
    assert 'name="seller_name" type="text" value="Acme Vision Ltd"' in page.get_data(as_text=True)
    old = client.get(f"/workspace/screenings/{first['id']}/rider")
    assert old.status_code == 409 and old.mimetype == "text/html"
    html = old.get_data(as_text=True)
    assert f'href="/workspace/screenings/{latest["id"]}/rider"' in html and "no longer governs its deal" in html
    assert "<form method=\"post\" action=\"/workspace/screenings/" not in html
    token = csrf_from(client, f"/workspace/screenings/{latest['id']}/rider")
    refused = client.post(f"/workspace/screenings/{first['id']}/rider", data={"csrf_token": token, **OPTIONS})
    assert refused.status_code == 409 and refused.mimetype == "text/html"


# -- a reviewer's conditions of approval ---------------------------------------------------------------

REVIEWER_CONDITIONS = "Deploy only at ministry building entrances; no connection to street cameras."


def _rider_text(client, auth_headers, screening_id: str) -> tuple[str, list[str]]:
    response = client.get(f"/v1/screenings/{screening_id}/rider.docx", query_string=OPTIONS,
                          headers=auth_headers("contracts"))
    assert response.status_code == 200, response.get_json()
    document = Document(io.BytesIO(response.data))
    return all_text(document), [h.text for h in clause_headings(document)]


def _decide(client, auth_headers, app, transaction_id: str, **body):
    from tests.workspace_helpers import case_of
    case_id = case_of(app, transaction_id)["id"]
    r = client.post(f"/v1/cases/{case_id}/decision", json=body, headers=auth_headers("reviewer"))
    assert r.status_code == 201, r.get_json()
    return r.get_json()["decision"]


def test_the_rider_carries_the_reviewers_conditions_of_approval(app, client, auth_headers):
    body = stored_screening(client, auth_headers)
    text, headings = _rider_text(client, auth_headers, body["id"])
    assert "Conditions of approval" not in headings and REVIEWER_CONDITIONS not in text
    audit = next(s for s in body["safeguards"] if s["id"] == "audit")
    _decide(client, auth_headers, app, body["transaction_id"], decision="approve_with_conditions",
            rationale="Access control at ministry buildings only", conditions=REVIEWER_CONDITIONS,
            safeguards=["audit", "tech-biometric-identification"])
    text, headings = _rider_text(client, auth_headers, body["id"])
    assert "Conditions of approval" in headings
    assert f"The conditions of the approval are:\n{REVIEWER_CONDITIONS}\n" in text
    assert f"{audit['title']}; Technical safeguards: Biometric identification" in text
    # A plain approval afterwards sets no conditions: the clause goes.
    _decide(client, auth_headers, app, body["transaction_id"], decision="approve",
            rationale="Conditions no longer needed after the site visit")
    text, headings = _rider_text(client, auth_headers, body["id"])
    assert "Conditions of approval" not in headings and REVIEWER_CONDITIONS not in text


def test_the_cli_rider_carries_the_reviewers_conditions_too(app, client, auth_headers, tmp_path):
    body = stored_screening(client, auth_headers)
    _decide(client, auth_headers, app, body["transaction_id"], decision="approve_with_conditions",
            rationale="Access control at ministry buildings only", safeguards=["training"])
    cli, runner = cli_runner(app)
    out = tmp_path / "rider.docx"
    result = runner.invoke(cli, _rider_command(body["id"], out), obj=_script_info(app))
    assert result.exit_code == 0, result.output
    text = all_text(Document(str(out)))
    assert "The conditions of the approval are:\nthose stated as safeguards below\n" in text
    assert "required by the approval: Operator training" in text


def test_each_line_of_the_reviewers_conditions_is_an_item_of_its_own(library):
    s = screening("escalated_eg")
    s["review"] = {"outcome": "approve_with_conditions", "decided_at": "2026-12-03T10:00:00Z",
                   "conditions": "1. The Buyer shall provide quarterly usage logs.\r\n\r\n"
                                 "2) No use outside ministry buildings.\n- No  connection to street cameras.",
                   "safeguards": []}
    document, selection = build_document(s, OPTIONS, library)
    number = selection.numbers["conditions-of-approval"]
    paragraphs = [p for p in document.paragraphs if p.style.name == "List Number 2"]
    conditions = [p.text for p in paragraphs if "ministry buildings" in p.text or "usage logs" in p.text
                  or "street cameras" in p.text]
    # Three items (a), (b), (c) of the clause, numbered by Word, without the numbers the reviewer typed.
    assert conditions == ["The Buyer shall provide quarterly usage logs.", "No use outside ministry buildings.",
                          "No connection to street cameras."]
    levels = {p._p.pPr.numPr.ilvl.val for p in paragraphs if p.text in conditions}
    assert levels == {2}
    heading = next(p for p in clause_headings(document) if p.text == "Conditions of approval")
    assert selection.clauses[number - 1].id == "conditions-of-approval" and heading is not None


def test_every_safeguard_the_reviewer_requires_is_in_the_rider(library):
    # A deal released with conditions (no audit clause, cameras only) whose standing approval requires the
    # audit clause and the location-tracking Part: clause "Conditions of approval" names both, so both
    # must be there for the Buyer to know what it signed up to.
    s = screening("safeguards_co")
    assert "audit" not in ids(select(library, Facts.from_screening(s)))
    s["review"] = {"outcome": "approve_with_conditions", "decided_at": "2026-12-03T10:00:00Z", "conditions": None,
                   "safeguards": [{"id": "audit", "title": "Audit, inspection and records"},
                                  {"id": "tech-location-tracking", "title": "Technical safeguards: Location tracking"}]}
    document, selection = build_document(s, OPTIONS, library)
    text = all_text(document)
    assert "required by the approval: Audit, inspection and records; Technical safeguards: Location tracking." in text
    assert "Audit, inspection and records" in [h.text for h in clause_headings(document)]
    assert [t.id for t in selection.technical] == ["tech-location-tracking", "tech-recording-devices"]
    parts = [p.text for p in document.paragraphs if p.style.name == "Heading 2"]
    assert parts == ["Part A — Location tracking", "Part B — Recording devices"]
    applies = [p.text for p in document.paragraphs if p.text.startswith("Applies to: ")]
    products = applies[0].removeprefix("Applies to: ")
    assert products and applies == [f"Applies to: {products}"] * 2  # the cameras, the only Products
    # A plain approval requires nothing more: the rider is the screening's own.
    s["review"] = {"outcome": "approve", "decided_at": "2026-12-03T10:00:00Z", "safeguards": []}
    assert "audit" not in ids(select(library, Facts.from_screening(s)))


def test_an_executed_rider_older_than_the_reviewers_conditions_does_not_cover_the_order(app, client, auth_headers):
    from datetime import UTC, datetime, timedelta

    crm, contracts = auth_headers("crm"), auth_headers("contracts")
    quote = stored_screening(client, auth_headers)
    txn = quote["transaction_id"]
    signed_early = {"executed_by": "Ministry procurement", "screening_id": quote["id"],
                    "executed_at": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()}
    assert client.post(f"/v1/transactions/{txn}/rider-executed", json=signed_early, headers=contracts).status_code == 201
    decision = _decide(client, auth_headers, app, txn, decision="approve_with_conditions",
                       rationale="Access control at ministry buildings only", conditions=REVIEWER_CONDITIONS)
    order = client.post("/v1/screenings", json={**load_fixture("transaction_egypt_biometric.json"), "stage": "order"},
                        headers=crm).get_json()
    assert order["gate"] == "hold" and "rider_executed" in order["outstanding_conditions"]
    reason = next(r for r in order["hold_reasons"] if "contract rider" in r)
    assert "before the reviewer's conditions of approval" in reason and decision["id"] in reason
    # Signed again once the rider carries the conditions: the order opens on the reviewer's approval.
    signed = {"executed_by": "Ministry procurement", "screening_id": order["id"],
              "executed_at": datetime.now(UTC).isoformat()}
    r = client.post(f"/v1/transactions/{txn}/rider-executed", json=signed, headers=contracts)
    assert r.status_code == 201 and r.get_json()["gate"] == "release_with_conditions", r.get_json()
    record = client.get(f"/v1/transactions/{txn}", headers=crm).get_json()
    assert record["outstanding_conditions"] == ["checklist_completed"]
