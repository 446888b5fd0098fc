"""Shared fixtures: app, client, auth_headers; the store is SQLite or HRDD_TEST_DATABASE_URL (PostgreSQL)."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

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


@contextlib.contextmanager
def fresh_database(directory: Path):
    """A fresh, empty database: a SQLite file, or a new schema in the PostgreSQL of HRDD_TEST_DATABASE_URL."""
    pg = os.environ.get("HRDD_TEST_DATABASE_URL")
    if not pg:
        yield f"sqlite:///{directory / 'hrdd-test.sqlite3'}"
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg)
    try:
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL at HRDD_TEST_DATABASE_URL is not reachable: {exc.orig}")
    sep = "&" if "?" in pg else "?"
    yield f"{pg}{sep}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def database_url(tmp_path):
    """A fresh, empty database for one test (see fresh_database)."""
    with fresh_database(tmp_path) as url:
        yield url


@pytest.fixture
def app_config(database_url, tmp_path):
    """Overrides given to create_app (tests may add their own before requesting `app`)."""
    return {"HRDD_DATABASE_URL": database_url, "TESTING": True, "HRDD_VAR_DIR": str(tmp_path)}


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory):
    """A SQLite database migrated once per session; an app on an empty store starts from a copy of it."""
    if os.environ.get("HRDD_TEST_DATABASE_URL"):
        return None
    from hrdd.store import Store
    path = tmp_path_factory.mktemp("template") / "migrated.sqlite3"
    store = Store(f"sqlite:///{path}")
    store.upgrade()
    store.engine.dispose()
    return path


def _start_from_template(url: str, template: Path | None) -> None:
    # Copying the migrated schema is what `Store.upgrade()` would build, at a quarter of the time; only a
    # store nobody has touched yet is copied into, so tests that prepare a database keep theirs.
    prefix = "sqlite:///"
    if template is None or not url.startswith(prefix) or Path(url.removeprefix(prefix)).exists():
        return
    import sqlite3
    source, target = sqlite3.connect(template), sqlite3.connect(url.removeprefix(prefix))
    with target:
        source.backup(target)
    source.close()
    target.close()


@pytest.fixture
def app(app_config, migrated_template):
    """A fully built app on a fresh store."""
    from server import create_app
    _start_from_template(app_config["HRDD_DATABASE_URL"], migrated_template)
    application = create_app(app_config)
    yield application
    application.extensions["hrdd"].store.engine.dispose()


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
