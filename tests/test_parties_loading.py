"""Reading list files: the official CSL CSV layout, the shipped compiled list, simple lists, broken files."""

from __future__ import annotations

from pathlib import Path

import pytest

from hrdd.parties.index import PartyIndex
from hrdd.parties.loaders import CSL_COLUMNS, ListFormatError, load_bytes, load_file
from hrdd.parties.matcher import Matcher, MatchPolicy

FIXTURES = Path(__file__).parent / "fixtures" / "parties"
SHIPPED = Path(__file__).resolve().parent.parent / "data" / "restricted_parties_compiled_us_jp_ca.csv"


def test_csl_header_is_the_official_one():
    header = (FIXTURES / "csl_sample.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",") == CSL_COLUMNS and len(CSL_COLUMNS) == 29


def test_csl_file_loads_with_aliases_countries_and_citations():
    loaded = load_file(FIXTURES / "csl_sample.csv")
    assert loaded.format == "csl" and len(loaded.entries) == 5 and len(loaded.sha256) == 64
    candiru = next(e for e in loaded.entries if e.name == "Candiru")
    assert candiru.aliases == ("Saito Tech Ltd.", "Taveta Ltd.", "Grindavik Solutions Ltd.", "DF Associates Ltd.")
    assert candiru.countries == ("IL",)
    assert candiru.federal_register_notice == "86 FR 60759" and candiru.start_date == "2021-11-04"
    assert candiru.list == "Entity List (EL) - Bureau of Industry and Security"
    assert candiru.extra["license_policy"] == "Presumption of denial."
    hik = next(e for e in loaded.entries if "Hikvision" in e.name)
    assert hik.countries == ("CN",) and hik.federal_register_notice == "84 FR 54002"


def test_csl_match_cites_the_federal_register_notice():
    matcher = Matcher(PartyIndex(load_file(FIXTURES / "csl_sample.csv").entries), MatchPolicy(), "csl@1")
    match = matcher.screen("Saito Tech Ltd", "IL")[0]
    assert match["name"] == "Candiru" and match["matched_name"] == "Saito Tech Ltd."
    assert match["explanation"]["federal_register_notice"] == "86 FR 60759"
    assert "Federal Register 86 FR 60759" in match["explanation"]["text"]


def test_compiled_list_loads_every_row():
    loaded = load_file(SHIPPED)
    assert loaded.format == "compiled" and len(loaded.entries) == 4940
    ids = [e.entry_id for e in loaded.entries]
    assert len(set(ids)) == len(ids), "repeated record ids are kept apart"
    nso = next(e for e in loaded.entries if e.name == "NSO Group")
    assert nso.countries == ("IL",) and nso.list == "U.S. BIS – Entity List"
    assert "us-bis-entity.xlsx row" in nso.source


def test_simple_list_with_country_names_and_aliases():
    loaded = load_file(FIXTURES / "own_list.csv", list_name="own")
    assert loaded.format == "simple"
    nile, orion, kestrel = loaded.entries
    assert nile.aliases == ("Nile Integrated Systems FZE", "NIS Middle East") and nile.countries == ("AE",)
    assert orion.countries == ("EG",), "country names are normalised to ISO codes"
    assert kestrel.countries == () and kestrel.list == "own"
    again = load_file(FIXTURES / "own_list.csv", list_name="own")
    assert [e.entry_id for e in again.entries] == [e.entry_id for e in loaded.entries], "ids are stable"


def test_format_detected_or_forced():
    raw = b"name,aliases,country\nAcme Surveillance,,DE\n"
    assert load_bytes(raw).format == "simple"
    with pytest.raises(ListFormatError, match="missing column"):
        load_bytes(raw, "csl")


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "the file is empty"),
    (b"foo,bar\n1,2\n", "line 1: header not recognised"),
    (b"name,aliases,country\nAcme,,DE\nBeta,,DE,extra\n", "line 3: expected 3 fields, found 4"),
    (b"name,aliases,country\nAcme,,DE\n,alias only,DE\n", "line 3: the name is empty"),
    (b"name,aliases,country\nAcme,,DE\nBeta,,Atlantis\n", "line 3: unknown country 'Atlantis'"),
    (b"name,aliases,country\nAcme,,DE\nBeta \xff,,DE\n", "line 3: not valid UTF-8"),
    (b'name,aliases,country\nAcme,,DE\n"Beta, unterminated,,DE\n', "line 3"),
    (b"name,aliases,country\n", "no entries after the header"),
])
def test_malformed_files_are_refused_with_the_line(raw, message):
    with pytest.raises(ListFormatError, match=message):
        load_bytes(raw, source_file="bad.csv")


def test_csl_row_problem_names_the_line(tmp_path):
    lines = (FIXTURES / "csl_sample.csv").read_text(encoding="utf-8").splitlines()
    lines[3] = lines[3].replace("Positive Technologies,", ",", 1)
    path = tmp_path / "csl.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ListFormatError, match=r"csl.csv: line 4: the name is empty"):
        load_file(path)


def test_compiled_list_with_bad_country_code_is_refused(tmp_path):
    lines = SHIPPED.read_text(encoding="utf-8").splitlines()[:4]
    lines[2] = lines[2].replace(",CN,", ",China,")
    path = tmp_path / "compiled.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(ListFormatError, match=r"line 3: countries_iso2 'China' is not a two-letter code"):
        load_file(path)


def test_content_hash_changes_when_an_entry_changes():
    first = load_bytes(b"name,aliases,country\nAcme Surveillance,,DE\n").entries[0]
    same = load_bytes(b"name,aliases,country\nAcme Surveillance,,DE\n").entries[0]
    changed = load_bytes(b"name,aliases,country\nAcme Surveillance,Acme SV,DE\n").entries[0]
    assert first.entry_id == changed.entry_id
    assert first.content_hash() == same.content_hash() != changed.content_hash()
