"""Shared fixtures: app, client, auth_headers; the store is SQLite or HRDD_TEST_DATABASE_URL (PostgreSQL)."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "app" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.store)


def migrate_down(store, revision: str) -> None:
    """Downgrade the store's schema to ``revision`` (to test what an upgrade does to older rows)."""
    from alembic import command

    config = store._alembic_config()
    with store.engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)
    store.engine.dispose()


def load_fixture(name: str):
    """A JSON sample payload from tests/fixtures."""
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


_STORES = None


def run_stores():
    """This run's test databases: SQLite files, or PostgreSQL databases when HRDD_TEST_DATABASE_URL is set."""
    global _STORES
    if _STORES is None:
        import tempfile

        from tests.store_templates import PostgresStores, SqliteStores
        pg = os.environ.get("HRDD_TEST_DATABASE_URL")
        _STORES = PostgresStores(pg) if pg else SqliteStores(Path(tempfile.mkdtemp(prefix="hrdd-template-")))
    return _STORES


def pytest_sessionfinish(session, exitstatus):
    if _STORES is not None:
        _STORES.close()


def fresh_database(directory: Path):
    """A fresh, empty database: a SQLite file, or a new database in the PostgreSQL of HRDD_TEST_DATABASE_URL."""
    return run_stores().fresh(directory)


@pytest.fixture
def database_url(tmp_path):
    """A fresh, empty database for one test (see fresh_database)."""
    with fresh_database(tmp_path) as url:
        yield url


@pytest.fixture
def app_config(database_url, tmp_path):
    """Overrides given to create_app (tests may add their own before requesting `app`)."""
    return {"HRDD_DATABASE_URL": database_url, "TESTING": True, "HRDD_VAR_DIR": str(tmp_path)}


@pytest.fixture
def app(app_config, request):
    """A fully built app on a fresh store (an untouched store starts migrated, with the shipped list loaded)."""
    from server import create_app
    from tests.store_templates import uses_shipped_data
    if uses_shipped_data(app_config):
        shipped_list = request.node.get_closest_marker("no_shipped_list") is None
        run_stores().start_from_template(app_config["HRDD_DATABASE_URL"], shipped_list)
    application = create_app(app_config)
    yield application
    application.extensions["hrdd"].store.close()


@pytest.fixture
def client(app):
    """Flask's test client."""
    return app.test_client()


@pytest.fixture
def auth_headers(app):
    """Factory: auth_headers("crm") -> {"Authorization": "Bearer <fresh key with that role>"}."""
    cache: dict[str, dict] = {}

    def make(role: str = "admin") -> dict:
        if role not in cache:
            _, key = app.extensions["hrdd"].store.create_api_key(f"test-{role}", role)
            cache[role] = {"Authorization": f"Bearer {key}"}
        return dict(cache[role])

    return make


@pytest.fixture
def transaction():
    """The DESIGN.md example transaction (a fresh deep copy each time)."""
    return copy.deepcopy(load_fixture("transaction_egypt_biometric.json"))


@pytest.fixture(scope="session")
def engine_services():
    """Engine, reference data and policy without a store or HTTP (for fast engine tests)."""
    from hrdd.config import load_config
    from hrdd.engine import Engine
    from hrdd.plugins import make_plugin_manager
    from hrdd.policy import Policy
    from hrdd.reference import ReferenceData
    config = load_config()
    policy = Policy.load(config["HRDD_POLICY_FILE"])
    reference = ReferenceData(config["HRDD_DATA_DIR"], policy)
    return Engine(make_plugin_manager(), reference, policy)
