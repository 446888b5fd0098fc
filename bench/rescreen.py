"""Re-screening throughput: `hrdd rescreen` over N stored post-sale deals vs the engine alone on the same deals.

Usage: python bench/rescreen.py [--deals 300] [--database-url URL]   (default: a fresh SQLite file)
Writes bench/results/rescreen-<backend>.json. Besides deals per second (wall clock), it gives this process's
CPU milliseconds per deal in each phase, which the load of other jobs on the machine moves less.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from hrdd import rescreen  # noqa: E402
from hrdd.model import Transaction  # noqa: E402
from server import create_app  # noqa: E402

FIXTURES = ("transaction_egypt_biometric.json", "transaction_norway_storage.json")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deals", type=int, default=300)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    url, schema = args.database_url, None
    if url and url.startswith("postgresql"):
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with sa.create_engine(url).begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
        url = f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
    url = url or f"sqlite:///{tempfile.mkdtemp(prefix='hrdd-rescreen-')}/bench.sqlite3"
    app = create_app({"HRDD_DATABASE_URL": url})
    services = app.extensions["hrdd"]
    bodies = []
    for n in range(args.deals):
        body = json.loads((ROOT / "tests" / "fixtures" / FIXTURES[n % 2]).read_text())
        body = copy.deepcopy(body)
        body["stage"] = "post_sale"
        body["reference"]["object_id"] = f"bench-{n}"
        bodies.append(body)
    try:
        with app.app_context():
            for body in bodies:
                services.screen_and_store(body)
            transactions = [Transaction.from_dict(services.validate(b)) for b in bodies]
            start, cpu = time.perf_counter(), time.process_time()
            for tx in transactions:
                services.screen(tx)
            engine_s, engine_cpu = time.perf_counter() - start, time.process_time() - cpu
            start, cpu = time.perf_counter(), time.process_time()
            checked = rescreen.rescreen(services, stages=["post_sale"])
            examine_s, examine_cpu = time.perf_counter() - start, time.process_time() - cpu
            start, cpu = time.perf_counter(), time.process_time()
            stored = rescreen.rescreen(services, stages=["post_sale"], store_unchanged=True)
            store_s, store_cpu = time.perf_counter() - start, time.process_time() - cpu
    finally:
        services.store.engine.dispose()
        if schema:
            with sa.create_engine(args.database_url).begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    backend = "postgresql" if schema else "sqlite"
    record = {
        "backend": backend, "deals": args.deals,
        "engine_alone_per_s": round(args.deals / engine_s, 1),
        "rescreen_examine_per_s": round(checked.examined / examine_s, 1), "examined": checked.examined,
        "rescreen_store_all_per_s": round(stored.stored / store_s, 1), "stored": stored.stored,
    }
    record["ratio_examine_to_engine"] = round(record["rescreen_examine_per_s"] / record["engine_alone_per_s"], 3)
    record["ratio_store_to_engine"] = round(record["rescreen_store_all_per_s"] / record["engine_alone_per_s"], 3)
    record["cpu_ms_per_deal"] = {"engine_alone": round(1000 * engine_cpu / args.deals, 3),
                                 "examine": round(1000 * examine_cpu / max(checked.examined, 1), 3),
                                 "store_all": round(1000 * store_cpu / max(stored.stored, 1), 3)}
    record["load_average"] = os.getloadavg()[0]
    print(json.dumps(record, indent=2))
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / f"rescreen-{backend}.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
