"""`hrdd lists`, `hrdd lists load` and `hrdd rescreen` as an operator runs them."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from hrdd.cli import cli
from hrdd.parties import service
from hrdd.parties.commands import register

pytestmark = pytest.mark.store

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
register(cli)


@pytest.fixture
def env(database_url):
    service.invalidate()
    return {"HRDD_DATABASE_URL": database_url}


def run(env, *args):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


def test_lists_loads_the_shipped_default_on_first_use(env):
    result = run(env, "lists")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "compiled-us-jp-ca" in lines[1] and "4,940" in lines[1] and "active" in lines[1]
    assert lines[-1] == "screenings use: compiled-us-jp-ca@1"


def test_load_csl_file_as_new_version(env):
    run(env, "lists")
    result = run(env, "lists", "load", FIXTURES / "parties" / "csl_sample.csv")
    assert result.exit_code == 0, result.output
    assert "Loaded 5 entries (14 names and aliases) from csl_sample.csv [csl] as list 'csl', version 2" in result.output
    assert "hrdd rescreen --since-list-version 2" in result.output
    again = run(env, "lists", "load", FIXTURES / "parties" / "csl_sample.csv", "--format", "csl")
    assert "version 3" in again.output
    listing = run(env, "lists").output
    assert "superseded" in listing.splitlines()[2] and listing.splitlines()[-1] == (
        "screenings use: compiled-us-jp-ca@1+csl@3")


def test_malformed_file_is_refused_and_nothing_is_loaded(env, tmp_path):
    run(env, "lists")
    bad = tmp_path / "partner.csv"
    bad.write_text("name,aliases,country\nNile Integrated Systems,,AE\nOrion,,Atlantis\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["lists", "load", str(bad), "--name", "partners"], env=env)
    assert result.exit_code != 0
    assert "partner.csv: line 3: unknown country 'Atlantis'; nothing was loaded" in result.output
    assert "partners" not in run(env, "lists").output


def test_bad_list_name_is_refused(env):
    result = CliRunner().invoke(cli, ["lists", "load", str(FIXTURES / "parties" / "own_list.csv"),
                                      "--name", "our list+1"], env=env)
    assert result.exit_code != 0 and "list name 'our list+1'" in result.output


def test_rescreen_reports_changed_decisions(env, database_url):
    from server import create_app
    app = create_app({"HRDD_DATABASE_URL": database_url})
    services = app.extensions["hrdd"]
    body = json.loads((FIXTURES / "transaction_norway_storage.json").read_text(encoding="utf-8"))
    clean = copy.deepcopy(body)
    clean["reference"]["object_id"] = "clean-1"
    partner = copy.deepcopy(body)
    partner["reference"]["object_id"] = "partner-1"
    partner["parties"] = [{"role": "integrator", "name": "Kestrel Data Analytics LLC", "country": "US"}]
    with app.app_context():
        first = services.screen_and_store(partner)[0]
        services.screen_and_store(clean)
    assert first["decision"] == "proceed"

    loaded = run(env, "lists", "load", FIXTURES / "parties" / "own_list.csv", "--name", "own")
    assert "version 2" in loaded.output

    dry = run(env, "rescreen", "--since-list-version", 2, "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "1 decision(s) would change. Nothing was stored (dry run)." in dry.output
    assert services.store.count_screenings() == 2

    result = run(env, "rescreen", "--since-list-version", 2)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith(first["transaction_id"]))
    assert "(hubspot/deal/partner-1): proceed -> do_not_proceed (gate release -> block); new flags RF-4.3" in line
    assert "2 transaction(s) re-screened against compiled-us-jp-ca@1+own@2; 1 decision(s) changed." in result.output
    latest = services.store.latest_screening(first["transaction_id"])
    assert latest["versions"]["data"]["parties"] == "compiled-us-jp-ca@1+own@2"

    assert "0 transaction(s) re-screened" in run(env, "rescreen", "--since-list-version", 2).output
    missing = CliRunner().invoke(cli, ["rescreen", "--since-list-version", "9"], env=env)
    assert missing.exit_code != 0 and "there is no list version 9" in missing.output


def test_installed_hrdd_command_has_the_list_commands(database_url):
    environment = {**os.environ, "HRDD_DATABASE_URL": database_url}
    out = subprocess.run([sys.executable, "-c", "from hrdd.cli import main; main()", "lists", "load",
                          str(FIXTURES / "parties" / "own_list.csv"), "--name", "own"],
                         capture_output=True, text=True, cwd=ROOT, env=environment, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Loaded 3 entries (6 names and aliases) from own_list.csv [simple] as list 'own', version 1" in out.stdout
