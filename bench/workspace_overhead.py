"""What the workspace's hooks add to a screening: POST /v1/screenings with and without them, one run.

The workspace hooks run on every screening: a case is opened in the same transaction (escalations),
reviewer decisions and grievances are looked up for the gate, and RF-7.1 is checked. This measures the
median request time of escalated and of clean screenings through Flask's test client on a fresh SQLite store, with
all built-in plugins, then with the workspace plugins unregistered, and prints the ratio.
Usage: python bench/workspace_overhead.py [--requests 300]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORKSPACE_PLUGINS = ("cases", "grievances")  # the ones with hrdd_check / screening_stored / gate_factors hooks


FIXTURES = {"escalated": "transaction_egypt_biometric.json", "clean": "transaction_norway_storage.json"}


def run(requests: int, without_workspace: bool, kind: str = "escalated") -> list[float]:
    from server import create_app
    body = json.loads((ROOT / "tests/fixtures" / FIXTURES[kind]).read_text())
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"HRDD_DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3", "TESTING": True})
        services = app.extensions["hrdd"]
        if without_workspace:
            for name in WORKSPACE_PLUGINS:
                services.pm.unregister(name=name)
        _, key = services.store.create_api_key("bench", "crm")
        client = app.test_client()
        headers = {"Authorization": f"Bearer {key}"}
        times = []
        for i in range(requests):
            payload = {**body, "reference": {**body["reference"], "object_id": f"B-{i}"}}
            start = time.perf_counter()
            response = client.post("/v1/screenings", json=payload, headers=headers)
            times.append((time.perf_counter() - start) * 1000)
            assert response.status_code == 201, response.get_data(as_text=True)
        services.store.engine.dispose()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    run(20, False)  # warm imports and caches
    for kind in FIXTURES:
        without = statistics.median(run(args.requests, True, kind))
        with_ws = statistics.median(run(args.requests, False, kind))
        note = " (each opens a case, audited)" if kind == "escalated" else ""
        print(f"median POST /v1/screenings, {kind} deal{note}, SQLite, test client, {args.requests} requests:")
        print(f"  without workspace hooks {without:.2f} ms, with {with_ws:.2f} ms, ratio {with_ws / without:.2f}x")


if __name__ == "__main__":
    main()
