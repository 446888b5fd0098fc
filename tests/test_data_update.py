"""The yearly data update as a compliance data steward does it: new editions installed, broken files refused."""

from __future__ import annotations

import codecs
import csv
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from hrdd.cli import cli
from hrdd.config import DEFAULT_DATA_DIR, DEFAULT_POLICY_FILE
from hrdd.policy import Policy
from hrdd.reference import ReferenceData

FIW = "freedom_house_fiw_2013_2025.csv"
PTS = "political_terror_scale_1976_2023.csv"
WGI = "wgi_governance_1996_2022.csv"


@pytest.fixture
def data_dir(tmp_path):
    """A copy of the shipped data directory to edit."""
    target = tmp_path / "data"
    shutil.copytree(DEFAULT_DATA_DIR, target)
    return target


def load(data_dir: Path) -> ReferenceData:
    return ReferenceData(data_dir, Policy.load(DEFAULT_POLICY_FILE))


def add_fiw_2026(data_dir: Path, *, drop: str = "EGY", new_name: str = "freedom_house_fiw_2013_2026.csv") -> Path:
    """Freedom House's 2026 edition: Georgia becomes Not Free, one country is left out; the file is renamed."""
    old = data_dir / FIW
    with old.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    added = []
    for row in rows:
        if row["edition"] == "2025" and row["iso3"] != drop:
            added.append({**row, "edition": "2026", "data_year": "2025",
                          **({"status": "NF", "total": "30"} if row["iso3"] == "GEO" else {})})
    new = data_dir / new_name
    with new.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, list(rows[0]))
        writer.writeheader()
        writer.writerows(added + rows)
    old.unlink()
    listing = data_dir / "datasets.yaml"
    listing.write_text(listing.read_text(encoding="utf-8").replace(FIW, new_name), encoding="utf-8")
    return new


def test_a_new_edition_in_a_renamed_file_is_read_from_datasets_yaml(data_dir):
    add_fiw_2026(data_dir)
    reference = load(data_dir)
    assert reference.versions["fiw"] == "2026"
    georgia = reference.country("GE")
    assert georgia.tier == "high" and "Freedom in the World 2026: Not Free, 30/100" in georgia.figures()


def test_a_country_left_out_of_the_new_edition_says_so_in_its_evidence(data_dir):
    add_fiw_2026(data_dir)
    egypt = load(data_dir).country("EG")
    assert "Freedom in the World 2025: Not Free, 18/100 (none in 2026)" in egypt.figures()


def test_screenings_quote_the_new_edition_and_data_info_shows_it(app_config, data_dir, transaction):
    from server import create_app
    add_fiw_2026(data_dir)
    app_config["HRDD_DATA_DIR"] = str(data_dir)
    app = create_app(app_config)
    _, key = app.extensions["hrdd"].store.create_api_key("crm", "crm")
    transaction["end_user"]["country"] = "GE"
    transaction["deployment_countries"] = ["GE"]
    body = app.test_client().post("/v1/screenings", json=transaction,
                                  headers={"Authorization": f"Bearer {key}"}).get_json()
    assert body["versions"]["data"]["fiw"] == "2026"
    rf21 = next(f for f in body["red_flags"] if f["id"] == "RF-2.1")
    assert "Georgia: Freedom in the World 2026: Not Free, 30/100" in rf21["evidence"]
    app.extensions["hrdd"].store.close()
    info = CliRunner().invoke(cli, ["data", "info"], env={"HRDD_DATA_DIR": str(data_dir),
                                                          "HRDD_DATABASE_URL": app_config["HRDD_DATABASE_URL"]})
    assert info.exit_code == 0, info.output
    assert re.search(r"fiw: .*\n  file: +freedom_house_fiw_2013_2026.csv \(\d+ rows\)\n  version: 2026", info.output)
    assert "cite:" in info.output and "Gibney" in info.output


def test_data_check_says_what_a_new_edition_changes_before_it_is_used(data_dir):
    add_fiw_2026(data_dir)
    result = CliRunner().invoke(cli, ["data", "check", str(data_dir)], env={"HRDD_DATA_DIR": str(DEFAULT_DATA_DIR)})
    assert result.exit_code == 0, result.output
    assert "versions: fiw 2025 -> 2026" in result.output
    assert "country tier elevated -> high: GE (Georgia)" in result.output
    assert re.search(r"fiw: freedom_house_fiw_2013_2026.csv, latest 2026, .*not in 2026.*EG 2025", result.output)


def _line_of(path: Path, start: str) -> int:
    return next(n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if line.startswith(start))


EGYPT_2025 = "Egypt,EGY,Africa,c,2025,2024,NF,"


def _edit_last_field(text: str, start: str, value: str) -> str:
    lines = text.split("\n")
    n = next(i for i, line in enumerate(lines) if line.startswith(start))
    lines[n] = lines[n].rsplit(",", 1)[0] + "," + value
    return "\n".join(lines)


# name, file, edit of the text, what the message must say (a regular expression; {line} is the edited line)
BROKEN = [
    ("renamed column", FIW, lambda t: t.replace(",status,", ",Status,", 1),
     r"line 1: no column 'status' \(the file has 'Status'\)"),
    ("text for a score", FIW, lambda t: _edit_last_field(t, EGYPT_2025, "eighteen"),
     r"line {line}, column 'total': 'eighteen' is not a whole number from -4 to 100"),
    ("country and year twice", FIW, lambda t: t + EGYPT_2025.replace(",NF,", ",F,") + t.split(EGYPT_2025)[1].split("\n")[0] + "\n",
     r"line \d+, column 'edition': EG 2025 is already given on line {line}"),
    ("unknown country code", FIW, lambda t: t.replace("Egypt,EGY,", "Egypt,EGX,"),
     r"lines {line}, .*column 'iso3': 'EGX' is not an ISO 3166-1 alpha-3 code .*country_codes.yaml"),
    ("empty file", FIW, lambda t: "", r"the file is empty"),
    ("Excel export with ';'", FIW, lambda t: "\ufeff" + t.replace(",", ";"),
     r"line 1: the columns are separated by ';', not ','"),
    ("PTS score out of range", PTS, lambda t: t.replace("Egypt,Egypt,2023,EGY,651,EGY,818,mena,4,4,4",
                                                        "Egypt,Egypt,2023,EGY,651,EGY,818,mena,4,9,4"),
     r"line \d+, column 'PTS_H': '9' is not a whole number from 1 to 5"),
    ("WGI decimal comma", WGI, lambda t: t.replace("-0.2638,42.4528", '-0.2638,"42,4528"'),
     r"line \d+, column 'rule_of_law_percentile_rank': '42,4528' is not a number from 0 to 100 \(use '.' as"),
    ("WGI column gone", WGI, lambda t: t.replace("rule_of_law_percentile_rank", "rule_of_law_pct_rank", 1),
     r"line 1: no column 'rule_of_law_percentile_rank'"),
]


@pytest.mark.parametrize("name, file, edit, message", BROKEN, ids=[b[0] for b in BROKEN])
def test_a_broken_file_is_refused_naming_file_line_and_column(data_dir, name, file, edit, message):
    path = data_dir / file
    line = _line_of(path, EGYPT_2025) if file == FIW else 0
    path.write_text(edit(path.read_text(encoding="utf-8")), encoding="utf-8")
    expected = re.escape(str(path)) + ": .*" + message.format(line=line)
    with pytest.raises(ValueError, match=expected):
        load(data_dir)
    result = CliRunner().invoke(cli, ["data", "check", str(data_dir)])
    assert result.exit_code == 1 and re.search(expected, result.output), result.output
    assert "Traceback" not in result.output


def test_a_broken_file_stops_start_up_with_one_line(app_config, data_dir):
    path = data_dir / PTS
    path.write_text(path.read_text(encoding="utf-8").replace("WordBank_Code_A", "WorldBank_Code_A"), encoding="utf-8")
    result = CliRunner().invoke(cli, ["data", "info"], env={"HRDD_DATA_DIR": str(data_dir),
                                                           "HRDD_DATABASE_URL": app_config["HRDD_DATABASE_URL"]})
    assert result.exit_code == 1 and result.exc_info[0] is SystemExit
    assert f"Error: {path}: line 1: no column 'WordBank_Code_A' (the file has 'WorldBank_Code_A')" in result.output


def test_an_excel_csv_with_a_byte_order_mark_is_read(data_dir):
    path = data_dir / FIW
    path.write_bytes(codecs.BOM_UTF8 + path.read_bytes())
    assert load(data_dir).country("EG").fiw.total == 18


def test_a_renamed_column_can_be_mapped_in_datasets_yaml(data_dir):
    path = data_dir / FIW
    path.write_text(path.read_text(encoding="utf-8").replace(",status,", ",Status,", 1), encoding="utf-8")
    listing = data_dir / "datasets.yaml"
    listing.write_text(listing.read_text(encoding="utf-8").replace(
        f"    file: {FIW}\n", f"    file: {FIW}\n    columns: {{status: Status}}\n"), encoding="utf-8")
    assert load(data_dir).country("EG").fiw.status == "NF"


def test_a_file_datasets_yaml_names_that_is_not_there_is_named(data_dir):
    listing = data_dir / "datasets.yaml"
    listing.write_text(listing.read_text(encoding="utf-8").replace(FIW, "fiw_2026.csv"), encoding="utf-8")
    with pytest.raises(ValueError, match=r"fiw_2026.csv: no such file \(the fiw dataset that datasets.yaml lists\)"):
        load(data_dir)


def _embargo_screening(data_dir: Path, country: str, transaction: dict):
    from hrdd.engine import Engine
    from hrdd.model import Transaction
    from hrdd.plugins import make_plugin_manager
    reference = load(data_dir)
    transaction["end_user"]["country"] = country
    transaction["deployment_countries"] = [country]
    return Engine(make_plugin_manager(), reference, reference_policy()).screen(Transaction.from_dict(transaction))


def reference_policy() -> Policy:
    return Policy.load(DEFAULT_POLICY_FILE)


def _add_embargo(data_dir: Path, text: str) -> None:
    path = data_dir / "embargoes.yaml"
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")


def test_an_embargo_applies_from_its_date_not_before(data_dir, transaction):
    import datetime as dt
    today = dt.datetime.now(dt.UTC).date()
    starts = today + dt.timedelta(days=30)
    _add_embargo(data_dir, f"  - country: MM\n    scope: all\n    since: \"{starts}\"\n"
                           f"    authority: Council Regulation (EU) 2027/1\n    source: https://eur-lex.europa.eu/\n")
    reference = load(data_dir)
    assert reference.embargo("MM") is None and reference.embargo("MM", on=starts).since == starts.isoformat()
    assert "RF-4.4" not in _embargo_screening(data_dir, "MM", transaction).flag_ids()
    result = CliRunner().invoke(cli, ["data", "check", str(data_dir)])
    assert f"embargoes not yet in force (re-screen on the day: hrdd rescreen): MM (all) from {starts}" in result.output


def test_a_lifted_embargo_no_longer_applies_and_keeps_its_history(data_dir, transaction):
    import datetime as dt
    today = dt.datetime.now(dt.UTC).date()
    path = data_dir / "embargoes.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        '  - country: CU\n    scope: all\n    since: "1962-02-07"\n',
        f'  - country: CU\n    scope: all\n    since: "1962-02-07"\n    until: "{today}"\n'
        f'    lifted_by: Presidential determination\n'), encoding="utf-8")
    reference = load(data_dir)
    assert reference.embargo("CU") is None
    assert reference.embargo("CU", on=today - dt.timedelta(days=1)).until == today.isoformat()
    assert "RF-4.4" not in _embargo_screening(data_dir, "CU", transaction).flag_ids()


@pytest.mark.parametrize("entry, message", [
    ("  - country: Iran\n    scope: all\n    since: 2020-01-01\n    authority: A\n    source: S\n",
     r"entry 6: country 'Iran' is not an ISO 3166-1 alpha-2 code"),
    ("  - country: MM\n    scope: all\n    since: 2020-01-01\n    lifted: 2021-01-01\n    authority: A\n    source: S\n",
     r"entry 6: unknown key\(s\) lifted; the keys are country, scope, since, authority, source, until"),
    ("  - country: MM\n    scope: all\n    since: next year\n    authority: A\n    source: S\n",
     r"entry 6: since 'next year' is not a date \(YYYY-MM-DD\)"),
    ("  - country: IR\n    scope: all\n    since: 2020-01-01\n    authority: A\n    source: S\n",
     r"entry 6: IR from 2020-01-01 overlaps the entry from 1995-05-06"),
])
def test_a_wrong_embargo_entry_is_refused_naming_it(data_dir, entry, message):
    _add_embargo(data_dir, entry)
    with pytest.raises(ValueError, match=re.escape(str(data_dir / "embargoes.yaml")) + ": " + message):
        load(data_dir)


def test_a_corrected_data_file_is_recorded_in_the_audit_trail_at_start_up(app_config, data_dir):
    # A corrected edition keeps its year, so the versions screenings record do not change: the trail must.
    from hrdd import audit
    from server import create_app
    config = {**app_config, "HRDD_DATA_DIR": str(data_dir)}
    create_app(config).extensions["hrdd"].store.close()
    path = data_dir / WGI
    path.write_text(path.read_text(encoding="utf-8").replace("-0.2638,42.4528", "-0.2638,41.9000"), encoding="utf-8")
    again = create_app(config)
    with again.extensions["hrdd"].store.engine.connect() as conn:
        changes = [e for e in audit.entries(conn) if e["action"] == "config.change"]
        assert audit.verify(conn).ok
    again.extensions["hrdd"].store.close()
    assert changes[0]["details"]["changed"] == ["data"]
    assert changes[0]["details"]["files"] == {"data": {"added": [], "removed": [], "edited": [WGI]}}


@pytest.mark.parametrize("file", ["capabilities.yaml", "red_flags.yaml", "country_names.yaml", "datasets.yaml"])
def test_a_yaml_data_file_with_a_syntax_error_stops_start_up_with_one_line(app_config, data_dir, file):
    path = data_dir / file
    lines = len(path.read_text(encoding="utf-8").splitlines())
    path.write_text(path.read_text(encoding="utf-8") + "broken: [\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["data", "info"], env={"HRDD_DATA_DIR": str(data_dir),
                                                           "HRDD_DATABASE_URL": app_config["HRDD_DATABASE_URL"]})
    assert result.exit_code == 1 and result.exc_info[0] is SystemExit
    assert result.output.startswith(f"Error: {path}: not valid YAML: line {lines + 2}, column 1: ")


def test_a_catalogue_entry_without_its_step_stops_start_up_naming_it(app_config, data_dir):
    path = data_dir / "red_flags.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("    step: 0\n", "    stepp: 0\n", 1), encoding="utf-8")
    result = CliRunner().invoke(cli, ["data", "info"], env={"HRDD_DATA_DIR": str(data_dir),
                                                           "HRDD_DATABASE_URL": app_config["HRDD_DATABASE_URL"]})
    assert result.exit_code == 1 and result.exc_info[0] is SystemExit
    assert f"Error: {path}: red flag RF-0.1 has no 'step'" in result.output
