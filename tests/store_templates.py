"""Test databases: a fresh one per test, and a prepared template an app's untouched store starts from."""

from __future__ import annotations

import contextlib
import sqlite3
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

# A template is what an app builds on an empty store: the schema migrated to every head and, unless a test
# is marked `no_shipped_list` (it loads its own lists first), the shipped restricted-party list that the
# first screening would load (version 1). Building them once per run instead of once per test is most of a
# test's set-up time, above all on PostgreSQL.


def _prepare(url: str, shipped_list: bool) -> None:
    from hrdd.config import DEFAULT_DATA_DIR
    from hrdd.parties import service
    from hrdd.store import Store

    store = Store(url)
    store.upgrade()
    if shipped_list:
        service.ensure_default_list(store, DEFAULT_DATA_DIR)
        service.invalidate(store)
    store.close()


def uses_shipped_data(app_config: dict) -> bool:
    """True when the app reads the shipped data directory (so the template's party list is the one it loads)."""
    from hrdd.config import DEFAULT_DATA_DIR, load_config

    return Path(load_config(app_config)["HRDD_DATA_DIR"]).resolve() == Path(DEFAULT_DATA_DIR).resolve()


class SqliteStores:
    """SQLite files under each test's directory; the template is copied with SQLite's backup API."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.templates: dict[bool, Path] = {}

    @contextlib.contextmanager
    def fresh(self, directory: Path):
        """A URL of a database file that does not exist yet."""
        yield f"sqlite:///{directory / 'hrdd-test.sqlite3'}"

    def start_from_template(self, url: str, shipped_list: bool) -> None:
        """Copy a template into the URL's file when nobody has created that file yet."""
        path = Path(url.removeprefix("sqlite:///"))
        if not url.startswith("sqlite:///") or path.exists():
            return
        if shipped_list not in self.templates:
            template = self.directory / f"template-{'list' if shipped_list else 'schema'}.sqlite3"
            _prepare(f"sqlite:///{template}", shipped_list)
            self.templates[shipped_list] = template
        source, target = sqlite3.connect(self.templates[shipped_list]), sqlite3.connect(path)
        with target:
            source.backup(target)
        source.close()
        target.close()

    def close(self) -> None:
        """Nothing to drop: the files go with pytest's temporary directories."""


class PostgresStores:
    """One PostgreSQL database per test; the template is cloned with CREATE DATABASE … TEMPLATE."""

    def __init__(self, base_url: str):
        self.base_url = sa.engine.make_url(base_url)
        self.admin = sa.create_engine(self.base_url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        self.templates: dict[bool, str] = {}

    def _url(self, name: str) -> str:
        return self.base_url.set(database=name).render_as_string(hide_password=False)

    def _run(self, statement: str) -> None:
        with self.admin.connect() as conn:
            conn.execute(sa.text(statement))

    @contextlib.contextmanager
    def fresh(self, directory: Path):
        """A URL of a new, empty database, dropped after the test."""
        name = f"hrdd_t_{uuid.uuid4().hex[:12]}"
        try:
            self._run(f'CREATE DATABASE "{name}"')
        except sa.exc.OperationalError as exc:
            pytest.skip(f"PostgreSQL at HRDD_TEST_DATABASE_URL is not reachable: {exc.orig}")
        try:
            yield self._url(name)
        finally:
            self._run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def start_from_template(self, url: str, shipped_list: bool) -> None:
        """Re-create the URL's database from a template when it holds no table yet."""
        name = sa.engine.make_url(url).database
        if not (name or "").startswith("hrdd_t_") or self._has_tables(url):
            return
        if shipped_list not in self.templates:
            template = f"hrdd_tmpl_{uuid.uuid4().hex[:12]}"
            self._run(f'CREATE DATABASE "{template}"')
            _prepare(self._url(template), shipped_list)
            self.templates[shipped_list] = template
        self._run(f'DROP DATABASE "{name}" WITH (FORCE)')
        self._run(f'CREATE DATABASE "{name}" TEMPLATE "{self.templates[shipped_list]}"')

    def _has_tables(self, url: str) -> bool:
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                return bool(conn.execute(sa.text(
                    "SELECT count(*) FROM information_schema.tables "
                    "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")).scalar())
        finally:
            engine.dispose()

    def close(self) -> None:
        """Drop the template databases."""
        for template in self.templates.values():
            self._run(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
        self.admin.dispose()
