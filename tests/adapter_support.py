"""Test support for the adapter tests: a local fake vendor API server and request signing helpers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    """A sample payload's exact bytes."""
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str):
    """A sample payload parsed."""
    return json.loads(fixture_bytes(name))


class FakeServer:
    """An HTTP server on 127.0.0.1 that answers from ``routes`` and records every request.

    ``routes`` maps (method, path-without-query) to (status, body) or to a callable(request dict) that
    returns one; ``fail_first`` makes the first N requests answer 503 (a vendor outage).
    """

    def __init__(self, routes: dict | None = None, fail_first: int = 0):
        self.routes = routes or {}
        self.fail_first = fail_first
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = self.path.split("?", 1)[0]
                record = {"method": self.command, "path": path, "url": self.path,
                          "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body}
                server.requests.append(record)
                if server.fail_first > 0:
                    server.fail_first -= 1
                    status, answer = 503, {"error": "service unavailable"}
                else:
                    route = server.routes.get((self.command, path))
                    if route is None:
                        status, answer = 404, {"error": f"no route {self.command} {path}"}
                    else:
                        status, answer = route(record) if callable(route) else route
                payload = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if self.command == "GET" and "x-csrf-token" in record["headers"]:
                    self.send_header("x-csrf-token", "csrf-123")
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PATCH = do_PUT = _serve

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def count_screenings(app) -> int:
    """How many screenings the store holds."""
    return app.extensions["hrdd"].store.count_screenings()


def deliveries(app, vendor: str) -> list[dict]:
    """The recorded deliveries of a vendor."""
    import sqlalchemy as sa

    from hrdd.adapters.tables import adapter_deliveries

    with app.extensions["hrdd"].store.engine.connect() as conn:
        rows = conn.execute(sa.select(adapter_deliveries).where(adapter_deliveries.c.vendor == vendor)
                            .order_by(adapter_deliveries.c.created_at)).fetchall()
    return [dict(r._mapping) for r in rows]


def outbox_rows(app, status: str | None = None) -> list[dict]:
    """The outbox rows (optionally one status)."""
    from hrdd.adapters import outbox

    return outbox.rows(app.extensions["hrdd"].store, status)
