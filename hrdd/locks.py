"""SQLite's write lock: threads of one process queue on an RLock, processes on flock of a sidecar file."""

from __future__ import annotations

import os
import threading

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None


class FileWriteLock:
    """A re-entrant lock held across threads and processes: an RLock plus ``flock(LOCK_EX)`` on ``path``.

    The file lock is taken at the outermost acquisition and released at the outermost release, so nested
    ``with`` blocks in one thread cost nothing extra.
    """

    def __init__(self, path: str):
        self.path = os.path.abspath(path)
        self._rlock = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._pid: int | None = None

    def acquire(self) -> bool:
        """Wait for the lock (threads of this process first, then other processes)."""
        self._rlock.acquire()
        if self._depth == 0:
            try:
                fcntl.flock(self._file(), fcntl.LOCK_EX)
            except BaseException:
                self._rlock.release()
                raise
        self._depth += 1
        return True

    def release(self) -> None:
        """Release one level; the file lock goes with the outermost level."""
        self._depth -= 1
        if self._depth == 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._rlock.release()

    __enter__ = acquire

    def close(self) -> None:
        """Close the lock file (after the last use: a later acquisition opens it again)."""
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = self._pid = None

    def __exit__(self, *exc) -> None:
        self.release()

    def _file(self) -> int:
        pid = os.getpid()
        if self._pid != pid:
            # flock belongs to the open file description, which a forked child shares with its parent:
            # the child opens its own, or it would "hold" the lock whenever the parent does.
            if self._fd is not None:
                os.close(self._fd)  # closing the child's copy leaves the parent's lock in place
            # Read-only is enough for flock, so processes under other users sharing the database can lock too.
            self._fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o666)
            self._pid = pid
        return self._fd


def sqlite_write_lock(url):
    """The write lock for a SQLite URL: beside a database file ``<file>.lock``, else an RLock.

    In-memory databases belong to one process, and where fcntl is missing (Windows) only threads queue.
    """
    database = url.database or ""
    if url.query.get("uri") and database.startswith("file:"):
        database = database.removeprefix("file:")
    memory = database in ("", ":memory:") or url.query.get("mode") == "memory"
    if fcntl is None or memory:
        return threading.RLock()
    return FileWriteLock(database + ".lock")
