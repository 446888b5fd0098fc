"""The database schema's version: migrating to the newest revisions and saying why a database does not fit."""

from __future__ import annotations

from contextlib import contextmanager

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

MIGRATION_LOCK = 0x68726464  # "hrdd": the advisory lock key held while migrating


def upgrade(store) -> None:
    """Create or migrate the schema to the newest revision of every branch (`heads`).

    Raises alembic's CommandError, saying why, for a database migrated by a newer hrdd.
    """
    cfg = alembic_config(store.migrations_dir)
    known, heads = script_revisions(str(store.migrations_dir))
    # SQLite: the write lock makes processes starting together (workers, `hrdd worker`) migrate in turn.
    with store.write_lock, migration_transaction(store) as conn:
        if store.dialect == "postgresql":
            # Instances starting at once migrate one after another (DDL is transactional there);
            # the later ones find the schema current.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        recorded = recorded_revisions(conn)
        if recorded - known:
            from alembic.util import CommandError
            raise CommandError(schema_problem(recorded, known, heads))
        if recorded == heads:
            return
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")
        if store.dialect == "sqlite":
            check_foreign_keys(conn)

def status(store) -> dict:
    """The revisions the database records, this code's heads, and ``problem``: why they differ, or None."""
    known, heads = script_revisions(str(store.migrations_dir))
    with store.engine.connect() as conn:
        recorded = recorded_revisions(conn)
    return {"recorded": sorted(recorded), "heads": sorted(heads),
            "problem": schema_problem(recorded, known, heads)}

def alembic_config(location) -> AlembicConfig:
    """Alembic's configuration for the migration scripts in ``location``."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(location))
    return cfg

@contextmanager
def migration_transaction(store):
    """A connection in one transaction that holds every migration step, DDL included."""
    if store.dialect != "sqlite":
        with store.engine.begin() as conn:
            yield conn
        return
    # pysqlite opens transactions only before DML, so DDL would commit step by step and a failed batch
    # migration would leave its _alembic_tmp_ table behind: in autocommit mode our own BEGIN covers it
    # all (the isolation level is reset when the connection goes back to the pool).
    with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        # A batch migration copies a table and drops the original, which fails (or cascades) while
        # other tables reference it; foreign_key_check verifies the result. The pragma is a no-op
        # inside a transaction, so it is set before BEGIN.
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            yield conn
            conn.commit()
        finally:
            conn.rollback()
            conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            conn.commit()


# Per migrations directory: its files change only with a new release (reading them takes ~50 ms).
_SCRIPT_REVISIONS: dict[str, tuple[frozenset[str], frozenset[str]]] = {}



def script_revisions(location: str) -> tuple[frozenset[str], frozenset[str]]:
    """Every revision the migration scripts in ``location`` define, and the newest of each branch."""
    if location not in _SCRIPT_REVISIONS:
        from alembic.script import ScriptDirectory
        cfg = AlembicConfig()
        cfg.set_main_option("script_location", location)
        scripts = ScriptDirectory.from_config(cfg)
        _SCRIPT_REVISIONS[location] = (frozenset(script.revision for script in scripts.walk_revisions()),
                                       frozenset(scripts.get_heads()))
    return _SCRIPT_REVISIONS[location]


def recorded_revisions(conn) -> set[str]:
    """The revisions the database records as applied (empty: no hrdd schema)."""
    from alembic.migration import MigrationContext
    return set(MigrationContext.configure(conn).get_current_heads())


def schema_problem(recorded: set[str], known: frozenset[str], heads: frozenset[str]) -> str | None:
    """Why a database recording ``recorded`` does not fit scripts defining ``known`` with ``heads``."""
    unknown = sorted(recorded - known)
    if unknown:
        return (f"the database was migrated by a newer hrdd (unknown revision{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(unknown)}); upgrade hrdd or restore a backup")
    if not recorded:
        return "the database has no hrdd schema; run `hrdd db upgrade`"
    if recorded != heads:
        return (f"the database schema is out of date (missing {', '.join(sorted(heads - recorded))}); "
                "run `hrdd db upgrade`")
    return None


def check_foreign_keys(conn) -> None:
    """Refuse (rolling back) a SQLite migration that left rows referring to rows that do not exist."""
    broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if broken:
        from alembic.util import CommandError
        table, rowid, parent, _ = broken[0]
        raise CommandError(f"the migration left {len(broken)} row(s) whose foreign key refers to no row "
                           f"(first: {table} rowid {rowid} -> {parent}); nothing was changed")
