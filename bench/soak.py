"""Sustained load: `hrdd serve` at full throughput for minutes, with a worker draining the outbox.

wrk posts escalating deals (a new deal and Idempotency-Key per request) as fast as the server answers,
in one-minute segments, while RSS of the server and the worker is sampled every few seconds. Afterwards:
no non-2xx answer, every 2xx answer's screening stored (the database holds between the number of 2xx
answers and that plus the requests wrk abandoned at each segment's end), every screening with its outbox
row and review case, the outbox drained, the audit chain intact; RSS flat (slope after the first minute).
Writes bench/results/soak-<backend>.json.

Usage: python bench/soak.py [--minutes 5] [--connections 16] [--threads 8] [--database-url URL]
(default store: a fresh schema in the local PostgreSQL test database).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hrdd import audit  # noqa: E402
from tests.scaleout_support import (  # noqa: E402
    HRDD,
    FakeCrm,
    Instance,
    Schema,
    adapters_file,
    base_env,
    create_key,
    git_commit,
    transaction,
)

LUA = r"""
counter, ok, bad, tid = 0, 0, 0, 0  -- globals: done() reads them through thread:get
local threads = {}
setup = function(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end
request = function()
  counter = counter + 1
  local id = PREFIX .. "-" .. tid .. "-" .. counter
  -- wrk.format uses the table given instead of wrk.headers, so every header goes in it.
  return wrk.format("POST", "/v1/screenings", {["Idempotency-Key"] = id, ["Authorization"] = AUTH,
                    ["Content-Type"] = "application/json"}, HEAD .. id .. TAIL)
end
response = function(status, headers, body)
  if status >= 200 and status < 300 then ok = ok + 1 else bad = bad + 1 end
end
done = function(summary, latency, requests)
  for i, t in ipairs(threads) do
    io.write(string.format("THREAD %d generated %d ok %d bad %d\n", i, t:get("counter"), t:get("ok"), t:get("bad")))
  end
  io.write(string.format("LAT %d %d %d\n", latency:percentile(50), latency:percentile(90), latency:percentile(99)))
end
"""


def lua_script(directory: Path, prefix: str, key: str) -> Path:
    """The wrk script: a unique object id and Idempotency-Key per request, 2xx/other counted per thread."""
    marker = "@@ID@@"
    body = json.dumps(transaction(marker, system="loadtest"))
    head, tail = body.split(marker)
    path = directory / f"{prefix}.lua"
    path.write_text(f'PREFIX = "{prefix}"\nHEAD = {json.dumps(head)}\nTAIL = {json.dumps(tail)}\n'
                    f'AUTH = "Bearer {key}"\n' + LUA)
    return path


def run_wrk(url: str, script: Path, seconds: int, connections: int) -> dict:
    """One wrk segment; requests/s, latency percentiles (ms), 2xx and other answers, abandoned requests."""
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url],
                         capture_output=True, text=True, check=True).stdout
    threads = [tuple(map(int, m)) for m in re.findall(r"THREAD \d+ generated (\d+) ok (\d+) bad (\d+)", out)]
    lat = [int(x) / 1000 for x in re.search(r"LAT (\d+) (\d+) (\d+)", out).groups()]
    generated, ok, bad = (sum(t[i] for t in threads) for i in range(3))
    return {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": lat[0], "p90_ms": lat[1], "p99_ms": lat[2], "ok_2xx": ok, "other": bad,
            "abandoned": generated - ok - bad, "socket_errors": re.search(r"Socket errors:.*", out) is not None,
            "socket_error_line": (re.search(r"Socket errors:.*", out) or [""])[0]}


class Sampler(threading.Thread):
    """Samples the RSS (KiB) of named processes every ``every`` seconds."""

    def __init__(self, procs: dict, every: float):
        super().__init__(daemon=True)
        self.procs, self.every = procs, every
        self.samples: list[dict] = []
        self.halt = threading.Event()
        self.started = time.monotonic()

    def run(self):
        while not self.halt.is_set():
            sample = {"t_s": round(time.monotonic() - self.started, 1)}
            for name, rss in self.procs.items():
                sample[name] = rss()
            self.samples.append(sample)
            self.halt.wait(self.every)


def slope_kib_per_min(samples: list[dict], name: str, after_s: float) -> float:
    """Least-squares slope of RSS over time (KiB per minute), for samples taken after ``after_s``."""
    points = [(s["t_s"], s[name]) for s in samples if s["t_s"] >= after_s and s.get(name)]
    if len(points) < 3:
        return float("nan")
    mean_t = statistics.fmean(t for t, _ in points)
    mean_v = statistics.fmean(v for _, v in points)
    num = sum((t - mean_t) * (v - mean_v) for t, v in points)
    den = sum((t - mean_t) ** 2 for t, _ in points)
    return num / den * 60


def rss_of(proc):
    def read():
        try:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None
    return read


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--segment", type=int, default=60, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=8, help="waitress threads")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--sample-every", type=float, default=5)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed: apt-get install wrk")
    workdir = Path(tempfile.mkdtemp(prefix="hrdd-soak-"))
    schema = None if args.database_url else Schema(prefix="soak")
    url = args.database_url or schema.url
    backend = "postgresql" if url.startswith("postgresql") else "sqlite"
    crm = FakeCrm()
    env = base_env(url, workdir, HRDD_ADAPTERS_FILE=str(adapters_file(workdir, crm.url, lease=30, timeout=5)))
    server = Instance("soak", env, workdir, threads=args.threads).start()
    worker = None
    run = f"soak{uuid.uuid4().hex[:6]}"
    try:
        server.wait_ready()
        key = create_key(env, "crm")
        worker = subprocess.Popen([*HRDD, "worker", "--interval", "1"], env=env, cwd=ROOT,
                                  stdout=(workdir / "worker.log").open("wb"), stderr=subprocess.STDOUT)
        sampler = Sampler({"server_rss_kib": server.rss_kib, "worker_rss_kib": rss_of(worker)}, args.sample_every)
        sampler.start()
        segments = []
        count = max(1, round(args.minutes * 60 / args.segment))
        for n in range(count):
            script = lua_script(workdir, f"{run}-s{n}", key)
            result = run_wrk(server.url + "/v1/screenings", script, args.segment, args.connections)
            result["segment"] = n + 1
            segments.append(result)
            print(f"segment {n + 1}/{count}: {result['requests_per_s']:.1f} req/s, p50 {result['p50_ms']:.1f} ms, "
                  f"p99 {result['p99_ms']:.1f} ms, 2xx {result['ok_2xx']}, other {result['other']}, "
                  f"server RSS {server.rss_kib()} KiB", flush=True)
        drain_started = time.monotonic()
        engine = sa.create_engine(url)
        with engine.connect() as conn:
            while time.monotonic() - drain_started < 300:
                pending = conn.execute(sa.text("SELECT count(*) FROM outbox WHERE status <> 'delivered'")).scalar()
                if not pending:
                    break
                time.sleep(1)
                conn.rollback()
        drain_s = time.monotonic() - drain_started
        sampler.halt.set()
        sampler.join()
        with engine.connect() as conn:
            def q(sql):
                # The API stores each key scoped to its caller: "key:api_key:<key id>:<run>-<n>".
                return conn.execute(sa.text(sql), {"p": f"key:%:{run}-%"}).scalar()
            stored = q("SELECT count(*) FROM screenings WHERE idempotency_key LIKE :p")
            no_outbox = q("SELECT count(*) FROM screenings s WHERE idempotency_key LIKE :p AND NOT EXISTS "
                          "(SELECT 1 FROM outbox o WHERE o.screening_id = s.id)")
            no_case = q("SELECT count(*) FROM screenings s WHERE idempotency_key LIKE :p AND s.decision = "
                        "'escalate' AND NOT EXISTS (SELECT 1 FROM cases c WHERE c.transaction_id = s.transaction_id)")
            undelivered = q("SELECT count(*) FROM outbox WHERE status <> 'delivered'")
            chain = audit.verify(conn)
        engine.dispose()
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(20)
        server.stop()
        crm.close()
        if schema is not None:
            schema.drop()
    ok = sum(s["ok_2xx"] for s in segments)
    other = sum(s["other"] for s in segments)
    abandoned = sum(s["abandoned"] for s in segments)
    samples = sampler.samples
    warm = [s for s in samples if s["t_s"] >= args.segment]
    record = {
        "backend": backend, "commit": git_commit(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "minutes": args.minutes, "connections": args.connections, "waitress_threads": args.threads,
        "segments": segments,
        "requests_per_s_mean": round(statistics.fmean(s["requests_per_s"] for s in segments), 1),
        "answers_2xx": ok, "answers_other": other, "abandoned_at_segment_ends": abandoned,
        "screenings_stored": stored, "every_2xx_stored": ok <= stored <= ok + abandoned,
        "screenings_without_outbox_row": no_outbox, "escalations_without_case": no_case,
        "outbox_undelivered_after_drain": undelivered, "outbox_drain_s": round(drain_s, 1),
        "crm_writebacks_received": len(crm.received),
        "audit_entries": chain.entries, "audit_ok": chain.ok,
        "rss": {name: {"after_first_segment_kib": warm[0][name] if warm else None,
                       "last_kib": samples[-1][name], "max_kib": max((s[name] or 0) for s in samples),
                       "slope_kib_per_min_after_first_segment": round(slope_kib_per_min(samples, name, args.segment), 1)}
                for name in ("server_rss_kib", "worker_rss_kib")},
        "rss_samples": samples,
    }
    print(json.dumps({k: v for k, v in record.items() if k not in ("rss_samples", "segments")}, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"soak-{backend}.json").write_text(json.dumps(record, indent=2))
    healthy = (other == 0 and record["every_2xx_stored"] and not no_outbox and not no_case and not undelivered
               and chain.ok)
    raise SystemExit(0 if healthy else 1)


if __name__ == "__main__":
    main()
