"""Multi-process support for the scale-out, load and fault tests and scripts.

Real `hrdd serve` and `hrdd worker` processes against one PostgreSQL database (a fresh schema each
time), a keep-alive HTTP client for load generators, RSS sampling, and a private PostgreSQL server
that fault tests may stop and start without disturbing anyone else using the machine's cluster.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
HRDD = [sys.executable, "-c", "from hrdd.cli import main; main()"]
GRIEVANCE = {"subject_name": "Directorate of Public Security", "country": "EG", "location": "Cairo",
             "product": "FaceFind Enterprise", "occurred_on": "March 2026",
             "description": "Cameras with face recognition were used to identify people at a peaceful protest."}


def pg_base_url() -> str:
    """The PostgreSQL the scale-out tests use: HRDD_TEST_DATABASE_URL, else the local test database."""
    return os.environ.get("HRDD_TEST_DATABASE_URL") or DEFAULT_PG


def pg_unavailable(url: str | None = None) -> str | None:
    """None when PostgreSQL answers at ``url``, else the reason (for a visible skip)."""
    engine = sa.create_engine(url or pg_base_url())
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return None
    except sa.exc.SQLAlchemyError as exc:
        return f"PostgreSQL at {url or pg_base_url()} is not reachable: {str(exc.orig or exc).splitlines()[0]}"
    finally:
        engine.dispose()


def redis_unavailable(host: str = "127.0.0.1", port: int = 6379) -> str | None:
    """None when a Redis server answers PING, else the reason."""
    try:
        with socket.create_connection((host, port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            if sock.recv(16).startswith(b"+PONG"):
                return None
            return f"the server at {host}:{port} did not answer PING like Redis"
    except OSError as exc:
        return f"Redis at {host}:{port} is not reachable: {exc}"


class Schema:
    """A fresh PostgreSQL schema; ``url`` points a store at it (search_path), ``drop()`` removes it."""

    def __init__(self, base_url: str | None = None, prefix: str = "so"):
        self.base_url = base_url or pg_base_url()
        self.name = f"{prefix}_{uuid.uuid4().hex[:10]}"
        self.admin = sa.create_engine(self.base_url, pool_pre_ping=True)
        with self.admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{self.name}"'))
        sep = "&" if "?" in self.base_url else "?"
        self.url = f"{self.base_url}{sep}options=-csearch_path%3D{self.name}"
        self.engine = sa.create_engine(self.url, pool_pre_ping=True)

    def scalar(self, sql: str, **params):
        """One value from a query in this schema."""
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).scalar()

    def rows(self, sql: str, **params) -> list:
        """All rows of a query in this schema."""
        with self.engine.connect() as conn:
            return conn.execute(sa.text(sql), params).fetchall()

    def drop(self) -> None:
        """Drop the schema and everything in it."""
        self.engine.dispose()
        try:
            with self.admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE'))
        finally:
            self.admin.dispose()


class PlainDatabase(Schema):
    """A database used as it is (e.g. a private server's own): nothing to create, ``drop()`` only disposes."""

    def __init__(self, url):
        import sqlalchemy as sa

        self.url = url
        self.engine = sa.create_engine(url, pool_pre_ping=True)

    def drop(self) -> None:
        self.engine.dispose()


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_env(database_url: str, workdir: Path, **extra: str) -> dict[str, str]:
    """Environment for an hrdd process: the store, a private var dir, and any HRDD_* settings given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("HRDD_")}
    env.update(HRDD_DATABASE_URL=database_url, HRDD_VAR_DIR=str(workdir), PYTHONUNBUFFERED="1",
               HRDD_SECRET_KEY="scaleout-test-secret", **extra)
    return env


def hrdd_command(args: list[str], env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    """Run one `hrdd …` command to completion (from the project root) and return the result."""
    return subprocess.run([*HRDD, *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def create_key(env: dict[str, str], role: str) -> str:
    """A fresh API key of ``role`` made with `hrdd keys create` (the key is the last line printed)."""
    done = hrdd_command(["keys", "create", f"load-{role}-{uuid.uuid4().hex[:6]}", "--role", role], env)
    if done.returncode:
        raise RuntimeError(f"hrdd keys create failed: {done.stderr or done.stdout}")
    return done.stdout.strip().splitlines()[-1]


class Instance:
    """One `hrdd serve` process on loopback; restartable, killable with SIGKILL, RSS measurable."""

    def __init__(self, name: str, env: dict[str, str], workdir: Path, threads: int = 8, port: int | None = None):
        self.name, self.env, self.threads = name, env, threads
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> Instance:
        """Start the process (the log goes to <workdir>/<name>.log, appended across restarts)."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([*HRDD, "serve", "--port", str(self.port), "--threads", str(self.threads)],
                                     env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.starts += 1
        return self

    def wait_ready(self, timeout: float = 90) -> float:
        """Wait until /readyz answers 200; returns the seconds waited."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.ready()[0] == 200:
                return time.monotonic() - started
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} was not ready within {timeout} s:\n{self.log_tail()}")

    def ready(self) -> tuple[int, dict]:
        """(status, body) of /readyz; status 0 when nothing answers."""
        try:
            with urllib.request.urlopen(self.url + "/readyz", timeout=3) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")
        except (OSError, ValueError):
            return 0, {}

    def kill(self) -> None:
        """SIGKILL (kill -9): no clean-up, open transactions die with the connection."""
        if self.proc and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit within 10 s."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()

    def rss_kib(self) -> int | None:
        """Resident set size of the process in KiB (from /proc), or None when it is not running."""
        if not self.proc or self.proc.poll() is not None:
            return None
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the instance's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class Client:
    """A keep-alive HTTP/1.1 client for one thread; reconnects after errors; never raises on a status."""

    def __init__(self, url: str, timeout: float = 30):
        self.host, self.port = url.removeprefix("http://").split(":")
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        """(status, body); status 0 with the error text as body when the connection failed."""
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, int(self.port), timeout=self.timeout)
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                answer = self.conn.getresponse()
                data = answer.read()
                if answer.getheader("Connection", "").lower() == "close":
                    self.close()
                return answer.status, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                # A kept-alive connection the server closed while idle: retry once on a new one,
                # but only if the request cannot have been processed (nothing was answered).
                self.close()
                if attempt == 2 or not isinstance(exc, http.client.RemoteDisconnected | BrokenPipeError):
                    return 0, str(exc).encode()
            except OSError as exc:
                self.close()
                return 0, str(exc).encode()
        return 0, b"unreachable"

    def close(self) -> None:
        """Close the connection (a new one is opened on the next request)."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class FakeCrm:
    """A CRM write-back endpoint on loopback that records every PATCH; can answer slowly (timeouts)."""

    def __init__(self, delay: float = 0.0):
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.delay = delay
        self.received: list[dict] = []
        self.lock = threading.Lock()
        crm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_PATCH(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                delay = crm.delay
                if delay:
                    time.sleep(delay)
                with crm.lock:
                    crm.received.append({"path": self.path, "body": json.loads(body or b"{}"), "slow": bool(delay)})
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


def adapters_file(workdir: Path, crm_url: str, *, system: str = "loadtest", lease: int = 5,
                  timeout: float = 2, base_delay: float = 1) -> Path:
    """An HRDD_ADAPTERS_FILE: write-back of ``system`` to the fake CRM, short leases and back-off for tests."""
    path = workdir / "adapters.yaml"
    path.write_text(json.dumps({
        "writeback": {system: {"url": crm_url + "/records/{object_id}", "kind": "generic"}},
        "worker": {"lease": lease, "timeout": timeout, "base_delay": base_delay, "max_delay": 5,
                   "max_attempts": 50},
    }))
    return path


def transaction(object_id: str, *, system: str = "loadtest", stage: str = "quote") -> dict:
    """The DESIGN.md example deal (Egypt, biometric identification: escalates) under a given reference."""
    body = json.loads((ROOT / "tests" / "fixtures" / "transaction_egypt_biometric.json").read_text())
    body["reference"] = {"system": system, "object_type": "opportunity", "object_id": object_id}
    body["stage"] = stage
    return body


class PrivatePostgres:
    """A throw-away PostgreSQL server (initdb in a temporary directory, its own port) run as `postgres`.

    Fault tests stop and start it to simulate an outage without touching the machine's shared cluster.
    """

    def __init__(self):
        self.bin = _pg_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="hrdd-pg-"))
        self.data = self.dir / "data"
        self.port = free_port()
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        shutil.chown(self.dir, "postgres", "postgres")
        self._as_postgres([str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                           "--no-sync", "-E", "UTF8"])

    def _as_postgres(self, args: list[str]) -> None:
        prefix = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
        done = subprocess.run(prefix + args, capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stderr or done.stdout}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.dir / "log"),
                           "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
                           "start"])

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (fast: roll back open transactions and disconnect everyone)."""
        self._as_postgres([str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-m", mode, "stop"])

    def destroy(self) -> None:
        """Stop the server if it runs and delete its files."""
        try:
            self.stop("immediate")
        except RuntimeError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


def _pg_bin() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"), reverse=True)
    if not candidates:
        raise FileNotFoundError("pg_ctl not found (install the PostgreSQL server package)")
    return candidates[0].parent


def private_postgres_unavailable() -> str | None:
    """None when a private PostgreSQL server can be created here, else the reason."""
    try:
        _pg_bin()
    except FileNotFoundError as exc:
        return str(exc)
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser to start PostgreSQL as the postgres user"
    try:
        import pwd
        pwd.getpwnam("postgres")
    except KeyError:
        return "there is no postgres user to run a private PostgreSQL server"
    return None


def send_duplicates(urls: list[str], crm_key: str, run: str, deliveries: int, *, copies: int = 4,
                    threads: int = 16) -> list[dict]:
    """Send every delivery ``copies`` times at the same moment, spread over the instances at ``urls``.

    Even deliveries go to ``POST /v1/screenings`` with an Idempotency-Key, odd ones to the generic adapter
    (``POST /v1/hooks/generic``, whose Idempotency-Key is the vendor delivery id). Deliveries 2k and 2k+1
    concern the same deal, so two different deliveries of one deal also race (one review case, two
    screenings). Returns one record per request: delivery, kind, key, instance, status, screening_id.
    """
    import threading
    from concurrent.futures import ThreadPoolExecutor

    if threads < copies:
        raise ValueError("threads must be at least copies (the copies of a delivery wait for each other)")
    tasks = []
    for i in range(deliveries):
        kind = "api" if i % 2 == 0 else "hook"
        body = json.dumps(transaction(f"{run}-opp-{i // 2}")).encode()
        barrier = threading.Barrier(copies, timeout=60)
        for copy in range(copies):
            tasks.append((i, kind, f"{run}-{kind}-{i}", body, urls[copy % len(urls)], barrier))
    local = threading.local()

    def one(task) -> dict:
        i, kind, key, body, url, barrier = task
        clients = local.__dict__.setdefault("clients", {})
        client = clients.setdefault(url, Client(url))
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        path = "/v1/screenings" if kind == "api" else "/v1/hooks/generic"
        status, data = client.request("POST", path, body, {
            "Authorization": f"Bearer {crm_key}", "Content-Type": "application/json", "Idempotency-Key": key})
        record = {"delivery": i, "kind": kind, "key": key, "instance": url, "status": status, "screening_id": None}
        if 200 <= status < 300:
            record["screening_id"] = json.loads(data)["id"]
        else:
            record["error"] = data[:300].decode("utf-8", "replace")
        return record

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, tasks))


def screening_key(record: dict) -> str:
    """The idempotency key under which a delivery's screening is stored."""
    return record["key"] if record["kind"] == "api" else f"generic:{record['key']}"


def verify_store(schema: Schema, records: list[dict]) -> dict:
    """Check what the database holds against what clients saw; returns counts and a list of problems.

    Exactly one screening per delivery (by its idempotency key); every 2xx answer's screening stored; one
    201 per delivery; every screening with its write-back outbox row; one open case per escalated deal;
    the audit chain intact.
    """
    from hrdd import audit

    problems: list[str] = []
    by_delivery: dict[int, list[dict]] = {}
    for r in records:
        by_delivery.setdefault(r["delivery"], []).append(r)
    answered = [r for r in records if 200 <= r["status"] < 300]
    keys = {screening_key(r) for r in records}
    # The API stores a caller's Idempotency-Key scoped to its API key: "key:api_key:<key id>:<client key>".
    stored: dict[str, int] = {}
    stored_keys: list[str] = []
    for stored_key, count in schema.rows("SELECT idempotency_key, count(*) FROM screenings "
                                         "WHERE idempotency_key IS NOT NULL GROUP BY idempotency_key"):
        client_key = stored_key.split(":", 3)[3] if stored_key.startswith("key:") else stored_key
        # The generic hook scopes its keys the same way: "generic:key:api_key:<key id>:<key>" or "…:hmac:<key>".
        if stored_key.startswith("generic:key:api_key:"):
            client_key = "generic:" + stored_key.split(":", 4)[4]
        elif stored_key.startswith("generic:key:hmac:"):
            client_key = "generic:" + stored_key.split(":", 3)[3]
        if client_key in keys:
            stored[client_key] = stored.get(client_key, 0) + count
            stored_keys.append(stored_key)
    for delivery, copies in sorted(by_delivery.items()):
        key = screening_key(copies[0])
        ok = [c for c in copies if 200 <= c["status"] < 300]
        ids = {c["screening_id"] for c in ok}
        if ok and stored.get(key, 0) != 1:
            problems.append(f"delivery {delivery}: {stored.get(key, 0)} screenings stored under {key}")
        if len(ids) > 1:
            problems.append(f"delivery {delivery}: answers name different screenings {sorted(ids)}")
        created = sum(1 for c in ok if c["status"] == 201)
        if created > 1:
            problems.append(f"delivery {delivery}: {created} answers said 201 Created")
    seen_ids = sorted({r["screening_id"] for r in answered})
    present = {row[0] for row in schema.rows("SELECT id FROM screenings WHERE id = ANY(:ids)", ids=seen_ids)}
    missing = [i for i in seen_ids if i not in present]
    if missing:
        problems.append(f"{len(missing)} screenings answered with 2xx are not stored: {missing[:5]}")
    without_outbox = schema.scalar(
        "SELECT count(*) FROM screenings s WHERE s.idempotency_key = ANY(:k) AND NOT EXISTS "
        "(SELECT 1 FROM outbox o WHERE o.screening_id = s.id)", k=stored_keys)
    if without_outbox:
        problems.append(f"{without_outbox} screenings have no write-back outbox row")
    double_outbox = schema.scalar("SELECT count(*) FROM (SELECT screening_id FROM outbox WHERE screening_id IS NOT "
                                  "NULL GROUP BY screening_id HAVING count(*) > 1) d")
    if double_outbox:
        problems.append(f"{double_outbox} screenings have more than one outbox row")
    escalated_without_case = schema.scalar(
        "SELECT count(DISTINCT s.transaction_id) FROM screenings s WHERE s.decision IN ('escalate', "
        "'do_not_proceed') AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.transaction_id = s.transaction_id)")
    if escalated_without_case:
        problems.append(f"{escalated_without_case} escalated deals have no review case")
    double_open = schema.scalar("SELECT count(*) FROM (SELECT transaction_id FROM cases WHERE status IN "
                                "('open', 'information_requested') GROUP BY transaction_id "
                                "HAVING count(*) > 1) d")
    if double_open:
        problems.append(f"{double_open} deals have more than one open review case")
    with schema.engine.connect() as conn:
        chain = audit.verify(conn)
    problems += [f"audit: {p}" for p in chain.problems]
    return {"requests": len(records), "deliveries": len(by_delivery), "answered_2xx": len(answered),
            "created_201": sum(1 for r in answered if r["status"] == 201),
            "other_statuses": sorted({r["status"] for r in records if not 200 <= r["status"] < 300}),
            "screenings_stored": sum(stored.values()), "audit_entries": chain.entries, "problems": problems}


class LoadDriver:
    """Unique deliveries at a steady rate, spread over instances, each retried with the same key until 2xx.

    That is what a CRM does: it resends a delivery that got no answer, a 5xx or a 503, keeping its
    Idempotency-Key (or its own delivery id). Deliveries alternate between ``POST /v1/screenings`` and
    the generic adapter, each for a deal of its own. ``records()`` gives one record per attempt.
    """

    def __init__(self, urls: list[str], crm_key: str, run: str, *, rate: float = 20.0, threads: int = 8,
                 retry_for: float = 180.0, retry_pause: float = 0.3):
        import queue
        import threading

        self.urls, self.crm_key, self.run = urls, crm_key, run
        self.rate, self.retry_for, self.retry_pause = rate, retry_for, retry_pause
        self.todo: queue.Queue = queue.Queue()
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.attempts: list[dict] = []
        self.dispatched = 0
        self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(threads)]
        self.dispatcher = threading.Thread(target=self._dispatch, daemon=True)

    def start(self) -> LoadDriver:
        """Begin sending."""
        for t in self.threads:
            t.start()
        self.dispatcher.start()
        return self

    def _dispatch(self) -> None:
        started = time.monotonic()
        while not self.halt.is_set():
            due = int((time.monotonic() - started) * self.rate)
            while self.dispatched < due:
                self.todo.put(self.dispatched)
                self.dispatched += 1
            time.sleep(0.01)

    def _work(self) -> None:
        import queue

        clients: dict[str, Client] = {}
        while True:
            try:
                delivery = self.todo.get(timeout=0.2)
            except queue.Empty:
                if self.halt.is_set():
                    return
                continue
            if delivery is None:
                return
            kind = "api" if delivery % 2 == 0 else "hook"
            key = f"{self.run}-{kind}-{delivery}"
            body = json.dumps(transaction(f"{self.run}-deal-{delivery}")).encode()
            path = "/v1/screenings" if kind == "api" else "/v1/hooks/generic"
            headers = {"Authorization": f"Bearer {self.crm_key}", "Content-Type": "application/json",
                       "Idempotency-Key": key}
            first = time.monotonic()
            attempt = 0
            while True:
                url = self.urls[(delivery + attempt) % len(self.urls)]
                client = clients.setdefault(url, Client(url, timeout=30))
                sent = time.monotonic()
                status, data = client.request("POST", path, body, headers)
                record = {"delivery": delivery, "kind": kind, "key": key, "instance": url, "status": status,
                          "attempt": attempt, "at": sent, "latency_s": time.monotonic() - sent,
                          "screening_id": None}
                if 200 <= status < 300:
                    record["screening_id"] = json.loads(data)["id"]
                else:
                    record["error"] = data[:200].decode("utf-8", "replace")
                with self.lock:
                    self.attempts.append(record)
                if 200 <= status < 300 or time.monotonic() - first > self.retry_for:
                    break
                attempt += 1
                time.sleep(self.retry_pause)

    def stop(self) -> None:
        """Stop dispatching; wait until every dispatched delivery succeeded or ran out of retries."""
        self.halt.set()
        self.dispatcher.join()
        for _ in self.threads:
            self.todo.put(None)
        for t in self.threads:
            t.join()

    def records(self) -> list[dict]:
        """Every attempt made (several per delivery when it was retried)."""
        with self.lock:
            return list(self.attempts)

    def summary(self) -> dict:
        """Deliveries sent and answered, attempts by status, deliveries that never got a 2xx."""
        attempts = self.records()
        answered = {r["delivery"] for r in attempts if 200 <= r["status"] < 300}
        by_status: dict[str, int] = {}
        for r in attempts:
            by_status[str(r["status"])] = by_status.get(str(r["status"]), 0) + 1
        return {"deliveries": self.dispatched, "attempts": len(attempts), "attempts_by_status": by_status,
                "deliveries_without_2xx": sorted(set(range(self.dispatched)) - answered)}


def stuck_deliveries(schema: Schema) -> int:
    """Adapter deliveries left half-processed (status ``received``) after every retry was answered."""
    return schema.scalar("SELECT count(*) FROM adapter_deliveries WHERE status = 'received'")


def wait_for(predicate, timeout: float, every: float = 0.2) -> float | None:
    """Seconds until ``predicate()`` is true, or None if it never was within ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if predicate():
            return time.monotonic() - started
        time.sleep(every)
    return None


def git_commit() -> str:
    """The commit the measured code is at (with "+changes" when the work tree differs), for result files."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head + ("+changes" if dirty else "") if head else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"
