"""Dashboard and transparency figures over a large store: time and peak memory of dashboard() and deals_in_year().

Fills a fresh store with N screenings (default 20,000) made by a seeded generator, the same rows for every
checkout measured: deals of about two screenings each, spread evenly over the last 365 days (so a little
falls before the dashboard's 12 months) and inserted in time order, end-users in 120 countries and items naming the 15 capabilities of
the taxonomy, both skewed the way sales are (a few countries and capabilities make most of them; a deal sells
one to four product families, so its items name one to four capabilities between them). A deal has
a log-normal number of items (median 20, about 4 KB of request; 1 in 100 over 300 items, 60 KB; up to 2,000
items, 350 KB), and its result is a stored screening of the same decision (tests/fixtures/screening_*.json)
echoing the request, as hrdd's results do. Rows are inserted directly (hrdd.tables.screenings), with
``capabilities`` filled as hrdd.store.save_screening fills it when the checkout's table has that column.

Each figure is measured in a fresh process that imports hrdd from the checkout measured: the call's time
(the first call, then the median of the next ``--runs - 1``), the growth of the process's peak resident size
over the calls (ru_maxrss, so what the database driver holds counts too), and, in another process, the peak
of Python allocations during one call (tracemalloc). With ``--baseline DIR`` the same rows are also stored
for the hrdd checkout in DIR and the two are measured alternately, in the same minutes, and their figures
compared (ties at a top-12 cut-off aside, they must be equal).
Usage: python bench/dashboard.py [--screenings 20000] [--runs 3] [--rounds 3] [--baseline DIR]
                                 [--database-url postgresql+psycopg://...] [--out FILE]
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
PY = sys.executable
DECISIONS = {"proceed": ("release", "screening_proceed_de.json", 0.50),
             "proceed_with_safeguards": ("release_with_conditions", "screening_safeguards_co.json", 0.25),
             "escalate": ("hold", "screening_escalated_eg.json", 0.20),
             "do_not_proceed": ("block", "screening_blocked_ae.json", 0.05)}
BATCH = 500


# ---- the rows (identical for every checkout: the same seed, anchor and generator) ----

def _countries() -> list[str]:
    import pycountry
    return sorted(c.alpha_2 for c in pycountry.countries)


def _capabilities() -> list[str]:
    import yaml
    return list(yaml.safe_load((ROOT / "data" / "capabilities.yaml").read_text(encoding="utf-8"))["capabilities"])


def generate(count: int, anchor: datetime, seed: int = 2026):
    """Yield (transaction row, screening row) pairs; a transaction row only the first time it appears."""
    rng = random.Random(seed)
    countries, capabilities = _countries(), _capabilities()
    rng.shuffle(countries)
    rng.shuffle(capabilities)
    countries = countries[:120]
    country_weights = [1 / (rank + 1) for rank in range(len(countries))]
    capability_weights = [1 / (rank + 1) ** 0.8 for rank in range(len(capabilities))]
    names = list(DECISIONS)
    results = {d: json.loads((FIXTURES / DECISIONS[d][1]).read_text(encoding="utf-8")) for d in names}
    deals = max(1, count // 2)
    seen: set[int] = set()
    # Stored in time order, as a live store's rows are (it decides how scattered a date range's rows are).
    times = sorted(anchor - timedelta(seconds=rng.uniform(0, 365 * 86400)) for _ in range(count))
    for n, created in enumerate(times):
        deal = rng.randrange(deals)
        country = rng.choices(countries, country_weights)[0]
        # A deal sells from one to four product families, each item carrying one or two of their capabilities.
        families = list(dict.fromkeys(rng.choices(capabilities, capability_weights,
                                                  k=1 + (rng.random() < 0.4) + (rng.random() < 0.15)
                                                  + (rng.random() < 0.05))))
        items = []
        for i in range(min(2000, max(1, int(rng.lognormvariate(3.0, 1.3))))):
            caps = rng.sample(families, min(len(families), 1 + (rng.random() < 0.3)))
            items.append({"sku": f"SKU-{rng.randrange(10**6):06d}-{i}", "name": f"Product line {i} model {n % 97}",
                          "capabilities": list(dict.fromkeys(caps)), "eccn": "5A002", "quantity": 1 + i % 9,
                          "unit_price": 1000 + 37 * i, "currency": "USD"})
        request = {"reference": {"system": "bench", "object_type": "deal", "object_id": f"D-{deal}"},
                   "stage": rng.choice(("opportunity", "quote", "order")),
                   "end_user": {"name": f"End user {deal}", "country": country, "type": "government",
                                "sector": "law_enforcement"},
                   "parties": [{"role": "distributor", "name": f"Distributor {deal % 50}", "country": country,
                                "government_linked": False}],
                   "items": items, "deployment_countries": [country],
                   "intended_use": "Operations of the end-user's security department", "answers": {}}
        decision = rng.choices(names, [DECISIONS[d][2] for d in names])[0]
        txn = f"txn_{deal:010d}"
        sid = f"scr_{n:010d}"
        result = {**copy.copy(results[decision]), "id": sid, "transaction_id": txn, "stage": request["stage"],
                  "created_at": created.isoformat(), "decision": decision, "gate": DECISIONS[decision][0],
                  "transaction": request}
        transaction = None
        if deal not in seen:
            seen.add(deal)
            transaction = {"id": txn, "system": "bench", "object_type": "deal", "object_id": f"D-{deal}",
                           "created_at": created, "updated_at": created}
        yield transaction, {
            "id": sid, "transaction_id": txn, "created_at": created, "stage": request["stage"],
            "decision": decision, "gate": DECISIONS[decision][0], "risk_score": rng.randrange(100),
            "end_user_country": country, "request": request, "result": result, "idempotency_key": None,
            "request_hash": hashlib.sha256(sid.encode()).hexdigest(), "source": "bench"}


# ---- in the child process: hrdd imported from the checkout measured ----

def fill(url: str, count: int, anchor: datetime) -> dict:
    """Create the schema and insert the generated rows; returns counts and bytes."""
    from hrdd import store as store_module
    from hrdd.tables import screenings, transactions
    store = store_module.Store(url)
    store.upgrade()
    with_column = "capabilities" in screenings.c
    started = time.perf_counter()
    sizes, sets = [], set()
    txns, rows = [], []

    def flush():
        with store.engine.begin() as conn:
            if txns:
                conn.execute(transactions.insert(), txns)
            conn.execute(screenings.insert(), rows)
        txns.clear()
        rows.clear()

    for transaction, row in generate(count, anchor):
        if transaction is not None:
            txns.append(transaction)
        if with_column:
            row["capabilities"] = store_module.request_capabilities(row["request"])
        sizes.append(len(json.dumps(row["request"], separators=(",", ":"))))
        sets.add(frozenset(c for item in row["request"]["items"] for c in item["capabilities"]))
        rows.append(row)
        if len(rows) >= BATCH:
            flush()
    if rows:
        flush()
    store.engine.dispose()
    sizes.sort()
    return {"screenings": count, "capabilities_column": with_column, "capability_sets": len(sets), "seconds": round(time.perf_counter() - started, 1),
            "request_bytes": {"median": sizes[len(sizes) // 2], "p99": sizes[int(len(sizes) * 0.99)],
                              "max": sizes[-1], "total": sum(sizes)}}


def _years(anchor: datetime) -> list[int]:
    return sorted({anchor.year, (anchor - timedelta(days=365)).year})


def _call(what: str, conn, anchor: datetime):
    from hrdd.workspace import stats
    if what == "dashboard":
        return stats.dashboard(conn)
    return {year: stats.deals_in_year(conn, year) for year in _years(anchor)}


def _digest(what: str, out) -> str:
    """The figures, with ties at a top-12 cut-off in one order, as a short hash."""
    if what == "dashboard":
        key = {k: out[k] for k in ("periods", "by_month", "total")}
        key["by_country"] = sorted(out["by_country"], key=lambda kv: (-kv[1], kv[0]))
        key["by_capability"] = sorted(out["by_capability"], key=lambda kv: (-kv[1], kv[0]))
    else:
        key = {str(y): sorted((d["country"], sorted(d["capabilities"]), d["decision"]) for d in deals)
               for y, deals in out.items()}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def measure(url: str, what: str, runs: int, anchor: datetime, trace: bool) -> dict:
    """Time ``runs`` calls of one figure (or trace one call's allocations) on a new connection."""
    from hrdd.store import Store
    store = Store(url)
    with store.engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
        if trace:
            tracemalloc.start()
            _call(what, conn, anchor)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            return {"tracemalloc_peak_mb": round(peak / 2**20, 1)}
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        times, out = [], None
        for _ in range(runs):
            started = time.perf_counter()
            out = _call(what, conn, anchor)
            times.append(time.perf_counter() - started)
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    store.engine.dispose()
    return {"first_s": round(times[0], 4), "again_s": round(statistics.median(times[1:] or times), 4),
            "rss_growth_mb": round(grown / 1024, 1), "digest": _digest(what, out)}


# ---- the parent: one store per checkout, measured alternately ----

def _child(code: Path, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code)}
    out = subprocess.run([PY, str(Path(__file__).resolve()), "--child", *args], capture_output=True, text=True,
                         env=env, cwd=code)
    if out.returncode != 0:
        raise SystemExit(f"child {args[:2]} for {code} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _stores(args, labels: list[str], tmp: Path):
    """One fresh database URL per checkout, and a function that drops them (PostgreSQL schemas)."""
    if not args.database_url:
        return {label: f"sqlite:///{tmp / label}.sqlite3" for label in labels}, lambda: None
    import sqlalchemy as sa
    admin = sa.create_engine(args.database_url)
    schemas = {label: f"bench_{label}_{uuid.uuid4().hex[:8]}" for label in labels}
    with admin.begin() as conn:
        for schema in schemas.values():
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    sep = "&" if "?" in args.database_url else "?"

    def drop():
        with admin.begin() as conn:
            for schema in schemas.values():
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    return {label: f"{args.database_url}{sep}options=-csearch_path%3D{schema}" for label, schema in schemas.items()}, drop


def main() -> None:
    """Fill a store per checkout, measure each figure alternately, print and (--out) save the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screenings", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3, help="calls per process (the first is reported apart)")
    parser.add_argument("--rounds", type=int, default=3, help="processes per figure and checkout")
    parser.add_argument("--baseline", type=Path, help="another hrdd checkout to measure on the same rows")
    parser.add_argument("--database-url", help="a PostgreSQL database (a schema per checkout); default SQLite")
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        role, url, anchor = args.child[0], args.child[1], datetime.fromisoformat(args.child[2])
        if role == "fill":
            print(json.dumps(fill(url, int(args.child[3]), anchor)))
        else:
            print(json.dumps(measure(url, args.child[3], int(args.child[4]), anchor, role == "trace")))
        return
    codes = {"this": ROOT}
    if args.baseline:
        codes = {"baseline": args.baseline.resolve(), "this": ROOT}
    anchor = datetime.now(UTC).isoformat()
    report: dict = {"screenings": args.screenings, "backend": "postgresql" if args.database_url else "sqlite",
                    "started": anchor, "load_before": os.getloadavg(), "fill": {}, "runs": {}}
    with tempfile.TemporaryDirectory() as tmp:
        urls, drop = _stores(args, list(codes), Path(tmp))
        try:
            for label, code in codes.items():
                report["fill"][label] = _child(code, "fill", urls[label], anchor, str(args.screenings))
                print(f"filled {label} ({code}): {report['fill'][label]}", flush=True)
            for what in ("dashboard", "deals_in_year"):
                for label in codes:
                    report["runs"].setdefault(what, {})[label] = []
                for _ in range(args.rounds):
                    for label, code in codes.items():
                        result = _child(code, "measure", urls[label], anchor, what, str(args.runs))
                        report["runs"][what][label].append(result)
                        print(f"{what:14} {label:8} {result}", flush=True)
                for label, code in codes.items():
                    traced = _child(code, "trace", urls[label], anchor, what, "1")
                    report["runs"][what][label].append(traced)
                    print(f"{what:14} {label:8} {traced}", flush=True)
        finally:
            drop()
    report["load_after"] = os.getloadavg()
    print(f"\n{args.screenings} screenings, {report['backend']}; load average {report['load_before'][0]:.2f} "
          f"before, {report['load_after'][0]:.2f} after")
    for what, by_code in report["runs"].items():
        summary = {}
        for label, results in by_code.items():
            timed = [r for r in results if "first_s" in r]
            summary[label] = {"first_s": statistics.median(r["first_s"] for r in timed),
                              "again_s": statistics.median(r["again_s"] for r in timed),
                              "rss_growth_mb": max(r["rss_growth_mb"] for r in timed),
                              "tracemalloc_peak_mb": next(r["tracemalloc_peak_mb"] for r in results
                                                          if "tracemalloc_peak_mb" in r),
                              "digests": sorted({r["digest"] for r in timed})}
            line = summary[label]
            print(f"{what:14} {label:8} first call {line['first_s'] * 1000:9.1f} ms, again "
                  f"{line['again_s'] * 1000:9.1f} ms, peak RSS growth {line['rss_growth_mb']:7.1f} MB, "
                  f"Python peak {line['tracemalloc_peak_mb']:7.1f} MB")
        if "baseline" in summary:
            base, this = summary["baseline"], summary["this"]
            print(f"{what:14} ratio this/baseline: first {this['first_s'] / base['first_s']:.3f}, "
                  f"again {this['again_s'] / base['again_s']:.3f}; same figures: {base['digests'] == this['digests']}")
        report.setdefault("summary", {})[what] = summary
    if args.out:
        args.out.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
