"""`hrdd lists` and `hrdd lists load` as an operator runs them, then `hrdd rescreen` against a new list."""

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
from hrdd.plugins import make_plugin_manager

pytestmark = pytest.mark.store

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"
make_plugin_manager(entry_points=False).hook.hrdd_register_commands(cli=cli)  # as `hrdd` (main) does


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
    assert lines[-1] == "screenings use: compiled-us-jp-ca@1 (recorded as parties version 1)"


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
        "screenings use: compiled-us-jp-ca@1+csl@3 (recorded as parties version 3)")


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


def test_rescreen_after_a_new_list_reports_the_changed_decision(env, database_url):
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
    assert first["decision"] == "proceed" and first["versions"]["data"]["parties"] == "1"

    loaded = run(env, "lists", "load", FIXTURES / "parties" / "own_list.csv", "--name", "own")
    assert "version 2" in loaded.output and "--since-list-version 2" in loaded.output

    result = run(env, "rescreen", "--since-list-version", 2)
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith(first["transaction_id"]))
    assert "decision proceed -> do_not_proceed; new red flags RF-4.3 (critical" in line
    assert "parties 1 -> 2" in line
    assert "2 examined, 2 new screenings, 1 changed decisions" in result.output
    latest = services.store.latest_screening(first["transaction_id"])
    assert latest["versions"]["data"]["parties_lists"] == "compiled-us-jp-ca@1+own@2"
    flag = next(f for f in latest["red_flags"] if f["id"] == "RF-4.3")
    assert "Kestrel Data Analytics, LLC" in flag["evidence"] and "own@2" in flag["evidence"]

    assert "0 examined" in run(env, "rescreen", "--since-list-version", 2).output


def test_installed_hrdd_command_has_the_list_commands(database_url):
    environment = {**os.environ, "HRDD_DATABASE_URL": database_url}
    out = subprocess.run([sys.executable, "-c", "from hrdd.cli import main; main()", "lists", "load",
                          str(FIXTURES / "parties" / "own_list.csv"), "--name", "own"],
                         capture_output=True, text=True, cwd=ROOT, env=environment, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Loaded 3 entries (6 names and aliases) from own_list.csv [simple] as list 'own', version 1" in out.stdout
