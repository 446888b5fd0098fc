"""Two `hrdd serve` instances on one PostgreSQL, concurrent duplicate deliveries, and the count that proves it.

Starts two instances on loopback against a fresh schema of the local PostgreSQL (and, when Redis answers,
a shared rate-limit store), sends every delivery COPIES times at the same moment (half of the copies to
each instance; even deliveries to POST /v1/screenings with an Idempotency-Key, odd ones to the generic
adapter with the same delivery id), then counts: screenings per delivery, 201s per delivery, 2xx answers
whose screening is not stored, screenings without their outbox row, deals with two open cases, audit
chain. Two `hrdd worker` processes then drain the outbox (SKIP LOCKED claiming) into a fake CRM, which
must receive each write-back once. With Redis, grievance reports alternate between the instances to
show the shared limit. Writes bench/results/scaleout.json; exits 1 if any check fails.

Usage: python bench/scaleout.py [--deliveries 500] [--copies 4] [--threads 32]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.scaleout_support import (  # noqa: E402
    GRIEVANCE,
    HRDD,
    Client,
    FakeCrm,
    Instance,
    Schema,
    adapters_file,
    base_env,
    create_key,
    git_commit,
    pg_unavailable,
    redis_unavailable,
    send_duplicates,
    verify_store,
    wait_for,
)

RATE_LIMIT = 6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=500)
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--threads", type=int, default=32, help="load-generator threads")
    args = parser.parse_args()
    reason = pg_unavailable()
    if reason:
        raise SystemExit(reason)
    workdir = Path(tempfile.mkdtemp(prefix="hrdd-scaleout-"))
    schema, crm = Schema(prefix="scaleout"), FakeCrm()
    extra = {"HRDD_ADAPTERS_FILE": str(adapters_file(workdir, crm.url, lease=10)),
             "HRDD_GRIEVANCE_RATE_LIMIT": f"{RATE_LIMIT} per minute"}
    redis = redis_unavailable()
    if redis is None:
        extra.update(HRDD_RATELIMIT_STORAGE_URI="redis://127.0.0.1:6379/0",
                     HRDD_RATELIMIT_KEY_PREFIX=f"hrdd-bench-{uuid.uuid4().hex[:8]}")
    env = base_env(schema.url, workdir, **extra)
    instances = [Instance("a", env, workdir), Instance("b", env, workdir)]
    result: dict = {"deliveries": args.deliveries, "copies": args.copies, "load_threads": args.threads,
                    "commit": git_commit(), "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        started = time.monotonic()
        for instance in instances:
            instance.start()
        for instance in instances:
            instance.wait_ready()
        result["start_both_s"] = round(time.monotonic() - started, 1)
        key = create_key(env, "crm")
        t0 = time.monotonic()
        records = send_duplicates([i.url for i in instances], key, f"b{uuid.uuid4().hex[:6]}", args.deliveries,
                                  copies=args.copies, threads=args.threads)
        elapsed = time.monotonic() - t0
        report = verify_store(schema, records)
        result.update(report)
        result["load_s"] = round(elapsed, 1)
        result["requests_per_s"] = round(len(records) / elapsed, 1)
        result["created_by_instance"] = {i.name: sum(1 for r in records if r["status"] == 201 and r["instance"] == i.url)
                                         for i in instances}
        result["answered_by_instance"] = {i.name: sum(1 for r in records if 200 <= r["status"] < 300
                                                      and r["instance"] == i.url) for i in instances}
        # Two workers drain the outbox; each row is claimed by one of them (SKIP LOCKED) and sent once.
        rows = schema.scalar("SELECT count(*) FROM outbox")
        workers = [subprocess.Popen([*HRDD, "worker", "--interval", "0.2"], env=env, cwd=ROOT,
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(2)]
        t1 = time.monotonic()
        drained = wait_for(lambda: schema.scalar("SELECT count(*) FROM outbox WHERE status <> 'delivered'") == 0, 600)
        for worker in workers:
            worker.terminate()
        outputs = [worker.communicate(timeout=30)[0] for worker in workers]
        result["outbox"] = {
            "rows": rows, "drained": drained is not None, "drain_s": round(time.monotonic() - t1, 1),
            "crm_received": len(crm.received),
            "delivered_by_worker": [sum(json.loads(line)["writeback"]["delivered"] for line in out.splitlines()
                                        if line.startswith("{") and "writeback" in line) for out in outputs]}
        if drained is None or len(crm.received) != rows:
            result["problems"].append(f"outbox: {rows} rows, CRM received {len(crm.received)}")
        if redis is None:
            a, b = (Client(i.url) for i in instances)
            body = json.dumps(GRIEVANCE)
            statuses = [(a if n % 2 == 0 else b).request("POST", "/v1/grievances", body.encode(),
                                                         {"Content-Type": "application/json"})[0]
                        for n in range(2 * RATE_LIMIT)]
            result["rate_limit"] = {"limit_per_minute": RATE_LIMIT, "sent_alternating": len(statuses),
                                    "accepted": statuses.count(201), "refused_429": statuses.count(429)}
            if statuses.count(201) != RATE_LIMIT:
                result["problems"].append(f"rate limit not shared: {statuses}")
        else:
            result["rate_limit"] = {"skipped": redis}
    finally:
        for instance in instances:
            instance.stop()
        crm.close()
        schema.drop()
    print(json.dumps(result, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "scaleout.json").write_text(json.dumps(result, indent=2))
    raise SystemExit(1 if result["problems"] else 0)


if __name__ == "__main__":
    main()
