"""Where one stored screening's time goes, in process: each phase and each plugin hook, beside the bare echo.

Calls the WSGI apps directly (no HTTP server, no test client) on one thread with a fresh SQLite file, after
a warm-up, and times each phase by wrapping the functions that carry it: body parsing, validation, the
engine (with its flag collection and tailoring re-run), building the response dict, storing (the deal's
row, the screening row, the plugins' stored hooks, the commit), the gate, and the JSON response. The same
body is then sent to bench/echo_app.py's app the same way, as the baseline. Phases nest (the engine's
parts are inside "engine"), so the column does not add up; "outside the screening service" is what the
request costs beyond Services.screen_and_store (routing, authentication, metrics, response).
Usage: python bench/phases.py [--requests 3000] [--fixture NAME]
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

SCREENING_HOOKS = ("hrdd_check", "hrdd_safeguards", "hrdd_versions", "hrdd_screening_stored", "hrdd_gate_factors")


class Timings:
    """Seconds spent in each wrapped callable, by label."""

    def __init__(self):
        self.seconds: dict[str, float] = {}

    def timed(self, function, label: str):
        """``function`` wrapped so that its time adds to ``label``."""
        @functools.wraps(function)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[label] = self.seconds.get(label, 0.0) + time.perf_counter() - start

        return timed

    def wrap(self, owner, name: str, label: str) -> None:
        """Replace ``owner.name`` with a timed wrapper that adds to ``label``."""
        setattr(owner, name, self.timed(getattr(owner, name), label))

    def wrap_hookimpls(self, pm) -> None:
        """Time every implementation of the hooks a screening request calls, by hook and plugin."""
        for hook_name in SCREENING_HOOKS:
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                impl.function = self.timed(impl.function, f"{hook_name}: {impl.plugin_name}")


def _post_environ(path: str, body: str, headers: dict):
    from werkzeug.test import EnvironBuilder

    return EnvironBuilder(path=path, method="POST", data=body, headers=headers).get_environ()


def _start_response(statuses: list, status: str, headers: list, exc_info=None) -> None:
    statuses.append(status)


def run(app, path: str, body: str, headers: dict, requests: int) -> float:
    """Call ``app`` ``requests`` times with a fresh environ each; seconds per request (app time only)."""
    total = 0.0
    for _ in range(requests):
        environ = _post_environ(path, body, headers)
        statuses: list[str] = []
        start = time.perf_counter()
        chunks = app(environ, functools.partial(_start_response, statuses))
        b"".join(chunks)
        if hasattr(chunks, "close"):
            chunks.close()
        total += time.perf_counter() - start
        if not statuses[0].startswith(("200", "201")):
            raise SystemExit(f"{path}: {statuses[0]}")
    return total / requests


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--fixture", default="transaction_egypt_biometric.json")
    args = parser.parse_args()
    body = (ROOT / "tests" / "fixtures" / args.fixture).read_text()
    os.environ["HRDD_DATABASE_URL"] = "sqlite:///" + os.path.join(tempfile.mkdtemp(prefix="hrdd-phases-"), "p.sqlite3")

    from echo_app import app as echo_app

    import hrdd.api.screenings as screenings_api
    from hrdd import engine, model, safejson, services, store
    from server import create_app

    timings = Timings()
    for owner, name, label in (
        (safejson, "loads", "parse the JSON body"),
        (services.Services, "screen_and_store", "screening service (all below)"),
        (services.Services, "validate", "  validate (marshmallow)"),
        (engine.Engine, "screen", "  engine (all checks, decision, tailoring, safeguards)"),
        (engine.Engine, "collect_flags", "    collect flags (deal + tailoring re-runs)"),
        (engine.Engine, "tailoring", "    tailoring (re-runs)"),
        (store.Store, "save_screening", "  store (deal row, screening row, stored hooks, commit)"),
        (store.Store, "_transaction_id", "    the deal's row (upsert)"),
        (model.Screening, "to_dict", "    response dict"),
        (services.Services, "with_gate", "  gate (gate-factor hooks)"),
        (screenings_api, "jsonify", "JSON response"),
    ):
        timings.wrap(owner, name, label)
    app = create_app()
    with app.app_context():
        _, key = app.extensions["hrdd"].store.create_api_key("bench", "crm")
    timings.wrap_hookimpls(app.extensions["hrdd"].pm)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}

    run(app, "/v1/screenings", body, headers, 200)
    run(echo_app, "/echo", body, {"Content-Type": "application/json"}, 200)
    timings.seconds.clear()
    gc.collect()
    gc.freeze()  # as hrdd serve does before serving
    per_request = run(app, "/v1/screenings", body, headers, args.requests)
    phases = {label: seconds / args.requests for label, seconds in timings.seconds.items()}
    echo = run(echo_app, "/echo", body, {"Content-Type": "application/json"}, args.requests)

    service = phases.get("screening service (all below)", 0.0)
    print(f"fixture: {args.fixture}; {args.requests} requests, one thread, SQLite, app time only (no HTTP server)")
    print(f"{'stored screening, whole request':58s} {per_request * 1e3:7.3f} ms  100.0%")
    print(f"{'bare echo, whole request (baseline)':58s} {echo * 1e3:7.3f} ms  {echo / per_request * 100:5.1f}%")
    print(f"{'outside the screening service':58s} {(per_request - service) * 1e3:7.3f} ms  "
          f"{(per_request - service) / per_request * 100:5.1f}%")
    for label, seconds in phases.items():
        if ":" not in label:
            print(f"{label:58s} {seconds * 1e3:7.3f} ms  {seconds / per_request * 100:5.1f}%")
    print("plugin hooks (inside the phases above):")
    for label, seconds in sorted(phases.items(), key=lambda kv: -kv[1]):
        if ":" in label:
            print(f"  {label:56s} {seconds * 1e3:7.3f} ms  {seconds / per_request * 100:5.1f}%")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    record = {"fixture": args.fixture, "requests": args.requests, "ms_per_request": round(per_request * 1e3, 4),
              "echo_ms_per_request": round(echo * 1e3, 4),
              "phases_ms": {label: round(seconds * 1e3, 4) for label, seconds in phases.items()}}
    (out / f"phases-{Path(args.fixture).stem}.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
