"""Schemathesis against /openapi.json of a live in-process app: no operation ever answers 5xx.

Every operation is called with credentials for its least-privileged role (read from the spec's
``x-hrdd-roles``), a signed-in session and CSRF token for the workspace pages, and every adapter
configured so webhook bodies get past "not configured". Path ids are real stored ids half of the
time, so generated bodies and filters reach the code behind the 404s. Bounded by HRDD_FUZZ_EXAMPLES
(default 20 per operation) to fit in `.ci/run`; raise it for a longer local run.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import fresh_database, load_fixture
from tests.workspace_helpers import csrf_from, login, make_user

pytestmark = [pytest.mark.api, pytest.mark.slow]
EXAMPLES = int(os.environ.get("HRDD_FUZZ_EXAMPLES", "20"))
DYNAMICS_HEADER = ("X-Dynamics-Key", "fuzz-dynamics-key")
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    """A fresh database for the whole module (SQLite, or a schema in HRDD_TEST_DATABASE_URL's PostgreSQL)."""
    with fresh_database(tmp_path_factory.mktemp("fuzz")) as url:
        yield url


class Live:
    """The app under test, a key per role, a reviewer session, and ids of stored objects."""

    def __init__(self, database, tmp_path):
        from server import create_app

        self.keys: dict[str, str] = {}
        adapters = {
            "salesforce": {"organization_ids": ["00D5e000000KQ2e"], "token": "fuzz-salesforce-token"},
            "hubspot": {"client_secret": "fuzz-hubspot-secret"},
            "dynamics": {"auth_header": DYNAMICS_HEADER[0], "auth_key": DYNAMICS_HEADER[1]},
            "odoo": {"token": "fuzz-odoo-token"},
        }
        self.app = create_app({"HRDD_DATABASE_URL": database, "TESTING": True, "HRDD_VAR_DIR": str(tmp_path),
                               "HRDD_SESSION_COOKIE_SECURE": "0", "HRDD_ADAPTERS": {"adapters": adapters}})
        store = self.app.extensions["hrdd"].store
        for role in ("crm", "contracts", "export", "reviewer", "admin"):
            self.keys[role] = store.create_api_key(f"fuzz-{role}", role)[1]
        # SAP Event Mesh authenticates with a configured bearer token: the admin key the fuzzer sends.
        from hrdd.adapters.config import settings_for

        settings_for(self.app)["adapters"]["sap"] = {"bearer_token": self.keys["admin"]}
        client = self.app.test_client()
        screening = client.post("/v1/screenings", json=load_fixture("transaction_egypt_biometric.json"),
                                headers=self.bearer("crm")).get_json()
        case = client.get("/v1/cases?status=all", headers=self.bearer("reviewer")).get_json()["cases"][0]
        grievance = client.post("/v1/grievances", json={
            "subject_name": "Directorate of Public Security", "country": "EG",
            "description": "Cameras sold last year are used to identify protesters."}).get_json()
        self.ids = {"screening_id": screening["id"], "transaction_id": screening["transaction_id"],
                    "case_id": case["id"], "grievance_id": grievance["reference"]}
        make_user(self.app, "fuzz-reviewer", "reviewer")
        browser = self.app.test_client()
        assert login(browser, "fuzz-reviewer").status_code == 302
        self.csrf = csrf_from(browser, "/workspace/")
        self.cookie = browser.get_cookie("hrdd_session").value

    def bearer(self, role: str) -> dict:
        return {"Authorization": f"Bearer {self.keys[role]}"}


@pytest.fixture(scope="module")
def live(database, tmp_path_factory):
    state = Live(database, tmp_path_factory.mktemp("fuzz-var"))
    yield state
    state.app.extensions["hrdd"].store.engine.dispose()


def _least_privileged(roles: list[str]) -> str:
    named = [r for r in roles if r not in ("admin", "any")]
    return named[0] if named else ("crm" if "any" in roles else "admin")


def _half_the_time(value) -> bool:
    return hashlib.sha256(repr(value).encode()).digest()[0] % 2 == 0


def prepare(case, live: Live) -> dict:
    """Credentials, CSRF token and (half the time) real ids for one generated case; returns headers."""
    raw = case.operation.definition.raw
    auth = raw.get("x-hrdd-auth")
    headers = {DYNAMICS_HEADER[0]: DYNAMICS_HEADER[1]}
    if auth == "api_key":
        headers.update(live.bearer(_least_privileged(raw.get("x-hrdd-roles", ["admin"]))))
    elif auth == "vendor":
        headers.update(live.bearer("admin"))
    if auth == "session" or case.path.startswith("/workspace"):
        case.cookies = {**(case.cookies or {}), "hrdd_session": live.cookie}
    if isinstance(case.body, dict) and "csrf_token" in case.body and _half_the_time(case.body):
        case.body["csrf_token"] = live.csrf
    for name in re.findall(r"{([a-z_]+)}", case.path):
        if name in live.ids and _half_the_time(case.path_parameters.get(name)):
            case.path_parameters[name] = live.ids[name]
    return headers


def fuzz(operation, mode: GenerationMode, live: Live, statuses: Counter) -> int:
    """Call one operation with EXAMPLES generated cases; returns how many were sent."""
    sent = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck), phases=[Phase.explicit, Phase.generate, Phase.shrink])
    def run(case):
        sent.append(1)
        response = case.call_and_validate(headers=prepare(case, live), checks=CHECKS)
        statuses[response.status_code] += 1

    run()
    return len(sent)


def test_no_operation_answers_5xx_or_breaks_its_description(live):
    schema = schemathesis.openapi.from_wsgi("/openapi.json", live.app)
    failures, counts, statuses = [], {}, Counter()
    for result in schema.get_all_operations():
        operation = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                counts[(operation.label, mode.value)] = fuzz(operation, mode, live, statuses)
            except Unsatisfiable:
                continue  # nothing to make invalid: the operation takes no parameters or body
            except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failures, report all
                failures.append(f"{operation.label} ({mode.value}): {str(exc)[:1500]}")
    print(f"\nschemathesis: {len(counts)} operation/mode runs, {sum(counts.values())} requests, "
          f"{len(failures)} failing; statuses {dict(sorted(statuses.items()))}")
    assert len({label for label, _ in counts} | {f.split(' (')[0] for f in failures}) >= 40
    assert not failures, "\n\n".join(failures)
