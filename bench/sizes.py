"""Reply size, stored size and time for large or repetitive deals: does anything grow past the request?

Each case builds a body from docs/design.md's Egypt example, posts it to a fresh SQLite store through the
Flask test client (dry run and stored, three times each) and prints the request's size, the reply's size,
the number of red flags, the median seconds and the database's size afterwards. Run it from another
checkout's directory (with that checkout first on PYTHONPATH) to compare two versions side by side.
Usage: python bench/sizes.py
"""

from __future__ import annotations

import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path.cwd()
sys.path.insert(0, str(ROOT))

HIGH_RISK = ["EG", "CN", "SA", "VN", "TH", "AZ", "KZ", "TJ", "TM", "UZ", "BH", "QA", "AE", "OM", "JO", "IQ",
             "LY", "DZ", "ET", "RW", "UG", "BI", "CM", "TD", "SD", "SS", "ER", "DJ", "SO", "YE", "AF", "PK",
             "BD", "MM", "LA", "KH", "BN", "TR", "TN", "MA", "MR", "ML", "NE", "BF", "GN", "GA", "CG", "CD",
             "CF", "GQ", "ZW", "MZ", "AO", "NI", "HN", "GT", "HT", "RU", "BY"]


def cases(base: dict, capabilities: list[str]) -> dict[str, dict]:
    """The bodies measured, by name."""
    out = {}
    body = copy.deepcopy(base)
    body["items"] = [{"sku": f"SKU-{n}", "name": f"Item {n}", "capabilities": capabilities} for n in range(200)]
    out["200 items x 15 capabilities"] = body
    body = copy.deepcopy(out["200 items x 15 capabilities"])
    body["deployment_countries"] = HIGH_RISK
    body["parties"] = [{"role": "distributor", "name": f"Party {n} Trading", "country": "AE"} for n in range(50)]
    for n, item in enumerate(body["items"]):
        item["name"] = "N" * 280 + str(n)
    out["same, 59 high-risk deployment countries, 50 parties, long names"] = body
    body = copy.deepcopy(base)
    body["parties"] = [{"role": "distributor", "name": "Huawei", "country": "CN"}] * 50
    out["one listed party 50 times"] = body
    body = copy.deepcopy(base)
    body["items"] = [{}] * 100_000
    out["100,000 empty items"] = body
    return out


def main() -> None:
    """Print one line per case and mode."""
    from server import create_app
    directory = tempfile.mkdtemp()
    app = create_app({"HRDD_DATABASE_URL": f"sqlite:///{directory}/sizes.sqlite3", "TESTING": True,
                      "HRDD_VAR_DIR": directory})
    _, key = app.extensions["hrdd"].store.create_api_key("bench", "crm")
    headers = {"Authorization": f"Bearer {key}"}
    client = app.test_client()
    base = json.loads((ROOT / "tests" / "fixtures" / "transaction_egypt_biometric.json").read_text())
    capabilities = [c for c in app.extensions["hrdd"].reference.capabilities if c != "none"]
    for name, body in cases(base, capabilities).items():
        for mode, url in (("dry run", "/v1/screenings?dry_run=true"), ("stored", "/v1/screenings")):
            times = []
            for n in range(3):
                body["reference"]["object_id"] = f"{name[:20]}-{mode}-{n}"
                start = time.perf_counter()
                reply = client.post(url, json=body, headers=headers)
                times.append(time.perf_counter() - start)
            flags = len(reply.json.get("red_flags", [])) if reply.is_json else 0
            size = sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))
            print(f"{name} | {mode} | status {reply.status_code} | request {len(json.dumps(body)):,} B | "
                  f"reply {len(reply.data):,} B | flags {flags} | median {statistics.median(times):.3f} s | "
                  f"database {size:,} B")


if __name__ == "__main__":
    main()
