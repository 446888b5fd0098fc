"""Serve a WSGI app on waitress: one process, or N forked workers sharing one listening socket (POSIX)."""

from __future__ import annotations

import gc
import logging
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("hrdd.serving")

STOP_GRACE_SECONDS = 10.0  # after SIGTERM, workers finish their requests (waitress waits up to 5 s)
CRASH_LIMIT = 5  # more worker deaths than this within CRASH_WINDOW seconds: stop restarting them
CRASH_WINDOW = 10.0
THREAD_JOIN_SECONDS = 5.0
_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD) if hasattr(signal, "SIGCHLD") else ()


class ServingError(RuntimeError):
    """The worker processes could not be started or kept running; the message says why."""


class WorkersFailing(ServingError):
    """Worker processes kept dying right after they were started; the supervisor gave up."""


def can_fork() -> bool:
    """True where several worker processes are possible (os.fork exists)."""
    return hasattr(os, "fork")


def serve(app, *, host: str = "127.0.0.1", port: int = 8000, threads: int = 8, workers: int = 1,
          ident: str = "hrdd", after_fork: Callable[[], None] | None = None,
          on_worker_exit: Callable[[int], None] | None = None) -> None:
    """Serve the WSGI ``app`` until SIGTERM or SIGINT; returns when every worker has stopped.

    ``workers`` 1 is waitress in this process. With more, this process binds the socket, forks ``workers``
    children that each run waitress with ``threads`` threads on it (they share the app's memory
    copy-on-write), restarts a child that dies, and stops them all on SIGTERM/SIGINT. ``after_fork``
    runs in each child before it serves (e.g. to drop database connections inherited from this process);
    ``on_worker_exit(pid)`` runs here for each child that exited. Raises WorkersFailing when children die
    more than CRASH_LIMIT times within CRASH_WINDOW seconds (ServingError when they cannot be started),
    OSError when the address cannot be bound.
    Call it from the main thread, with no other thread running.
    """
    from waitress import serve as waitress_serve
    from waitress.server import create_server

    if workers <= 1:
        # What exists now (the app, reference data, warmed-up indexes) lives as long as the process: the
        # collector need not scan it again on every full collection.
        gc.freeze()
        waitress_serve(app, host=host, port=port, threads=threads, ident=ident)
        return
    if not can_fork():
        raise ServingError("several worker processes need os.fork, which this platform lacks")
    # As waitress.serve does; here before forking, so the supervisor's messages are shown the same way.
    logging.basicConfig()
    sockets = bind(host, port)
    table = ConnectionTable(workers)

    def run_worker(slot: int) -> None:
        server = create_server(app, sockets=sockets, threads=threads, ident=ident)
        table.balance(server, slot)
        server.print_listen("Serving on http://{}:{}")
        server.run()

    try:
        _Supervisor(run_worker, workers, after_fork, on_worker_exit, on_slot_free=table.forget).run()
    finally:
        for sock in sockets:
            sock.close()


class ConnectionTable:
    """Open connections per worker slot in memory the forked workers share; the fewest accept next.

    The workers listen on one socket. Left to the kernel, whichever worker woke first accepted: the 16
    keep-alive connections of a load test split 16/0, 15/1 or 2/14 as often as evenly, and requests on the
    crowded worker queued up to 7 times longer. Here a worker takes new connections only while no other
    live worker holds fewer; a worker whose loop has not run for STALE_SECONDS (hung, stopped) no longer
    counts, so it cannot keep the others from accepting.
    """

    STALE_SECONDS = 5.0  # a worker's loop runs at least once a second (waitress's select timeout)

    def __init__(self, workers: int):
        import multiprocessing
        self.counts = multiprocessing.RawArray("i", [-1] * workers)  # -1: no worker in the slot
        self.seen = multiprocessing.RawArray("d", [0.0] * workers)

    def forget(self, slot: int) -> None:
        """The slot's worker exited: leave it out until its replacement reports."""
        self.counts[slot] = -1

    def may_accept(self, slot: int, mine: int) -> bool:
        """Record ``mine`` open connections for ``slot``; True when no live worker has fewer."""
        now = time.monotonic()
        self.counts[slot], self.seen[slot] = mine, now
        for other in range(len(self.counts)):
            count = self.counts[other]
            if other != slot and 0 <= count < mine and now - self.seen[other] < self.STALE_SECONDS:
                return False
        return True

    def balance(self, server, slot: int) -> None:
        """Make a waitress server's listening dispatchers (one per address) consult the table first."""
        listeners = [d for d in getattr(server, "map", {}).values() if hasattr(d, "active_channels")] or [server]
        for listener in listeners:
            listener.readable = self._gated(listener.readable, listeners, slot)

    def _gated(self, readable, listeners, slot: int):
        def gated_readable() -> bool:
            # Asked on every turn of the worker's loop, before it polls: whether to poll the listening socket.
            # waitress's own answer first, always: it also closes channels idle past their timeout.
            accepting = readable()
            return self.may_accept(slot, sum(len(each.active_channels) for each in listeners)) and accepting
        return gated_readable


def bind(host: str, port: int, backlog: int = 1024) -> list[socket.socket]:
    """Listening sockets for every address ``host`` resolves to, as waitress itself would bind them."""
    from waitress.adjustments import Adjustments

    sockets = []
    try:
        for family, socktype, proto, sockaddr in Adjustments(host=host, port=port).listen:
            sock = socket.socket(family, socktype, proto)
            sockets.append(sock)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
            sock.listen(backlog)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


@contextmanager
def prometheus_multiproc_dir() -> Iterator[str]:
    """PROMETHEUS_MULTIPROC_DIR for the block: the operator's if set, else a temporary one removed after.

    It must be set before prometheus_client is imported, which picks its storage at import time.
    """
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield os.environ["PROMETHEUS_MULTIPROC_DIR"]
        return
    path = tempfile.mkdtemp(prefix="hrdd-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    try:
        yield path
    finally:
        os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        shutil.rmtree(path, ignore_errors=True)


class _Supervisor:
    def __init__(self, run_child: Callable[[int], None], workers: int, after_fork, on_worker_exit,
                 on_slot_free: Callable[[int], None] | None = None):
        self.run_child = run_child
        self.on_slot_free = on_slot_free
        self.workers = workers
        self.after_fork = after_fork
        self.on_worker_exit = on_worker_exit
        self.children: dict[int, int] = {}  # pid -> slot (its row in the connection table)
        self.deaths: deque[float] = deque()
        self.stop_signal: int | None = None
        self.wakeup_r = self.wakeup_w = -1

    def run(self) -> None:
        self.wakeup_r, self.wakeup_w = os.pipe()
        os.set_blocking(self.wakeup_r, False)
        os.set_blocking(self.wakeup_w, False)
        previous = {sig: signal.signal(sig, self._on_signal) for sig in _SIGNALS}
        # A signal arriving between a check and select() still wakes select(): its handler writes a byte.
        previous_wakeup = signal.set_wakeup_fd(self.wakeup_w)
        try:
            # Objects made so far (the app, reference data) are never freed; keeping the collector from
            # touching them keeps the pages the workers share from being copied.
            gc.freeze()
            for slot in range(self.workers):
                self._spawn(slot)
            while self.stop_signal is None:
                self._reap(respawn=True)
                if self.stop_signal is None:
                    select.select([self.wakeup_r], [], [], 1.0)
                    self._drain()
        finally:
            self._stop_all()
            signal.set_wakeup_fd(previous_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            os.close(self.wakeup_r)
            os.close(self.wakeup_w)

    def _on_signal(self, signum, _frame) -> None:
        if signum in (signal.SIGTERM, signal.SIGINT) and self.stop_signal is None:
            self.stop_signal = signum

    def _drain(self) -> None:
        try:
            while os.read(self.wakeup_r, 512):
                pass
        except BlockingIOError:
            pass

    def _spawn(self, slot: int) -> None:
        _wait_for_other_threads()
        sys.stdout.flush()
        sys.stderr.flush()
        # Signals stay blocked across fork until the child has its own handlers, so a SIGTERM cannot reach
        # the child while it still runs the supervisor's.
        signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                self._child(slot)  # never returns
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
        self.children[pid] = slot

    def _child(self, slot: int) -> None:
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            os.close(self.wakeup_r)
            os.close(self.wakeup_w)
            for sig in _SIGNALS:
                signal.signal(sig, signal.SIG_DFL)
            # waitress stops on SystemExit: it lets the requests in progress finish, then returns.
            signal.signal(signal.SIGTERM, _exit_gracefully)
            signal.signal(signal.SIGINT, _exit_gracefully)
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
            if self.after_fork is not None:
                self.after_fork()
            self.run_child(slot)
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 0
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            # Skip the parent's atexit handlers and clean-up (e.g. removing the metrics directory).
            os._exit(code)

    def _reap(self, respawn: bool) -> None:
        for pid in list(self.children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done == 0:
                continue
            slot = self.children.pop(pid)
            if self.on_slot_free is not None:
                self.on_slot_free(slot)
            if self.on_worker_exit is not None:
                self.on_worker_exit(pid)
            if not respawn or self.stop_signal is not None:
                continue
            self._count_death(f"worker {pid} {_describe(status)}")
            log.warning("worker %d %s; starting a replacement", pid, _describe(status))
            self._spawn(slot)

    def _count_death(self, what: str) -> None:
        now = time.monotonic()
        self.deaths.append(now)
        while self.deaths and self.deaths[0] < now - CRASH_WINDOW:
            self.deaths.popleft()
        if len(self.deaths) > CRASH_LIMIT:
            raise WorkersFailing(f"{len(self.deaths)} worker processes died within {CRASH_WINDOW:g} s, the last "
                                 f"one: {what}; not starting more (any error they printed is above)")

    def _stop_all(self) -> None:
        if not self.children:
            return
        log.info("stopping the workers (%d running)", len(self.children))
        for pid in self.children:
            _kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        while self.children and time.monotonic() < deadline:
            self._reap(respawn=False)
            if self.children:
                time.sleep(0.05)
        for pid in list(self.children):
            log.warning("worker %d did not stop within %g s; killing it", pid, STOP_GRACE_SECONDS)
            _kill(pid, signal.SIGKILL)
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            self.children.pop(pid, None)
            if self.on_worker_exit is not None:
                self.on_worker_exit(pid)


def _exit_gracefully(_signum, _frame):
    raise SystemExit(0)


def _kill(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        return f"was killed by signal {signal.Signals(-code).name}"
    return f"exited with code {code}"


def _wait_for_other_threads() -> None:
    # A thread running at fork does not exist in the child, and any lock it held stays locked there forever.
    deadline = time.monotonic() + THREAD_JOIN_SECONDS
    for thread in threading.enumerate():
        if thread is not threading.main_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
    running = [t.name for t in threading.enumerate() if t is not threading.main_thread() and t.is_alive()]
    if running:
        raise ServingError(f"cannot start worker processes while other threads run ({', '.join(running)}); "
                           "forking would leave their locks held in the workers")
