"""`hrdd serve --workers N`: several processes on one port and one SQLite file, supervised, metrics summed."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = Path(__file__).parent / "fixtures" / "transaction_egypt_biometric.json"
HRDD = [sys.executable, "-m", "hrdd.cli"]

try:
    import fcntl  # noqa: F401
except ImportError:
    fcntl = None

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="--workers forks processes; this platform has no os.fork"),
    pytest.mark.skipif(fcntl is None, reason="the cross-process SQLite write lock needs fcntl.flock"),
]
needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").exists(),
                                reason="finding the worker processes reads /proc (Linux)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def children_of(pid: int) -> set[int]:
    """Living (not zombie) child processes of ``pid``, read from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            # The command name (2nd field) is in parentheses and may hold spaces: split after it.
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def wait_for(condition, what: str, timeout: float = 30.0):
    """Poll ``condition`` until it returns something truthy; fail naming ``what`` if it never does."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


class Server:
    """`hrdd serve --workers 2 --threads 2` on a fresh SQLite file, with a crm key made by `hrdd keys create`."""

    def __init__(self, tmp_path: Path, extra_env: dict[str, str] | None = None,
                 args: tuple[str, ...] = ("--workers", "2", "--threads", "2")):
        self.db_path = tmp_path / "hrdd.sqlite3"
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / "serve.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HRDD_", "PROMETHEUS_"))}
        self.env = {**env, "HRDD_DATABASE_URL": f"sqlite:///{self.db_path}", "HRDD_VAR_DIR": str(tmp_path),
                    "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        created = subprocess.run([*HRDD, "keys", "create", "serve-workers test", "--role", "crm"], env=self.env,
                                 cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert created.returncode == 0, created.stderr
        self.key = created.stdout.strip().splitlines()[-1]
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen([*HRDD, "serve", *args, "--port", str(self.port)],
                                         env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.proc.poll() is not None or self.get("/readyz")[0] == 200, "the server to be ready", 60)
        assert self.proc.poll() is None, self.log()

    def get(self, path: str) -> tuple[int, bytes]:
        """(status, body) of a GET; 0 when nothing answers."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except OSError:
            return 0, b""

    def screen(self, idempotency_key: str) -> int:
        """POST the example transaction; returns the status."""
        request = urllib.request.Request(self.url + "/v1/screenings", data=FIXTURE.read_bytes(), method="POST",
                                         headers={"Authorization": f"Bearer {self.key}",
                                                  "Content-Type": "application/json",
                                                  "Idempotency-Key": idempotency_key})
        try:
            with urllib.request.urlopen(request, timeout=60) as answer:
                return answer.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def workers(self) -> set[int]:
        """The pids of the worker processes."""
        return children_of(self.proc.pid)

    def count(self, table: str) -> int:
        """Rows in a table of the database file."""
        with sqlite3.connect(self.db_path) as conn:
            return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]

    def log(self) -> str:
        """What the server printed."""
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM; SIGKILL to everything left if it does not exit."""
        workers = self.workers() if self.proc.poll() is None else set()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


@pytest.fixture
def server(tmp_path):
    """A running server; its metrics directory is set by the "operator", so the test can read each worker's file."""
    (tmp_path / "metrics").mkdir()
    started = Server(tmp_path, {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")})
    yield started
    started.stop()


def _counts_by_worker(metrics_dir: Path, endpoint: str) -> dict[str, float]:
    """Requests to ``endpoint`` counted by each worker, from its prometheus_client file."""
    from prometheus_client.multiprocess import MultiProcessCollector
    counts = {}
    for path in metrics_dir.glob("counter_*.db"):
        counts[path.stem.removeprefix("counter_")] = sum(
            sample.value for metric in MultiProcessCollector.merge([str(path)]) for sample in metric.samples
            if sample.name == "hrdd_http_requests_total" and sample.labels["endpoint"] == endpoint)
    return counts


def _posted_screenings(metrics_text: str) -> float:
    total = 0.0
    for line in metrics_text.splitlines():
        if line.startswith("hrdd_http_requests_total{") and 'endpoint="/v1/screenings"' in line \
                and 'method="POST"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


@needs_proc
def test_two_workers_share_the_port_the_database_and_the_metrics(server, tmp_path):
    assert len(server.workers()) == 2
    # Warmed up before forking: the shipped restricted-party list is in the store before any screening.
    assert server.count("party_list_versions") == 1 and server.count("screenings") == 0
    assert "2 workers × 2 threads" in server.log() and f"127.0.0.1:{server.port}" in server.log()
    keys = [f"serve-workers-{i}" for i in range(40)]
    duplicates = keys[:4]
    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(server.screen, keys + duplicates))
    by_key: dict[str, list[int]] = {}
    for key, status in zip(keys + duplicates, statuses, strict=True):
        by_key.setdefault(key, []).append(status)
    # A key sent twice at once is stored once: one answer says created, the other is the replay.
    assert all(sorted(by_key[k]) == [200, 201] for k in duplicates), by_key
    assert all(by_key[k] == [201] for k in keys[4:]), by_key
    assert server.count("screenings") == 40
    # One deal, escalated 40 times: one review case; and the shipped restricted-party list still loaded once.
    assert server.count("cases") == 1
    assert server.count("party_list_versions") == 1

    status, body = server.get("/metrics")
    assert status == 200
    assert _posted_screenings(body.decode()) == 44
    per_worker = _counts_by_worker(tmp_path / "metrics", "/v1/screenings")
    assert sum(per_worker.values()) == 44
    assert len([n for n in per_worker.values() if n]) >= 2, f"one worker served everything: {per_worker}"


def test_keep_alive_connections_are_spread_evenly_over_the_workers(server, tmp_path):
    """32 clients that connect at once and keep their connections: the two workers get 16 each, or nearly.

    Left to the kernel, whichever worker woke first accepted nearly all of them (14 of 16, even 16 of 16,
    seen under wrk), and their requests queued behind each other on one core.
    """
    import http.client
    # A worker still starting (seconds on a loaded machine) rightly takes no share: wait until both serve.
    wait_for(lambda: server.get("/readyz")[0] == 200
             and len([n for n in _counts_by_worker(tmp_path / "metrics", "/readyz").values() if n]) == 2,
             "both workers to serve", 60)
    connections = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=30) for _ in range(32)]
    try:
        for conn in connections:
            conn.connect()
        for conn in connections:
            conn.request("GET", "/healthz")
            answer = conn.getresponse()
            assert answer.status == 200 and answer.getheader("Connection", "").lower() != "close"
            answer.read()
    finally:
        for conn in connections:
            conn.close()
    per_worker = _counts_by_worker(tmp_path / "metrics", "/healthz")
    assert len(per_worker) == 2 and min(per_worker.values()) >= 14, per_worker


def test_the_worker_with_fewest_connections_accepts_and_a_silent_one_stops_counting(monkeypatch):
    from hrdd.serving import ConnectionTable
    table = ConnectionTable(3)
    assert table.may_accept(0, 0)  # slots 1 and 2 have no worker yet
    assert table.may_accept(1, 0) and table.may_accept(2, 0)  # a tie: all accept
    assert table.may_accept(0, 1) is False  # slot 0 now holds more than 1 and 2
    assert table.may_accept(1, 1) is False and table.may_accept(2, 1)  # 2 catches up; then all are even
    assert table.may_accept(0, 1)
    table.forget(1)  # slot 1's worker died: slot 0 need not wait for it
    assert table.may_accept(0, 2) is False  # slot 2 (1 connection) is live and holds fewer
    later = __import__("time").monotonic() + ConnectionTable.STALE_SECONDS + 1
    monkeypatch.setattr("hrdd.serving.time.monotonic", lambda: later)
    assert table.may_accept(0, 2)  # slot 2 has not reported for STALE_SECONDS: hung, no longer counted


@needs_proc
def test_a_killed_worker_is_replaced_and_requests_keep_succeeding(server):
    before = server.workers()
    victim = min(before)
    os.kill(victim, signal.SIGKILL)

    def replaced():
        workers = server.workers()
        return workers if len(workers) == 2 and victim not in workers else None

    after = wait_for(replaced, "a replacement worker")
    assert len(after - before) == 1
    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(server.screen, [f"after-kill-{i}" for i in range(8)]))
    assert statuses == [201] * 8
    assert f"worker {victim} was killed by signal SIGKILL; starting a replacement" in server.log()


@needs_proc
def test_sigterm_stops_every_worker_and_exits_zero(server, tmp_path):
    workers = server.workers()
    assert len(workers) == 2
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(30) == 0, server.log()
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    assert server.get("/healthz")[0] == 0
    # The metrics directory was the operator's: it is left in place.
    assert list((tmp_path / "metrics").glob("counter_*.db"))


def test_workers_that_keep_dying_stop_the_server_with_a_clear_message(tmp_path):
    # A bare WSGI app under the same process model, whose workers fail as soon as they start.
    script = textwrap.dedent(f"""
        from hrdd import serving

        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]

        def fail():
            raise RuntimeError("cannot open the database")

        serving.serve(app, port={_free_port()}, threads=1, workers=2, after_fork=fail)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "WorkersFailing" in done.stderr and "worker processes died within 10 s" in done.stderr
    assert "exited with code 1" in done.stderr
    assert "cannot open the database" in done.stderr


def test_metrics_directory_is_temporary_unless_the_operator_chose_one(monkeypatch, tmp_path):
    from hrdd import serving
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    with serving.prometheus_multiproc_dir() as path:
        assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == path and Path(path).is_dir()
    assert not Path(path).exists() and "PROMETHEUS_MULTIPROC_DIR" not in os.environ

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with serving.prometheus_multiproc_dir() as path:
        assert path == str(tmp_path)
    assert tmp_path.is_dir() and os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(tmp_path)


def test_workers_option_is_refused_where_fork_is_missing(monkeypatch):
    from click.testing import CliRunner

    from hrdd import serving
    from hrdd.cli import cli
    monkeypatch.setattr(serving, "can_fork", lambda: False)
    result = CliRunner().invoke(cli, ["serve", "--workers", "2"])
    assert result.exit_code != 0 and "--workers" in result.output and "os.fork" in result.output


# ---- the SQLite write lock across processes ----

_FORKING_PARENT = textwrap.dedent("""
    import multiprocessing, sys, time
    from pathlib import Path
    from hrdd.store import Store

    def increment(store, times):
        # What `hrdd serve` does in each worker: never use a connection opened before the fork.
        store.engine.dispose(close=False)
        for _ in range(times):
            with store.begin() as conn:
                value = conn.exec_driver_sql("SELECT value FROM counter").scalar_one()
                time.sleep(0)  # let the other process in between the read and the write, if the lock allows it
                conn.exec_driver_sql("UPDATE counter SET value = ?", (value + 1,))

    if __name__ == "__main__":
        database = sys.argv[1]
        store = Store(f"sqlite:///{database}")
        # The parent takes the lock first, so the children inherit its open lock file and must not share it.
        with store.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE counter (value INTEGER NOT NULL)")
            conn.exec_driver_sql("INSERT INTO counter VALUES (0)")
        fork = multiprocessing.get_context("fork")
        workers = [fork.Process(target=increment, args=(store, 200)) for _ in range(2)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        with store.engine.connect() as conn:
            print([w.exitcode for w in workers], conn.exec_driver_sql("SELECT value FROM counter").scalar_one())
""")


def test_store_writes_are_serialised_across_processes(tmp_path):
    # Forked from a process of its own, as `hrdd serve` forks its workers: the test process carries other
    # tests' threads, and a lock one of them held at the fork would stay held in the children.
    script = tmp_path / "forking_parent.py"
    script.write_text(_FORKING_PARENT, encoding="utf-8")
    database = tmp_path / "counter.sqlite3"
    done = subprocess.run([sys.executable, str(script), str(database)], capture_output=True, text=True,
                          timeout=120, cwd=Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["[0,", "0]", "400"], done.stdout
    assert Path(f"{database}.lock").exists()


def test_threads_default_to_few_on_sqlite_and_more_on_a_server_database(tmp_path):
    """Without --threads: 2 per process on SQLite (writes queue on one lock), 8 on PostgreSQL."""
    from hrdd.cli import default_threads
    started = Server(tmp_path, args=())
    try:
        assert "(1 worker × 2 threads; store: sqlite:///" in started.log()
        assert started.screen("default-threads") == 201
    finally:
        started.stop()
    assert default_threads("postgresql+psycopg://hrdd:secret@db.example/hrdd") == 8
    assert default_threads(f"sqlite:///{tmp_path / 'x.sqlite3'}") == 2
