"""Background WAL checkpoints for SQLite, so no request pays for copying the log into the database.

SQLite checkpoints the write-ahead log inside whichever commit takes it past 1,000 pages: about one
stored screening in 85 then took 7-10 ms instead of 1.8 ms, holding the write lock that every other
worker's writes wait on. ``hrdd serve`` turns that off for its request connections and checkpoints from
a thread instead. Other processes on the same file (CLI commands, ``hrdd worker``) keep SQLite's
automatic checkpoints.

A checkpoint that runs while writers keep writing never quite catches up, and SQLite starts the log file
over only after one has: so when the log passes ``restart_pages`` the thread catches up once more under
the store's write lock (a few pages, so writers wait briefly), which lets the next write start it over.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

import sqlalchemy as sa

log = logging.getLogger("hrdd.checkpoints")

INTERVAL_SECONDS = 0.1
RESTART_PAGES = 4000  # 16 MB of 4 KB pages: the log file's size stays about this


def start(store, interval: float = INTERVAL_SECONDS, restart_pages: int = RESTART_PAGES) -> threading.Thread | None:
    """Checkpoint ``store``'s SQLite file from a daemon thread every ``interval`` seconds (None elsewhere).

    Call it in the process that serves, after any fork: pooled connections are dropped so that new ones
    open without automatic checkpoints.
    """
    engine = store.engine
    if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
        return None
    sa.event.listen(engine, "connect", _without_automatic_checkpoints)
    engine.dispose(close=False)
    thread = threading.Thread(target=_checkpoint_forever, args=(store, interval, restart_pages),
                              name="hrdd-wal-checkpoint", daemon=True)
    thread.start()
    return thread


def _without_automatic_checkpoints(dbapi_conn, _record) -> None:
    dbapi_conn.execute("PRAGMA wal_autocheckpoint=0")


def _checkpoint_forever(store, interval: float, restart_pages: int) -> None:
    # Held for the thread's life: dropping the pool's wrapper would hand this connection to requests.
    pooled = store.engine.raw_connection()
    while True:
        time.sleep(interval)
        try:
            checkpoint_once(pooled.driver_connection, store.write_lock, restart_pages)
        except sqlite3.Error as exc:
            log.warning("WAL checkpoint failed (retrying in %g s): %s", interval, exc)


def checkpoint_once(conn: sqlite3.Connection, write_lock, restart_pages: int) -> None:
    """One pass: copy what readers no longer need; past ``restart_pages``, catch up under the write lock."""
    # PASSIVE: copy what no reader still needs, without waiting for readers or writers.
    _, in_log, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    if in_log >= restart_pages:
        with write_lock:
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
