"""How fast time-sensitive senders get their answer (HubSpot, Odoo), against the core's own screening call.

Runs in-process with Flask's test client on a SQLite store in a temporary directory; prints the median of
N runs for each case and its ratio to the baseline (POST /v1/screenings of the same deal).
Usage: python bench/adapters_latency.py [N]
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from server import create_app  # noqa: E402

SECRET = "bench-secret"
TOKEN = "bench-token"


def main(n: int = 30) -> None:
    tmp = tempfile.mkdtemp()
    app = create_app({"HRDD_DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3", "HRDD_VAR_DIR": tmp,
                      "HRDD_ADAPTERS": {"adapters": {"hubspot": {"client_secret": SECRET},
                                                     "odoo": {"token": TOKEN}}}})
    client = app.test_client()
    _, key = app.extensions["hrdd"].store.create_api_key("bench", "crm")
    base = json.loads((ROOT / "tests/fixtures/generic/transaction.json").read_text())
    odoo = json.loads((ROOT / "tests/fixtures/odoo/sale_order.json").read_text())
    events = json.loads((ROOT / "tests/fixtures/hubspot/deal_batch.json").read_text())[0]

    def timed(fn) -> list[float]:
        out = []
        for i in range(n):
            start = time.perf_counter()
            status = fn(i)
            out.append((time.perf_counter() - start) * 1000)
            assert status in (200, 201, 202), status
        return out

    def baseline(i):
        body = copy.deepcopy(base)
        body["reference"]["object_id"] = f"bench-{i}"
        return client.post("/v1/screenings", json=body, headers={"Authorization": f"Bearer {key}"}).status_code

    def odoo_call(i):
        return client.post(f"/v1/hooks/odoo/{TOKEN}", data=json.dumps({**odoo, "_id": 1000 + i}),
                           headers={"Content-Type": "application/json"}).status_code

    def hubspot_batch(i):
        batch = [{**events, "eventId": i * 1000 + j, "objectId": 5000 + j} for j in range(100)]
        raw = json.dumps(batch).encode()
        stamp = str(int(time.time() * 1000))
        message = b"POST" + b"http://localhost/v1/hooks/hubspot" + raw + stamp.encode()
        sig = base64.b64encode(hmac.new(SECRET.encode(), message, hashlib.sha256).digest()).decode()
        return client.post("/v1/hooks/hubspot", data=raw, headers={
            "Content-Type": "application/json", "X-HubSpot-Request-Timestamp": stamp,
            "X-HubSpot-Signature-v3": sig}).status_code

    results = {"baseline POST /v1/screenings": timed(baseline),
               "Odoo webhook (screened inline)": timed(odoo_call),
               "HubSpot batch of 100 events (recorded)": timed(hubspot_batch)}
    reference = statistics.median(results["baseline POST /v1/screenings"])
    print(f"{'case':42} {'median ms':>10} {'max ms':>8} {'ratio':>6}")
    for name, values in results.items():
        med = statistics.median(values)
        print(f"{name:42} {med:10.1f} {max(values):8.1f} {med / reference:6.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 30)
