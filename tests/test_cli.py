"""The `hrdd` command as an operator uses it: keys, screen, db upgrade, data info, serve."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from hrdd.cli import cli

FIXTURE = Path(__file__).parent / "fixtures" / "transaction_egypt_biometric.json"


@pytest.fixture
def env(database_url):
    return {"HRDD_DATABASE_URL": database_url}


def run(env, *args):
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    return result


pytestmark = pytest.mark.store


def test_keys_create_prints_key_alone_on_last_line_and_it_works(env, transaction):
    result = run(env, "keys", "create", "Salesforce prod", "--role", "crm")
    assert result.exit_code == 0
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("hrdd_") and " " not in key
    from server import create_app
    app = create_app({"HRDD_DATABASE_URL": env["HRDD_DATABASE_URL"]})
    r = app.test_client().post("/v1/screenings", json=transaction, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 201
    listing = run(env, "keys", "list").output
    assert "Salesforce prod" in listing and key not in listing
    key_id = listing.split()[0]
    revoked = run(env, "keys", "revoke", key_id)
    # The operator is told that a running server still accepts the key for a few seconds.
    assert revoked.exit_code == 0 and f"revoked {key_id}" in revoked.output and "10 seconds" in revoked.output
    assert "revoked" in run(env, "keys", "list").output
    fresh = create_app({"HRDD_DATABASE_URL": env["HRDD_DATABASE_URL"]})
    r = fresh.test_client().post("/v1/screenings", json=transaction, headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 401


def test_keys_create_refuses_unknown_role(env):
    result = CliRunner().invoke(cli, ["keys", "create", "x", "--role", "god"], env=env)
    assert result.exit_code != 0 and "crm" in result.output


def test_screen_file_offline(env):
    result = run(env, "screen", str(FIXTURE))
    assert result.exit_code == 0
    body = json.loads(result.output)
    assert body["decision"] == "escalate" and body["id"] is None


def test_screen_bad_file_names_the_problem(env, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**json.loads(FIXTURE.read_text()), "stage": "invoice"}))
    result = CliRunner().invoke(cli, ["screen", str(bad)], env=env)
    assert result.exit_code == 1 and "stage" in result.output and "bad.json" in result.output
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    result = CliRunner().invoke(cli, ["screen", str(broken)], env=env)
    assert result.exit_code == 1 and "not valid JSON" in result.output


@pytest.mark.parametrize("content, words", [
    (b"\xff\xfe\x00", "codec can't decode"),  # binary that starts like UTF-16
    (b"[" * 100_000, "nested more than 64 levels"),
    (b'{"stage": "quote", "stage": "order"}', "'stage' appears twice"),
])
def test_screen_unreadable_file_is_an_error_not_a_traceback(env, tmp_path, content, words):
    path = tmp_path / "odd.json"
    path.write_bytes(content)
    result = CliRunner().invoke(cli, ["screen", str(path)], env=env)
    assert result.exit_code == 1 and words in result.output and "odd.json" in result.output
    assert result.exc_info[0] is SystemExit  # a clean click error, not an uncaught exception


def test_screen_reads_utf16(env, tmp_path):
    path = tmp_path / "utf16.json"
    path.write_bytes(FIXTURE.read_text().encode("utf-16"))
    result = CliRunner().invoke(cli, ["screen", str(path)], env=env)
    assert result.exit_code == 0 and json.loads(result.output)["decision"] == "escalate"


def test_unreachable_store_is_a_clear_error_without_the_password():
    env = {"HRDD_DATABASE_URL": "postgresql+psycopg://hrdd:s3cret@127.0.0.1:1/hrdd"}
    result = CliRunner().invoke(cli, ["keys", "list"], env=env)
    assert result.exit_code == 1 and result.exc_info[0] is SystemExit
    assert "cannot open the store" in result.output and "HRDD_DATABASE_URL" in result.output
    assert "127.0.0.1:1" in result.output and "s3cret" not in result.output


def test_db_upgrade_and_data_info(env):
    assert "schema up to date" in run(env, "db", "upgrade").output
    info = run(env, "data", "info").output
    assert "Freedom in the World" in info and "CC BY-NC 4.0" in info and "2025" in info
    assert "4940 rows" in info
    assert re.search(r"country_names: .*\n  file: +country_names.yaml \([1-9][0-9]* rows\)", info)


def test_bad_policy_file_is_refused_with_its_name(env, tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\ncountry_risk: {}\n")
    result = CliRunner().invoke(cli, ["db", "upgrade"], env={**env, "HRDD_POLICY_FILE": str(policy)})
    assert result.exit_code == 1 and result.exc_info[0] is SystemExit  # one line, no traceback
    assert "policy.yaml" in result.output and "step3" in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_answers_on_waitress(database_url, tmp_path):
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "hrdd.cli", "serve", "--port", str(port)],
                            env={**os.environ, "HRDD_DATABASE_URL": database_url},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        # Start-up (imports, migrations) takes 2 s on a quiet machine and over 20 s on a loaded one.
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as r:
                    assert json.load(r)["status"] == "ready"
                    assert r.headers["Server"] == "hrdd"
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("hrdd serve did not answer: " + proc.stdout.read1().decode())
                time.sleep(0.1)
    finally:
        proc.terminate()
        proc.wait(5)


def _alembic_version(database_url, statement, **params):
    import sqlalchemy as sa
    engine = sa.create_engine(database_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), params)
    finally:
        engine.dispose()


@pytest.mark.parametrize("args", [["keys", "list"], ["db", "upgrade"], ["serve", "--port", "1"]])
def test_a_database_from_a_newer_hrdd_is_one_clear_line(env, args):
    assert run(env, "db", "upgrade").exit_code == 0
    _alembic_version(env["HRDD_DATABASE_URL"], "INSERT INTO alembic_version VALUES (:rev)", rev="0799_future")
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 1 and result.exc_info[0] is SystemExit
    assert len(result.output.strip().splitlines()) == 1
    assert "migrated by a newer hrdd (unknown revision 0799_future); upgrade hrdd or restore a backup" in result.output


def test_a_database_error_at_start_up_is_one_line_naming_it(env, tmp_path):
    url = env["HRDD_DATABASE_URL"]
    if url.startswith("sqlite"):
        garbage = tmp_path / "not-a-database.sqlite3"
        garbage.write_bytes(b"not a database\n" * 512)
        url, reason = f"sqlite:///{garbage}", "file is not a database."
    else:
        # A store hrdd cannot write to: start-up records in the audit trail.
        assert run(env, "db", "upgrade").exit_code == 0
        sep = "%20" if "options=" in url else ("&options=" if "?" in url else "?options=")
        url, reason = url + sep + "-cdefault_transaction_read_only%3Don", "accepts writes."
    result = CliRunner().invoke(cli, ["keys", "list"], env={"HRDD_DATABASE_URL": url})
    assert result.exit_code == 1 and result.exc_info[0] is SystemExit
    assert len(result.output.strip().splitlines()) == 1
    assert result.output.startswith("Error: cannot open the store") and reason in result.output


def test_db_current_says_whether_the_schema_is_this_hrdds(env):
    empty = CliRunner().invoke(cli, ["db", "current"], env=env)
    assert empty.exit_code == 1 and "recorded: (none)" in empty.output and "no hrdd schema" in empty.output
    run(env, "db", "upgrade")
    current = run(env, "db", "current")
    assert current.exit_code == 0 and "schema up to date" in current.output
    heads = re.search(r"heads: +(.*)", current.output).group(1).split(", ")
    assert re.search(r"recorded: +(.*)", current.output).group(1).split(", ") == heads
    _alembic_version(env["HRDD_DATABASE_URL"], "DELETE FROM alembic_version WHERE version_num = :rev", rev=heads[0])
    behind = CliRunner().invoke(cli, ["db", "current"], env=env)
    assert behind.exit_code == 1 and "out of date" in behind.output and "hrdd db upgrade" in behind.output
    _alembic_version(env["HRDD_DATABASE_URL"], "INSERT INTO alembic_version VALUES (:rev)", rev="0799_future")
    newer = CliRunner().invoke(cli, ["db", "current"], env=env)
    assert newer.exit_code == 1 and "0799_future" in newer.output and "newer hrdd" in newer.output


# SQLAlchemy warns that SQLite ignores the query argument: the test gives it on purpose.
@pytest.mark.filterwarnings("ignore:Query string argument:sqlalchemy.exc.SAWarning")
def test_a_password_given_as_a_query_parameter_is_never_printed(env, monkeypatch):
    from hrdd import checkpoints, serving
    unreachable = "postgresql+psycopg://hrdd@/hrdd?host=127.0.0.1&port=1&password=QuerySecret1"
    result = CliRunner().invoke(cli, ["keys", "list"], env={"HRDD_DATABASE_URL": unreachable})
    assert result.exit_code == 1 and "cannot open the store" in result.output
    assert "QuerySecret1" not in result.output and "password=***" in result.output
    monkeypatch.setattr(serving, "serve", lambda *args, **kwargs: None)
    monkeypatch.setattr(checkpoints, "start", lambda store: None)
    url = env["HRDD_DATABASE_URL"]
    served = run({"HRDD_DATABASE_URL": f"{url}{'&' if '?' in url else '?'}password=QuerySecret1"}, "serve")
    assert served.exit_code == 0 and "hrdd listening on" in served.output
    assert "QuerySecret1" not in served.output and "password=***" in served.output


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "two\nlines"])
def test_keys_create_refuses_a_blank_long_or_multi_line_name(env, name):
    result = CliRunner().invoke(cli, ["keys", "create", name, "--role", "crm"], env=env)
    assert result.exit_code == 1 and result.exc_info[0] is SystemExit
    assert "name must be 1-200 characters" in result.output
    assert run(env, "keys", "list").output == ""


def test_keys_create_takes_a_name_of_200_characters(env):
    assert run(env, "keys", "create", "x" * 200, "--role", "crm").exit_code == 0
    assert "x" * 200 in run(env, "keys", "list").output


def test_help_lists_hrdds_commands_without_creating_a_store(tmp_path):
    # The default store is ./var/hrdd.sqlite3: asking for help in a directory must not leave one there.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("HRDD_")}
    for args in (["--help"], ["keys", "--help"], ["db", "upgrade", "--help"]):
        done = subprocess.run([sys.executable, "-m", "hrdd.cli", *args], capture_output=True, text=True,
                              cwd=tmp_path, env=environment, timeout=120)
        assert done.returncode == 0, done.stderr
        assert list(tmp_path.iterdir()) == [], args
    # Flask-Limiter's maintenance group and Flask's --app/--debug options are not hrdd's.
    assert "limiter" not in done.stdout
    top = subprocess.run([sys.executable, "-m", "hrdd.cli", "--help"], capture_output=True, text=True,
                         cwd=tmp_path, env=environment, timeout=120).stdout
    assert "limiter" not in top and "--app" not in top and "--debug" not in top
    assert all(f"\n  {name} " in top for name in ("serve", "screen", "keys", "db", "data", "users", "worker"))


@pytest.mark.parametrize("text, message", [
    ("adapters:\n  salesforce:\n    token: ${HRDD_TEST_UNSET_TOKEN}\n",
     "adapters.salesforce.token: environment variable HRDD_TEST_UNSET_TOKEN is not set"),
    ("adapters:\n  salesforce:\n    token: t\n    organization_ids: [00D5e000000KQ2e]\n"
     "    field_maps: {Opportunity: {intended_use: {field: HRDD_Intended_Use__c, type: text}}}\n",
     "adapters.salesforce.field_maps.Opportunity.intended_use.type: unknown type 'text' "
     "(accepted: str, int, float, bool)"),
])
def test_a_broken_adapters_file_is_one_line_naming_the_file_and_setting(env, tmp_path, text, message):
    path = tmp_path / "adapters.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["keys", "list"], env={**env, "HRDD_ADAPTERS_FILE": str(path)})
    assert result.exit_code == 1 and result.exc_info[0] is SystemExit
    assert result.output.strip() == f"Error: {path}: {message}"
