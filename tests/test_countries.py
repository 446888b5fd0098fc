"""Country codes and names as CRMs send them: exact names accepted, ambiguous names and regions refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from hrdd.config import DEFAULT_DATA_DIR
from hrdd.reference.countries import CountryCodes, UnknownCountry


@pytest.fixture(scope="module")
def codes():
    return CountryCodes({}, DEFAULT_DATA_DIR)


@pytest.mark.parametrize("value, code", [
    ("EG", "EG"), ("eg", "EG"), ("EGY", "EG"), ("Egypt", "EG"), ("XK", "XK"), ("Kosovo", "XK"),
    # ISO's own names in either order, and its common names
    ("Korea, Republic of", "KR"), ("Republic of Korea", "KR"), ("South Korea", "KR"),
    ("Democratic People's Republic of Korea", "KP"), ("North Korea", "KP"),
    ("Democratic Republic of the Congo", "CD"), ("Republic of the Congo", "CG"),
    ("Iran, Islamic Republic of", "IR"), ("Viet Nam", "VN"), ("Türkiye", "TR"),
    # spelling that does not matter: case, accents, punctuation, '&', 'St', a leading 'The'
    ("côte d’ivoire", "CI"), ("Cote d'Ivoire", "CI"), ("Trinidad & Tobago", "TT"), ("St. Kitts and Nevis", "KN"),
    ("St Lucia", "LC"), ("The Netherlands", "NL"), ("Guinea Bissau", "GW"), ("Curacao", "CW"),
    ("Falkland Islands", "FK"),
    # data/country_names.yaml: names in common use that ISO does not spell that way
    ("Turkey", "TR"), ("UK", "GB"), ("U.K.", "GB"), ("Scotland", "GB"), ("U.S.A.", "US"), ("Burma", "MM"),
    ("Ivory Coast", "CI"), ("Swaziland", "SZ"), ("DRC", "CD"), ("Congo-Kinshasa", "CD"), ("Russia", "RU"),
    ("UAE", "AE"), ("Republic of China", "TW"), ("People's Republic of China", "CN"),
])
def test_codes_and_names_in_use_are_accepted(codes, value, code):
    assert codes.normalise(value) == code


@pytest.mark.parametrize("value, candidates", [
    ("Congo", ["CD", "CG"]), ("Korea", ["KP", "KR"]), ("Virgin Islands", ["VG", "VI"]),
])
def test_a_name_of_two_countries_is_refused_naming_both(codes, value, candidates):
    with pytest.raises(UnknownCountry) as err:
        codes.normalise(value)
    assert all(c in str(err.value) for c in candidates) and "could be" in str(err.value)


@pytest.mark.parametrize("value, country", [
    ("Xinjiang Uygur Zizhiqu", "CN"), ("Donetska oblast", "UA"), ("California", "US"), ("Paris", "FR"),
])
def test_a_region_is_refused_and_the_message_says_whose_it_is(codes, value, country):
    with pytest.raises(UnknownCountry) as err:
        codes.normalise(value)
    assert f"region of {country}" in str(err.value) and "governs" in str(err.value)


@pytest.mark.parametrize("value", ["Donetsk", "Crimea", "Xinjiang", "Tibet", "Kashmir", "1", "SE-1", "XX", "Atlantis"])
def test_places_that_are_not_countries_are_never_mapped_to_one(codes, value):
    with pytest.raises(UnknownCountry, match="not an ISO 3166-1 code or a country name"):
        codes.normalise(value)


def test_a_misspelt_name_gets_a_suggestion(codes):
    with pytest.raises(UnknownCountry, match=r"did you mean EG \(Egypt\)"):
        codes.normalise("Egpyt")


def _screen(client, headers, transaction, country):
    transaction["end_user"]["country"] = country
    return client.post("/v1/screenings", json=transaction, headers=headers)


def test_api_refuses_an_ambiguous_country_and_stores_nothing(app, client, auth_headers, transaction):
    r = _screen(client, auth_headers("crm"), transaction, "Congo")
    assert r.status_code == 422
    message = r.json["errors"]["end_user"]["country"][0]
    assert "CD" in message and "CG" in message
    assert app.extensions["hrdd"].store.count_screenings() == 0


def test_api_accepts_a_crm_spelling(client, auth_headers, transaction):
    r = _screen(client, auth_headers("crm"), transaction, "Turkey")
    assert r.status_code == 201 and r.json["transaction"]["end_user"]["country"] == "TR"


@pytest.fixture
def own_data_dir(tmp_path, app_config):
    """A copy of the shipped data directory that the app is configured with (edit it before using the app)."""
    data = tmp_path / "own-data"
    shutil.copytree(DEFAULT_DATA_DIR, data)
    app_config["HRDD_DATA_DIR"] = str(data)
    return data


def _add_name(data_dir: Path, line: str) -> None:
    names = data_dir / "country_names.yaml"
    names.write_text(names.read_text(encoding="utf-8").replace("names:\n", f"names:\n  {line}\n", 1), encoding="utf-8")


@pytest.fixture
def own_spelling(own_data_dir):
    _add_name(own_data_dir, "Arab Republic of Egypt (ARE): EG")


def test_an_organisation_adds_its_own_spellings_in_its_data_directory(own_spelling, client, auth_headers, transaction):
    r = _screen(client, auth_headers("crm"), transaction, "Arab Republic of Egypt (ARE)")
    assert r.status_code == 201 and r.json["transaction"]["end_user"]["country"] == "EG"


def test_a_wrong_code_in_the_names_file_stops_start_up_naming_the_entry(app_config, own_data_dir):
    from server import create_app
    _add_name(own_data_dir, "Narnia: NN")
    with pytest.raises(ValueError, match=r"country_names.yaml: names: 'Narnia' maps to 'NN'"):
        create_app(app_config)
