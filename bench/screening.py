"""hrdd serve vs a bare Flask JSON echo, same WSGI server (waitress) and load generator (wrk), one run.

Both servers run with the same threads and worker processes. Prints throughput of each, the ratio, latency
percentiles and the servers' CPU time per request; writes bench/results/screening-<db>-<fixture>-w<workers>-t<threads>.json.
With --breakdown it also measures, on the same hrdd server, GET /healthz (the framework's floor) and the
screening with ?dry_run=true (validation, engine and response, nothing stored), to show where time goes;
the dry run's ratio to the echo is the ceiling for the stored screening's. --distinct-deals gives every
request a deal of its own (a new deal row, and a new review case when it escalates). --idempotency-keys
sends a new Idempotency-Key with every request, as CRM adapters do (the echo gets the header too).
Usage: python bench/screening.py [--seconds 15] [--connections 16] [--threads 8] [--workers 1]
                                 [--database-url URL] [--fixture NAME] [--breakdown] [--distinct-deals]
                                 [--idempotency-keys]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hrdd.cli import default_threads  # noqa: E402

PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, proc) -> None:
    for _ in range(300):
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode}; see its log in the bench directory") from None
            time.sleep(0.1)
    raise SystemExit(f"{url} did not answer")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children (worker processes), from /proc."""
    pids = [pid] + [int(p) for p in subprocess.run(["pgrep", "-P", str(pid)], capture_output=True,
                                                   text=True).stdout.split()]
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


# Each wrk thread numbers its requests: "<object_id>-<thread>-<n>" is a deal no other request uses, and
# "bench-<thread>-<n>" an Idempotency-Key no other request sends.
_NUMBERED_LUA = """
local thread_count = 0
setup = function(thread)
  thread_count = thread_count + 1
  thread:set("thread_number", thread_count)
end
local sent = 0
request = function()
  sent = sent + 1
  local body = wrk.body
  if DISTINCT_DEALS then
    body = string.gsub(body, '("object_id"%s*:%s*")([^"]*)"', '%1%2-' .. thread_number .. '-' .. sent .. '"', 1)
  end
  local headers = nil
  if IDEMPOTENCY_KEYS then
    headers = {}
    for k, v in pairs(wrk.headers) do headers[k] = v end
    headers["Idempotency-Key"] = "bench-" .. thread_number .. "-" .. sent
  end
  return wrk.format(nil, nil, headers, body)
end
"""


def wrk(url: str, body_file: Path | None, headers: dict, seconds: int, connections: int, pid: int | None = None,
        distinct_deals: bool = False, idempotency_keys: bool = False) -> dict:
    """Run wrk (POSTing the body, or GET without one); parse requests/s, latency percentiles, errors, CPU.

    With ``distinct_deals`` every request's deal reference (``object_id``) is made unique, so each stored
    screening is a new deal (a new row, and a new review case when it escalates) rather than another
    screening of the same one. With ``idempotency_keys`` every request carries an Idempotency-Key of its own.
    """
    lua = Path(tempfile.mkstemp(suffix=".lua")[1])
    head = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items())
    post = (f'wrk.method = "POST"\nwrk.body = {json.dumps(body_file.read_text())}\n'
            'wrk.headers["Content-Type"] = "application/json"\n') if body_file else ""
    if body_file and (distinct_deals or idempotency_keys):
        post += (f"DISTINCT_DEALS = {str(distinct_deals).lower()}\nIDEMPOTENCY_KEYS = {str(idempotency_keys).lower()}\n"
                 + _NUMBERED_LUA)
    lua.write_text(f'{post}{head}\n'
                   'done = function(summary, latency, requests)\n'
                   '  io.write(string.format("STATUS_ERRORS %d\\n", summary.errors.status))\nend\n')
    before = cpu_seconds(pid) if pid else 0.0
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(lua), url],
                         capture_output=True, text=True, check=True).stdout
    used = cpu_seconds(pid) - before if pid else None
    lua.unlink()

    def ms(label: str) -> float:
        m = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", out, re.M)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    done = int(re.search(r"(\d+) requests in", out).group(1))
    return {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": ms("50"), "p90_ms": ms("90"), "p99_ms": ms("99"),
            "non_2xx": int(re.search(r"STATUS_ERRORS (\d+)", out).group(1)),
            "cpu_ms_per_request": round(used * 1000 / done, 3) if used is not None and done else None,
            "socket_errors": bool(re.search(r"Socket errors", out)), "raw": out}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=None,
                        help="waitress threads for both servers (default: hrdd serve's for the store)")
    parser.add_argument("--workers", type=int, default=1, help="server processes for both servers")
    parser.add_argument("--breakdown", action="store_true",
                        help="also measure GET /healthz and ?dry_run=true on the hrdd server")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--distinct-deals", action="store_true",
                        help="make every request's deal reference unique (default: the fixture's deal each time)")
    parser.add_argument("--idempotency-keys", action="store_true",
                        help="send a new Idempotency-Key with every request, as CRM adapters do")
    parser.add_argument("--fixture", default="transaction_egypt_biometric.json",
                        help="request body under tests/fixtures (default: DESIGN.md's escalated example)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    tmp = Path(tempfile.mkdtemp(prefix="hrdd-bench-"))
    db = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    args.threads = args.threads or default_threads(db)
    env = {**os.environ, "HRDD_DATABASE_URL": db}
    fixture = ROOT / "tests" / "fixtures" / args.fixture
    key = subprocess.run([PY, "-m", "hrdd.cli", "keys", "create", "bench", "--role", "crm"], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    hrdd_port, echo_port = free_port(), free_port()
    servers = [
        subprocess.Popen([PY, "-m", "hrdd.cli", "serve", "--port", str(hrdd_port), "--threads", str(args.threads),
                          "--workers", str(args.workers)],
                         env=env, cwd=ROOT, stdout=(tmp / "hrdd.log").open("wb"), stderr=subprocess.STDOUT),
        subprocess.Popen([PY, str(ROOT / "bench" / "echo_app.py"), str(echo_port), str(args.threads),
                          str(args.workers)],
                         cwd=ROOT, stdout=(tmp / "echo.log").open("wb"), stderr=subprocess.STDOUT),
    ]
    try:
        wait_ready(f"http://127.0.0.1:{hrdd_port}/readyz", servers[0])
        wait_ready(f"http://127.0.0.1:{echo_port}/echo", servers[1])
        auth = {"Authorization": f"Bearer {key}"}
        # Warm both servers before measuring.
        wrk(f"http://127.0.0.1:{echo_port}/echo", fixture, {}, 2, args.connections)
        wrk(f"http://127.0.0.1:{hrdd_port}/v1/screenings", fixture, auth, 2, args.connections)
        echo = wrk(f"http://127.0.0.1:{echo_port}/echo", fixture, {}, args.seconds, args.connections,
                   servers[1].pid, args.distinct_deals, args.idempotency_keys)
        hrdd = wrk(f"http://127.0.0.1:{hrdd_port}/v1/screenings", fixture, auth, args.seconds, args.connections,
                   servers[0].pid, args.distinct_deals, args.idempotency_keys)
        extra = {}
        if args.breakdown:
            extra["hrdd GET /healthz"] = wrk(f"http://127.0.0.1:{hrdd_port}/healthz", None, {}, args.seconds,
                                             args.connections, servers[0].pid)
            extra["hrdd dry run"] = wrk(f"http://127.0.0.1:{hrdd_port}/v1/screenings?dry_run=true", fixture, auth,
                                        args.seconds, args.connections, servers[0].pid)
    finally:
        for proc in servers:
            proc.terminate()
            proc.wait(10)
    backend = "postgresql" if db.startswith("postgresql") else "sqlite"
    ratio = hrdd["requests_per_s"] / echo["requests_per_s"]
    print(f"fixture: {args.fixture}" + (" (every request a new deal)" if args.distinct_deals else "")
          + (" (every request a new Idempotency-Key)" if args.idempotency_keys else ""))
    print(f"backend: {backend}; {args.connections} connections, {args.seconds}s each, waitress {args.threads} threads, "
          f"{args.workers} worker process(es)")
    for name, r in (("bare echo", echo), ("hrdd screening", hrdd), *extra.items()):
        print(f"{name:>17}: {r['requests_per_s']:8.1f} req/s  p50 {r['p50_ms']:.2f} ms  p90 {r['p90_ms']:.2f} ms  "
              f"p99 {r['p99_ms']:.2f} ms  CPU {r['cpu_ms_per_request']} ms/request  non-2xx {r['non_2xx']}")
    print(f"ratio screening/echo: {ratio:.2f}")
    if "hrdd dry run" in extra:
        # Storing only adds work, so the dry run's ratio bounds what the stored screening could reach.
        print(f"ratio dry run/echo: {extra['hrdd dry run']['requests_per_s'] / echo['requests_per_s']:.2f} "
              "(the stored screening's ceiling)")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    record = {"backend": backend, "fixture": args.fixture, "connections": args.connections, "seconds": args.seconds,
              "threads": args.threads, "workers": args.workers,
              "distinct_deals": args.distinct_deals, "idempotency_keys": args.idempotency_keys,
              "load_average": os.getloadavg()[0],
              "echo": {k: v for k, v in echo.items() if k != "raw"},
              "screening": {k: v for k, v in hrdd.items() if k != "raw"}, "ratio": round(ratio, 3),
              "breakdown": {name: {k: v for k, v in r.items() if k != "raw"} for name, r in extra.items()}}
    suffix = (f"-w{args.workers}-t{args.threads}" + ("-distinct" if args.distinct_deals else "")
              + ("-keys" if args.idempotency_keys else ""))
    (out / f"screening-{backend}-{Path(args.fixture).stem}{suffix}.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
