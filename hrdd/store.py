"""SQLAlchemy store: SQLite by default (WAL), PostgreSQL by URL; screenings are immutable records."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.config import Config as AlembicConfig
from sqlalchemy.dialects import postgresql, sqlite

from hrdd import jsonio, schema
from hrdd.api_keys import ApiKeyStore
from hrdd.ids import iso, new_id, utcnow
from hrdd.locks import sqlite_write_lock
from hrdd.model import STAGE_RANK, Screening
from hrdd.tables import screenings, transactions

_MISSING = object()


def memoized(memo: dict | None, key, look_up):
    """``look_up()``, kept in ``memo`` (a store's ``scope_memo()``) under ``key``; called each time without one."""
    if memo is None:
        return look_up()
    value = memo.get(key, _MISSING)
    if value is _MISSING:
        value = memo[key] = look_up()
    return value


class _LostRace(Exception):
    """Raised inside the write transaction to roll it back when the key was taken concurrently."""


class IdempotencyConflict(Exception):
    """The Idempotency-Key was used before with a different request body."""

    def __init__(self, screening_id: str):
        super().__init__(screening_id)
        self.screening_id = screening_id


class Store(ApiKeyStore):
    """The database: transactions, screenings, API keys; plugins add tables to the same metadata."""

    def __init__(self, url: str, pm=None, policy=None):
        self.url = url
        self.pm = pm
        self.policy = policy  # passed to hrdd_screening_stored: what a stored screening is judged by
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # hide_parameters: a database error's message (which is logged) never carries the values bound to
        # it, which can be personal data (grievance reporters) or key digests.
        kwargs: dict[str, Any] = {"future": True, "hide_parameters": True, "json_serializer": jsonio.dumps,
                                  "json_deserializer": jsonio.loads}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            kwargs.update(pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.engine = sa.create_engine(url, **kwargs)
        self.dialect = self.engine.dialect.name
        # SQLite allows one writer: queueing writers on a lock (threads, and processes sharing the file)
        # avoids its busy-wait sleeps, which otherwise dominate tail latency under concurrent requests.
        self.write_lock = sqlite_write_lock(self.engine.url) if self.dialect == "sqlite" else nullcontext()
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        # Statements built once so SQLAlchemy's compiled cache is hit on every request.
        self._stmt_insert_screening = self._insert(screenings)
        # RETURNING tells reliably whether the row went in (rowcount is not reliable on every driver).
        self._stmt_insert_screening_once = self._insert(screenings).on_conflict_do_nothing(
            index_elements=["idempotency_key"]).returning(screenings.c.id)
        # One statement finds or creates the deal's row and touches it; on PostgreSQL the update takes the
        # row's lock before the plugins' hooks run, so screenings of one deal stored by different
        # instances open one case, not two, and see each other's rows.
        upsert = self._insert(transactions)
        self._stmt_upsert_transaction = upsert.on_conflict_do_update(
            index_elements=["system", "object_type", "object_id"],
            set_={"updated_at": upsert.excluded.updated_at}).returning(transactions.c.id)
        # The Idempotency-Key look-up runs before every keyed screening: built once, like the statements here.
        found = sa.select(screenings.c.id, screenings.c.request_hash, screenings.c.result, screenings.c.idempotency_key)
        self._stmt_find_key = found.where(screenings.c.idempotency_key == sa.bindparam("key"))
        # Scoped keys start "key:"; a legacy row never does, so no caller can name another's key.
        self._stmt_find_key_or_legacy = found.where(
            (screenings.c.idempotency_key == sa.bindparam("key"))
            | ((screenings.c.idempotency_key == sa.bindparam("legacy")) & (screenings.c.source == "api")
               & ~screenings.c.idempotency_key.startswith("key:")))
        self._stmt_find_transaction = sa.select(transactions.c.id).where(
            transactions.c.system == sa.bindparam("system"),
            transactions.c.object_type == sa.bindparam("object_type"),
            transactions.c.object_id == sa.bindparam("object_id"))
        current = sa.select(screenings.c.created_at).where(screenings.c.id == sa.bindparam("sid")).scalar_subquery()
        self._stmt_latest_before = (
            sa.select(screenings.c.result)
            .where(screenings.c.transaction_id == sa.bindparam("txn"), screenings.c.stage == sa.bindparam("stage"),
                   sa.or_(screenings.c.created_at < current,
                          sa.and_(screenings.c.created_at == current, screenings.c.id < sa.bindparam("sid"))))
            .order_by(screenings.c.created_at.desc(), screenings.c.id.desc()).limit(1))
        self._key_cache: dict[str, tuple[float, dict | None]] = {}
        self._read_scope: ContextVar[sa.Connection | None] = ContextVar(f"hrdd_read_scope_{id(self)}", default=None)
        self._scope_memo: ContextVar[dict | None] = ContextVar(f"hrdd_scope_memo_{id(self)}", default=None)

    # ---- schema ----
    migrations_dir = Path(__file__).parent / "migrations"

    def upgrade(self) -> None:
        """Create or migrate the schema to the newest revision of every branch (``hrdd.schema.upgrade``)."""
        schema.upgrade(self)

    def schema_status(self) -> dict:
        """The revisions the database records, this code's heads, and why they differ (``hrdd.schema.status``)."""
        return schema.status(self)

    def _alembic_config(self) -> AlembicConfig:
        return schema.alembic_config(self.migrations_dir)

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self.engine.connect() as conn:
                conn.execute(sa.text("SELECT 1"))
            return True
        except sa.exc.SQLAlchemyError:
            return False

    @contextmanager
    def begin(self):
        """A connection inside a transaction that commits on success and rolls back on error."""
        with self.write_lock, self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _writing(self):
        """A write transaction under the write lock, on the read scope's connection when there is one."""
        with self.write_lock:
            shared = self._read_scope.get()
            if shared is None:
                with self.engine.begin() as conn:
                    yield conn
                return
            if shared.in_transaction():
                # End the read snapshot first: on SQLite a read transaction cannot turn into a write once
                # another connection has written since it began.
                shared.rollback()
            with shared.begin():
                yield shared

    def writing(self):
        """A write transaction under the write lock; inside a ``read_scope``, on its connection (reads see it)."""
        return self._writing()

    def close(self) -> None:
        """Close the pooled connections and the write lock's file (a process that opens many stores)."""
        self.engine.dispose()
        close_lock = getattr(self.write_lock, "close", None)
        if close_lock:
            close_lock()

    @contextmanager
    def reading(self):
        """A connection for reads: the enclosing ``read_scope``'s if there is one, else a new one."""
        shared = self._read_scope.get()
        if shared is not None:
            yield shared
            return
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def read_scope(self):
        """Let every ``reading()`` in the block (this thread or task) share one connection and snapshot."""
        if self._read_scope.get() is not None:
            yield
            return
        with self.engine.connect() as conn:
            token, memo_token = self._read_scope.set(conn), self._scope_memo.set({})
            try:
                yield
            finally:
                self._scope_memo.reset(memo_token)
                self._read_scope.reset(token)

    def scope_memo(self) -> dict | None:
        """A dict that lives as long as the enclosing ``read_scope`` (one request), else None.

        Plugins keep there what they looked up for the screening being stored, so the gate worked out
        after it does not read the same rows again.
        """
        return self._scope_memo.get()

    @contextmanager
    def exclusive(self, name: str):
        """Run the block in one process at a time across every instance sharing this database.

        PostgreSQL: a session advisory lock named by ``name``, released at the end (or when the process
        dies and its connection closes). SQLite (one machine): the write lock, which every process using the
        database file shares, so the block also excludes every writer meanwhile (keep it short).
        """
        if self.dialect != "postgresql":
            with self.write_lock:
                yield
            return
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": key})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
                conn.commit()

    def _insert(self, table):
        return dialect_insert(self.dialect, table)

    # ---- screenings ----
    def find_by_idempotency_key(self, key: str, legacy: str | None = None) -> sa.Row | None:
        """The screening row recorded under an Idempotency-Key, if any.

        ``legacy`` is the caller's key as stored before keys were scoped to the caller (by the API,
        unprefixed); such a row is found when no row has the scoped ``key``.
        """
        with self.reading() as conn:
            rows = conn.execute(self._stmt_find_key_or_legacy if legacy else self._stmt_find_key,
                                {"key": key, "legacy": legacy} if legacy else {"key": key}).all()
        return next((r for r in rows if r.idempotency_key == key), rows[0] if rows else None)

    def save_screening(self, screening: Screening, request_body: dict, *, request_hash: str,
                       idempotency_key: str | None = None, source: str = "api",
                       precondition=None, key_checked: bool = False) -> tuple[dict, bool]:
        """Store a screening atomically with its plugins' rows; returns (screening dict, created).

        With an Idempotency-Key, a replay returns the first screening (created=False) and a different
        body raises IdempotencyConflict; the unique constraint makes this hold across processes.
        ``precondition(connection)`` runs once the deal is locked, before the screening row is written;
        an exception from it rolls the transaction back and propagates. ``key_checked``: the caller has just
        looked the key up and found nothing, so it is not looked up again (a key stored meanwhile is still
        caught by the unique constraint and replayed).
        """
        if idempotency_key and not key_checked:
            existing = self.find_by_idempotency_key(idempotency_key)
            if existing is not None:
                return self._replay(existing, request_hash)
        try:
            with self._writing() as conn:
                return self._insert_screening(conn, screening, request_body, request_hash, idempotency_key,
                                              source, precondition)
        except _LostRace:
            # Another process stored the same key between our look-up and our insert.
            return self._replay(self.find_by_idempotency_key(idempotency_key), request_hash)

    def _insert_screening(self, conn, screening, request_body, request_hash, idempotency_key, source,
                          precondition=None):
        ref = screening.transaction.reference
        txn_id = self._transaction_id(conn, ref, utcnow())
        if precondition is not None:
            precondition(conn)
        # Timed once the deal is locked (the write lock, or on PostgreSQL the row the upsert touched), so
        # screenings of one deal are dated in the order they are stored: history and latest_screening sort so.
        now = utcnow()
        screening.id = new_id("scr")
        screening.transaction_id = txn_id
        screening.created_at = iso(now)
        result = screening.to_dict()
        values = dict(id=screening.id, transaction_id=txn_id, created_at=now,
                      stage=screening.transaction.stage, decision=screening.decision, gate=screening.gate,
                      risk_score=screening.risk_score, end_user_country=screening.transaction.end_user.country,
                      request=request_body, result=result, idempotency_key=idempotency_key,
                      request_hash=request_hash, source=source,
                      capabilities=request_capabilities(request_body))
        stmt = self._stmt_insert_screening_once if idempotency_key else self._stmt_insert_screening
        result_rows = conn.execute(stmt, values)
        if idempotency_key and result_rows.first() is None:
            raise _LostRace
        if self.pm is not None:
            self.pm.hook.hrdd_screening_stored(screening=result, connection=conn, store=self, policy=self.policy)
        return result, True

    @staticmethod
    def _replay(row: sa.Row, request_hash: str) -> tuple[dict, bool]:
        if row.request_hash != request_hash:
            raise IdempotencyConflict(row.id)
        return row.result, False

    def _transaction_id(self, conn, ref, now) -> str:
        return conn.execute(self._stmt_upsert_transaction, {
            "system": ref.system, "object_type": ref.object_type, "object_id": ref.object_id,
            "id": new_id("txn"), "created_at": now, "updated_at": now}).scalar_one()

    def get_screening(self, screening_id: str) -> dict | None:
        """A stored screening's response dict."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(screenings.c.result).where(screenings.c.id == screening_id)).scalar()

    def get_screening_request(self, screening_id: str) -> dict | None:
        """The canonical request body a screening was made from."""
        with self.reading() as conn:
            return conn.execute(sa.select(screenings.c.request).where(screenings.c.id == screening_id)).scalar()

    def screenings_of(self, transaction_id: str, limit: int | None = None, offset: int = 0) -> list[dict]:
        """A transaction's screenings, newest first (``limit`` of them from ``offset``, or all)."""
        query = (sa.select(screenings.c.result).where(screenings.c.transaction_id == transaction_id)
                 .order_by(screenings.c.created_at.desc(), screenings.c.id.desc()).offset(offset))
        if limit is not None:
            query = query.limit(limit)
        with self.reading() as conn:
            return [r.result for r in conn.execute(query)]

    def count_screenings_of(self, transaction_id: str) -> int:
        """How many screenings a transaction has."""
        with self.reading() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(screenings)
                                .where(screenings.c.transaction_id == transaction_id)).scalar_one()

    def latest_screening_before(self, transaction_id: str, screening_id: str | None, stage: str) -> dict | None:
        """The newest screening at ``stage`` of a transaction stored before screening ``screening_id``.

        ``screening_id`` None (a screening not stored, a dry run): the newest at ``stage`` of all.
        """
        with self.reading() as conn:
            if screening_id is None:
                return conn.execute(sa.select(screenings.c.result).where(
                    screenings.c.transaction_id == transaction_id, screenings.c.stage == stage)
                    .order_by(screenings.c.created_at.desc(), screenings.c.id.desc()).limit(1)).scalar()
            return conn.execute(self._stmt_latest_before, {"txn": transaction_id, "sid": screening_id,
                                                           "stage": stage}).scalar()

    def governing_screening_id(self, transaction_id: str) -> str | None:
        """The id of the screening that governs a transaction's gate (``latest_screening``), None without one."""
        with self.reading() as conn:
            return governing_screening_id(conn, transaction_id)

    def latest_screening(self, transaction_id: str) -> dict | None:
        """The screening that governs a transaction's gate: the newest at the most advanced stage it reached."""
        with self.reading() as conn:
            governing = self.governing_screening_id(transaction_id)
            return conn.execute(_RESULT_BY_ID, {"sid": governing}).scalar() if governing else None

    def get_transaction(self, transaction_id: str) -> dict | None:
        """A transaction record: reference and timestamps (screenings via screenings_of)."""
        with self.reading() as conn:
            row = conn.execute(sa.select(transactions).where(transactions.c.id == transaction_id)).first()
        if row is None:
            return None
        return {"id": row.id, "reference": {"system": row.system, "object_type": row.object_type,
                                            "object_id": row.object_id},
                "created_at": iso(row.created_at), "updated_at": iso(row.updated_at)}

    @staticmethod
    def lock_transactions(conn, transaction_ids) -> None:
        """Lock deals' rows, in id order, until ``conn``'s transaction ends (PostgreSQL; SQLite's write lock
        already serialises writers): a screening of one of them being stored waits, and is then seen."""
        ids = sorted(set(transaction_ids))
        if ids:
            conn.execute(sa.select(transactions.c.id).where(transactions.c.id.in_(ids))
                         .order_by(transactions.c.id).with_for_update(key_share=True)).all()

    def find_transaction(self, system: str, object_type: str, object_id: str) -> str | None:
        """The transaction id of a business reference, if it was ever screened."""
        with self.reading() as conn:
            return conn.execute(self._stmt_find_transaction, {"system": system, "object_type": object_type,
                                                              "object_id": object_id}).scalar()

    def count_screenings(self) -> int:
        """How many screenings are stored."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(screenings)).scalar_one()





# Built once (on every new screening's answer): each stage's newest screening of a deal, one index seek each
# (ix_screenings_transaction_stage_created), instead of ordering every screening the deal has by stage rank.
_NEWEST_PER_STAGE = sa.union_all(*(
    sa.select(sa.select(screenings.c.id, screenings.c.stage, screenings.c.created_at)
              .where(screenings.c.transaction_id == sa.bindparam("txn"), screenings.c.stage == stage)
              .order_by(screenings.c.created_at.desc(), screenings.c.id.desc()).limit(1).subquery())
    for stage in STAGE_RANK))
_RESULT_BY_ID = sa.select(screenings.c.result).where(screenings.c.id == sa.bindparam("sid"))


def governing_screening_id(conn, transaction_id: str) -> str | None:
    """``Store.governing_screening_id`` on a given connection (inside a caller's transaction and locks)."""
    newest = conn.execute(_NEWEST_PER_STAGE, {"txn": transaction_id}).all()
    if not newest:
        return None
    return max(newest, key=lambda r: (STAGE_RANK.get(r.stage, 0), r.created_at, r.id)).id


def governing_screening(conn, transaction_id: str) -> dict | None:
    """``Store.latest_screening`` on a given connection: read where the caller holds the deal's lock."""
    governing = governing_screening_id(conn, transaction_id)
    return screening_by_id(conn, governing) if governing else None


def screening_by_id(conn, screening_id: str) -> dict | None:
    """A stored screening's response dict, read on a given connection."""
    return conn.execute(_RESULT_BY_ID, {"sid": screening_id}).scalar()


def governing_order() -> tuple:
    """ORDER BY terms putting a deal's governing screening first (``latest_screening``, the case queue, re-screening).

    A quote stored after the order (a reordered or retried call) stays on record but does not govern.
    """
    rank = sa.case(STAGE_RANK, value=screenings.c.stage, else_=0)
    return rank.desc(), screenings.c.created_at.desc(), screenings.c.id.desc()


def capability_ids(request: dict | None) -> list[str]:
    """The distinct capability ids of a request's items, sorted."""
    seen: set[str] = set()
    for item in (request or {}).get("items") or ():
        # Guarded although stored requests are validated: the migration's backfill must not stop on one row.
        if isinstance(item, dict):
            for cap in item.get("capabilities") or ():
                if isinstance(cap, str):
                    seen.add(cap)
    return sorted(seen)


def request_capabilities(request: dict | None) -> str:
    """``capability_ids(request)`` as ``screenings.capabilities`` keeps them: a JSON array.

    Sorted, so deals with the same capabilities have the same value and are counted in one SQL group.
    """
    return jsonio.dumps(capability_ids(request))


def capabilities_of(column: str) -> list[str]:
    """The capability ids kept in a ``screenings.capabilities`` value."""
    return jsonio.loads(column)


def dialect_insert(dialect: str, table):
    """An INSERT for ``table`` with the dialect's ON CONFLICT clauses (PostgreSQL's, else SQLite's)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _sqlite_pragmas(dbapi_conn, _record):
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
