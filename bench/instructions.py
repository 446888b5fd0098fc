"""CPU instructions per request (valgrind callgrind), in process: a figure that machine load does not move.

Wall-clock throughput on a shared 2-vCPU machine moves by 20-30% from run to run; instruction counts
repeat to within about 2%. Each case runs the Flask test client for N and for 6N requests under
callgrind and divides the difference by 5N, so start-up (app creation, data loading) cancels out.
Cases: the stored screening, the same with ?dry_run=true (nothing stored, no gate), and the bare echo
app of bench/echo_app.py with the same body. Prints millions of instructions per request and the ratios.
With --idempotency-keys every hrdd request carries a new Idempotency-Key (as CRM adapters send), so
the key's look-up and the insert that enforces it are counted too.
Usage: python bench/instructions.py [--requests 40] [--fixture NAME] [--idempotency-keys]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

_RUNNER = """
import os, sys, tempfile
sys.path.insert(0, {root!r})
body = open({fixture!r}, encoding="utf-8").read()
if {case!r} == "echo":
    sys.path.insert(0, {bench!r})
    from echo_app import app
    client, url, headers = app.test_client(), "/echo", {{"Content-Type": "application/json"}}
else:
    os.environ["HRDD_DATABASE_URL"] = "sqlite:///" + os.path.join(tempfile.mkdtemp(), "i.sqlite3")
    from server import create_app
    app = create_app()
    with app.app_context():
        _, key = app.extensions["hrdd"].store.create_api_key("bench", "crm")
    client = app.test_client()
    url = "/v1/screenings" + ("?dry_run=true" if {case!r} == "dry_run" else "")
    headers = {{"Authorization": "Bearer " + key, "Content-Type": "application/json"}}
for n in range(int(sys.argv[1])):
    if {keys!r} and {case!r} != "echo":
        headers["Idempotency-Key"] = "bench-%d" % n
    response = client.post(url, data=body, headers=headers)
    assert response.status_code in (200, 201), response.data[:300]
"""


def collected(case: str, requests: int, fixture: Path, keys: bool = False, measure: bool = True) -> int:
    """Instructions callgrind counted for a whole run of ``requests`` requests of ``case`` (0 if not ``measure``)."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "run.py"
        script.write_text(_RUNNER.format(root=str(ROOT), bench=str(ROOT / "bench"), fixture=str(fixture),
                                         case=case, keys=keys))
        if not measure:
            subprocess.run([PY, str(script), str(requests)], capture_output=True, check=True, cwd=ROOT)
            return 0
        out = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/cg.out", PY,
                              str(script), str(requests)], capture_output=True, text=True, cwd=ROOT)
        found = re.search(r"Collected : (\d+)", out.stderr)
        if out.returncode != 0 or not found:
            raise SystemExit(f"{case}: callgrind run failed:\n{out.stderr[-2000:]}")
        return int(found.group(1))


def per_request(case: str, requests: int, fixture: Path, keys: bool = False) -> float:
    """Millions of instructions per request: (run of 6N - run of N) / 5N."""
    # The two runs go side by side: in a fresh checkout one of them would compile every module to
    # __pycache__ and the other not, which moved the difference by 10-15%; one plain run first writes them.
    collected(case, 1, fixture, keys, measure=False)
    with ThreadPoolExecutor(2) as pool:
        small, large = pool.map(lambda n: collected(case, n, fixture, keys), (requests, 6 * requests))
    return (large - small) / (5 * requests) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=40)
    parser.add_argument("--fixture", default="transaction_egypt_biometric.json")
    parser.add_argument("--idempotency-keys", action="store_true", help="a new Idempotency-Key on every hrdd request")
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is needed: apt-get install valgrind")
    fixture = ROOT / "tests" / "fixtures" / args.fixture
    results = {case: round(per_request(case, args.requests, fixture, args.idempotency_keys), 3)
               for case in ("screening", "dry_run", "echo")}
    for case, value in results.items():
        print(f"{case:>9}: {value:6.3f} M instructions/request  ({results['echo'] / value:.2f} of the echo's rate)")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    record = {"fixture": args.fixture, "requests": args.requests, "idempotency_keys": args.idempotency_keys,
              "million_instructions_per_request": results,
              "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                       cwd=ROOT).stdout.strip(), "python": sys.version.split()[0],
              "load_average": os.getloadavg()[0]}
    suffix = "-keys" if args.idempotency_keys else ""
    (out / f"instructions-{Path(args.fixture).stem}{suffix}.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
