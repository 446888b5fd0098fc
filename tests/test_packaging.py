"""hrdd installed from its wheel, away from the checkout: the CLI and the app find data, clauses, checklists,
policy, migrations, templates and static files inside the installed package."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml
from docx import Document
from openpyxl import load_workbook

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "transaction_egypt_biometric.json"
# pyproject's `license = "Apache-2.0"` (an SPDX expression) needs setuptools 77; the [test] extra pins it.
MIN_SETUPTOOLS = (77,)

# Runs in the installed copy: builds the app, screens the fixture, downloads its rider and checklist and
# fetches a workspace page and its stylesheet; prints what it got as JSON.
APP_SCRIPT = r"""
import json, sys
from pathlib import Path
from server import create_app
out = Path(sys.argv[2])
app = create_app({"HRDD_DATABASE_URL": sys.argv[1], "TESTING": True, "HRDD_VAR_DIR": str(out)})
store = app.extensions["hrdd"].store
client = app.test_client()
_, key = store.create_api_key("packaging", "admin")
auth = {"Authorization": f"Bearer {key}"}
screening = client.post("/v1/screenings", json=json.loads(Path(sys.argv[3]).read_text()), headers=auth)
sid = screening.get_json()["id"]
options = {"seller_name": "Acme Vision Ltd", "buyer_name": "Nile Integrated Systems LLC",
           "agreement_reference": "AV-2026-0147", "governing_law": "the laws of England and Wales",
           "grievance_contact": "https://acme-vision.example/grievance", "cure_period": "30"}
rider = client.get(f"/v1/screenings/{sid}/rider.docx", query_string=options, headers=auth)
checklist = client.get(f"/v1/screenings/{sid}/checklist.xlsx", headers=auth)
(out / "rider.docx").write_bytes(rider.data)
(out / "checklist.xlsx").write_bytes(checklist.data)
login = client.get("/workspace/login")
css = client.get("/workspace/static/workspace.css")
print(json.dumps({"screening": [screening.status_code, screening.get_json().get("decision")],
                  "rider": [rider.status_code, rider.mimetype],
                  "checklist": [checklist.status_code, checklist.mimetype],
                  "login": [login.status_code, login.get_data(as_text=True)],
                  "css": [css.status_code, len(css.data)], "root": app.root_path}))
"""


def _setuptools_version() -> tuple[int, ...]:
    from importlib.metadata import version
    return tuple(int(part) for part in version("setuptools").split(".")[:1])


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from a copy of this checkout, installed into a bare directory: (directory, log)."""
    if _setuptools_version() < MIN_SETUPTOOLS:
        pytest.skip("building the wheel without isolation needs setuptools>=77: pip install -e '.[test]'")
    base = tmp_path_factory.mktemp("packaging")
    # A copy, so the build's build/ and hrdd.egg-info/ never land in the checkout (or race another run).
    source = base / "source"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", "var", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache",
        "node_modules", "tests", "bench"))
    wheels = base / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
                            "--no-cache-dir", "-w", str(wheels), str(source)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (wheel,) = wheels.glob("hrdd-*.whl")
    target = base / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-cache-dir",
                              "--target", str(target), str(wheel)],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    return target, build.stdout + build.stderr


def run_installed(target: Path, cwd: Path, *args: str, database_url: str,
                  **hrdd_env: str) -> subprocess.CompletedProcess:
    """``python -S ARGS`` with the installed wheel and the dependencies only on the path: no checkout, no .pth
    files (so not the editable install's finder either), no HRDD_* variables but the database URL and
    ``hrdd_env``."""
    paths = dict.fromkeys([str(target), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HRDD_", "PYTHON"))}
    env.update(PYTHONPATH=os.pathsep.join(paths), HRDD_DATABASE_URL=database_url,
               HRDD_VAR_DIR=str(cwd / "var"), **hrdd_env)
    return subprocess.run([sys.executable, "-S", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture
def elsewhere(tmp_path):
    """A working directory outside the checkout, and a SQLite URL in it."""
    return tmp_path, f"sqlite:///{tmp_path / 'hrdd.sqlite3'}"


def test_the_wheel_lists_every_package_it_ships(installed):
    target, log = installed
    assert "absent from the `packages` configuration" not in log
    for module in ("hrdd", "hrdd_plugins", "server"):
        found = run_installed(target, target.parent, "-c", f"import {module}; print({module}.__file__)",
                              database_url="sqlite://")
        assert found.stdout.startswith(str(target)), found.stdout + found.stderr
    for shipped in ("data/SOURCES.md", "clauses/README.md", "clauses/technical/drones.md",
                    "clauses/recitals/ungp.md", "checklists/state-dept-2020.yaml", "policy/default.yaml"):
        assert (target / "hrdd" / "shipped" / shipped).read_bytes() == (ROOT / shipped).read_bytes()


def test_installed_cli_lists_datasets_migrates_and_screens(installed, elsewhere):
    target, _ = installed
    cwd, url = elsewhere
    info = run_installed(target, cwd, "-m", "hrdd.cli", "data", "info", database_url=url)
    assert info.returncode == 0, info.stderr[-3000:]
    for dataset in yaml.safe_load((ROOT / "data" / "datasets.yaml").read_text(encoding="utf-8"))["datasets"]:
        assert f"{dataset['name']}: {dataset['title']}" in info.stdout
    assert "MISSING" not in info.stdout
    assert f"data directory: {target.resolve() / 'hrdd' / 'shipped' / 'data'}" in info.stdout
    own = shutil.copytree(target / "hrdd" / "shipped" / "data", cwd / "our-data")
    overridden = run_installed(target, cwd, "-m", "hrdd.cli", "data", "info", database_url=url,
                               HRDD_DATA_DIR=str(own))
    assert f"data directory: {own.resolve()}" in overridden.stdout, overridden.stderr[-3000:]

    fresh = cwd / "fresh.sqlite3"
    upgrade = run_installed(target, cwd, "-m", "hrdd.cli", "db", "upgrade", database_url=f"sqlite:///{fresh}")
    assert upgrade.returncode == 0, upgrade.stderr[-3000:]
    current = run_installed(target, cwd, "-m", "hrdd.cli", "db", "current", database_url=f"sqlite:///{fresh}")
    assert current.returncode == 0 and "schema up to date (sqlite)" in current.stdout, current.stderr[-3000:]
    heads = [line for line in current.stdout.splitlines() if line.startswith("heads:")]
    assert heads and "recorded: (none)" not in current.stdout

    screen = run_installed(target, cwd, "-m", "hrdd.cli", "screen", str(FIXTURE), database_url=url)
    assert screen.returncode == 0, screen.stderr[-3000:]
    result = json.loads(screen.stdout)
    assert result["decision"] == "escalate" and result["gate"] == "hold"
    assert {"RF-1.2", "RF-2.1"} <= {flag["id"] for flag in result["red_flags"]}


def test_installed_app_serves_rider_checklist_and_workspace(installed, elsewhere):
    target, _ = installed
    cwd, url = elsewhere
    run = run_installed(target, cwd, "-c", APP_SCRIPT, url, str(cwd), str(FIXTURE), database_url=url)
    assert run.returncode == 0, run.stderr[-3000:]
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(got["root"]).resolve() == (target / "hrdd").resolve()
    assert got["screening"] == [201, "escalate"]
    assert got["rider"] == [200, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"]
    assert got["checklist"] == [200, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"]
    rider = Document(str(cwd / "rider.docx"))
    assert "Audit, inspection and records" in [p.text for p in rider.paragraphs]
    questions = load_workbook(io.BytesIO((cwd / "checklist.xlsx").read_bytes()))["Questions"]
    assert "past_misuse" in {questions.cell(row=r, column=1).value for r in range(2, questions.max_row + 1)}
    assert got["login"][0] == 200 and "workspace.css" in got["login"][1]
    assert got["css"][0] == 200 and got["css"][1] > 0
