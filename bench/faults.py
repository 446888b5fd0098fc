"""Longer fault runs under load, with recorded results: kill -9, database outage, CRM timeouts.

Two `hrdd serve` instances and an `hrdd worker` share one PostgreSQL; a load generator sends unique
deliveries at a steady rate and, like a CRM, resends any that got no answer or a non-2xx with the same
key. Scenarios (``--scenario``, default all):

- ``kill9``: kill -9 instance a, then the worker, then instance b, each restarted a few seconds later;
- ``pg-outage``: stop PostgreSQL for ``--outage`` seconds and start it again, sampling /readyz of both
  instances every 0.5 s; ``--cluster main`` stops the machine's cluster (`pg_ctlcluster … main stop`,
  always started again), ``--cluster private`` (default) a throw-away server of its own;
- ``crm-timeout``: the CRM answers after 3 s while the worker waits 1 s, for the first half of the run.

Afterwards, for each: every delivery answered 2xx in the end, every 2xx screening stored exactly once,
no screening without its outbox row or review case, no delivery half-processed, the outbox drained,
the audit chain intact, and (outage) the time readiness took to recover without a restart.
Writes bench/results/faults.json.

Usage: python bench/faults.py [--scenario kill9|pg-outage|crm-timeout] [--seconds 60] [--rate 20]
       [--cluster private|main] [--outage 10]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.scaleout_support import (  # noqa: E402
    HRDD,
    FakeCrm,
    Instance,
    LoadDriver,
    PlainDatabase,
    PrivatePostgres,
    Schema,
    adapters_file,
    base_env,
    create_key,
    git_commit,
    stuck_deliveries,
    verify_store,
    wait_for,
)


class MainCluster:
    """The machine's PostgreSQL cluster, stopped and started with pg_ctlcluster."""

    def __init__(self):
        self.version = sorted(os.listdir("/etc/postgresql"))[-1]

    def _ctl(self, action: str) -> None:
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", self.version, "main", action, "-m", "fast"]
                       if action == "stop" else
                       ["pg_ctlcluster", "--skip-systemctl-redirect", self.version, "main", action],
                       check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        """Stop the cluster (fast: open transactions are rolled back, clients disconnected)."""
        self._ctl("stop")

    def start(self) -> None:
        """Start the cluster."""
        self._ctl("start")

    def ensure_running(self) -> None:
        """Start the cluster if it is not running (called whatever happened)."""
        status = subprocess.run(["pg_ctlcluster", self.version, "main", "status"], capture_output=True)
        if status.returncode != 0:
            self.start()


class Rig:
    """Two instances, a worker and a fake CRM on one database; the pieces a scenario kills and restarts."""

    def __init__(self, url: str, workdir: Path, crm: FakeCrm, *, lease: int = 5, timeout: float = 2):
        self.workdir = workdir
        self.env = base_env(url, workdir, HRDD_ADAPTERS_FILE=str(
            adapters_file(workdir, crm.url, lease=lease, timeout=timeout)))
        self.instances = [Instance("a", self.env, workdir), Instance("b", self.env, workdir)]
        self.worker: subprocess.Popen | None = None
        self.worker_starts = 0

    def start(self) -> None:
        for instance in self.instances:
            instance.start()
        for instance in self.instances:
            instance.wait_ready()
        self.start_worker()

    def start_worker(self) -> None:
        log = (self.workdir / "worker.log").open("ab")
        self.worker = subprocess.Popen([*HRDD, "worker", "--interval", "0.5"], env=self.env, cwd=ROOT, stdout=log,
                                       stderr=subprocess.STDOUT)
        self.worker_starts += 1

    def kill_worker(self) -> None:
        if self.worker and self.worker.poll() is None:
            self.worker.kill()
            self.worker.wait()

    def stop(self) -> None:
        self.kill_worker()
        for instance in self.instances:
            instance.stop()


def _check(schema, driver: LoadDriver, crm: FakeCrm, drain_timeout: float = 180) -> dict:
    summary = driver.summary()
    report = verify_store(schema, driver.records())
    drained = wait_for(lambda: schema.scalar("SELECT count(*) FROM outbox WHERE status <> 'delivered'") == 0,
                       drain_timeout)
    rows = schema.scalar("SELECT count(*) FROM outbox")
    problems = list(report["problems"])
    if summary["deliveries_without_2xx"]:
        problems.append(f"deliveries never answered 2xx: {summary['deliveries_without_2xx'][:10]}")
    if report["screenings_stored"] != summary["deliveries"]:
        problems.append(f"{summary['deliveries']} deliveries but {report['screenings_stored']} screenings stored")
    stuck = stuck_deliveries(schema)
    if stuck:
        problems.append(f"{stuck} adapter deliveries left half-processed")
    if drained is None:
        problems.append("the outbox did not drain")
    latencies = sorted(r["latency_s"] for r in driver.records() if 200 <= r["status"] < 300)
    return {**summary, "screenings_stored": report["screenings_stored"], "audit_entries": report["audit_entries"],
            "outbox_rows": rows, "outbox_drained_after_load_s": None if drained is None else round(drained, 1),
            "crm_received": len(crm.received), "crm_duplicates": len(crm.received) - rows,
            "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1) if latencies else None,
            "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 1) if latencies else None,
            "problems": problems}


def kill9(args, workdir: Path) -> dict:
    schema, crm = Schema(prefix="fkill"), FakeCrm()
    rig = Rig(schema.url, workdir, crm)
    events = []
    try:
        rig.start()
        driver = LoadDriver([i.url for i in rig.instances], create_key(rig.env, "crm"), f"k{uuid.uuid4().hex[:6]}",
                            rate=args.rate).start()
        t0 = time.monotonic()
        step = args.seconds / 4
        for n, what in enumerate(("a", "worker", "b"), start=1):
            time.sleep(max(0.0, t0 + n * step - time.monotonic()))
            if what == "worker":
                rig.kill_worker()
            else:
                next(i for i in rig.instances if i.name == what).kill()
            events.append({"t_s": round(time.monotonic() - t0, 1), "kill -9": what})
            time.sleep(3)
            if what == "worker":
                rig.start_worker()
                events.append({"t_s": round(time.monotonic() - t0, 1), "restarted": "worker"})
            else:
                instance = next(i for i in rig.instances if i.name == what)
                instance.start()
                ready = instance.wait_ready()
                events.append({"t_s": round(time.monotonic() - t0, 1), "restarted": what,
                               "ready_after_s": round(ready, 1)})
        time.sleep(max(0.0, args.seconds - (time.monotonic() - t0)))
        driver.stop()
        result = _check(schema, driver, crm)
        result["events"] = events
        return result
    finally:
        rig.stop()
        crm.close()
        schema.drop()


def pg_outage(args, workdir: Path) -> dict:
    crm = FakeCrm()
    if args.cluster == "main":
        server = MainCluster()
        schema = Schema(prefix="foutage")
        url = schema.url
    else:
        server = PrivatePostgres()
        server.start()
        url = server.url
        schema = PlainDatabase(url)
    rig = Rig(url, workdir, crm)
    samples: list[dict] = []
    try:
        rig.start()
        driver = LoadDriver([i.url for i in rig.instances], create_key(rig.env, "crm"), f"o{uuid.uuid4().hex[:6]}",
                            rate=args.rate).start()
        t0 = time.monotonic()
        halt = threading.Event()

        def sample():
            while not halt.is_set():
                samples.append({"t_s": round(time.monotonic() - t0, 1),
                                **{i.name: i.ready()[0] for i in rig.instances}})
                halt.wait(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        time.sleep(args.seconds / 3)
        try:
            stop_called = time.monotonic()
            server.stop()  # returns once the server is down (a fast shutdown first checkpoints)
            stopped_at = time.monotonic()
            time.sleep(args.outage)
        finally:
            start_called = time.monotonic()
            server.start()  # whatever happened: other users of the machine need it
        started_at = time.monotonic()
        recovered = wait_for(lambda: all(i.ready()[0] == 200 for i in rig.instances), 120)
        time.sleep(max(0.0, args.seconds - (time.monotonic() - t0)))
        driver.stop()
        halt.set()
        sampler.join()
        result = _check(schema, driver, crm)
        # Samples from shutdown completed to start requested (pg_ctlcluster start returns a little after the
        # server accepts connections again, so samples up to its return may already be 200).
        during = [s for s in samples if stopped_at - t0 + 0.5 <= s["t_s"] <= start_called - t0 - 0.5]
        result.update({
            "cluster": args.cluster, "shutdown_took_s": round(stopped_at - stop_called, 1),
            "down_s": round(start_called - stopped_at, 1), "start_took_s": round(started_at - start_called, 1),
            "readyz_samples_while_down": len(during),
            "readyz_while_down": sorted({s[i.name] for s in during for i in rig.instances}),
            "readiness_recovered_after_start_s": None if recovered is None else round(recovered, 2),
            "processes_alive_after": {i.name: i.proc.poll() is None for i in rig.instances}
            | {"worker": rig.worker.poll() is None},
            "restarts": {i.name: i.starts - 1 for i in rig.instances} | {"worker": rig.worker_starts - 1}})
        if any(code != 503 for code in result["readyz_while_down"]):
            result["problems"].append(f"/readyz during the outage answered {result['readyz_while_down']}")
        if not all(result["processes_alive_after"].values()):
            result["problems"].append("a process died during the outage")
        return result
    finally:
        if args.cluster == "main":
            server.ensure_running()
        rig.stop()
        crm.close()
        if args.cluster == "main":
            schema.drop()
        else:
            server.destroy()


def crm_timeout(args, workdir: Path) -> dict:
    schema, crm = Schema(prefix="fcrm"), FakeCrm(delay=3.0)
    rig = Rig(schema.url, workdir, crm, timeout=1.0)
    try:
        rig.start()
        driver = LoadDriver([i.url for i in rig.instances], create_key(rig.env, "crm"), f"c{uuid.uuid4().hex[:6]}",
                            rate=args.rate).start()
        time.sleep(args.seconds / 2)
        crm.delay = 0
        time.sleep(args.seconds / 2)
        driver.stop()
        result = _check(schema, driver, crm)
        attempts = dict(schema.rows("SELECT attempts, count(*) FROM outbox GROUP BY attempts ORDER BY attempts"))
        result["outbox_rows_by_attempts"] = {str(k): v for k, v in attempts.items()}
        result["timed_out_calls_received_by_crm"] = sum(1 for r in crm.received if r["slow"])
        return result
    finally:
        rig.stop()
        crm.close()
        schema.drop()


SCENARIOS = {"kill9": kill9, "pg-outage": pg_outage, "crm-timeout": crm_timeout}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), action="append")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=20, help="new deliveries per second")
    parser.add_argument("--cluster", choices=("private", "main"), default="private")
    parser.add_argument("--outage", type=float, default=10, help="seconds PostgreSQL stays down")
    args = parser.parse_args()
    out = ROOT / "bench" / "results" / "faults.json"
    recorded = json.loads(out.read_text()) if out.exists() else {}
    failed = False
    for name in args.scenario or list(SCENARIOS):
        workdir = Path(tempfile.mkdtemp(prefix=f"hrdd-{name}-"))
        result = SCENARIOS[name](args, workdir)
        result.update(seconds=args.seconds, rate=args.rate, at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      commit=git_commit())
        key = f"{name}-{args.cluster}" if name == "pg-outage" else name
        recorded[key] = result
        failed |= bool(result["problems"])
        print(f"{key}: {json.dumps(result, indent=2)}", flush=True)
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(recorded, indent=2))
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
