"""Prometheus metrics: request counts and latencies per endpoint, decisions by kind."""

from __future__ import annotations

import os
import time

from flask import Flask, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess

# Any token is a method to the HTTP server; others are counted as "other" so a client cannot add a time series
# per name it makes up.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class Metrics:
    """One registry per app, so several apps (tests, workers) never collide."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("hrdd_http_requests_total", "HTTP requests", ["method", "endpoint", "status"],
                                registry=self.registry)
        self.latency = Histogram("hrdd_http_request_duration_seconds", "HTTP request latency", ["endpoint"],
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
                                 registry=self.registry)
        self.decisions = Counter("hrdd_decisions_total", "Screenings stored, by decision", ["decision"],
                                 registry=self.registry)
        # Several worker processes (`hrdd serve --workers N`) each write their values to files in this
        # directory; /metrics then sums the files of all of them, whichever worker answers the scrape.
        # (Counters and histograms sum as they are; a Gauge added here would need a multiprocess_mode.)
        multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if multiproc_dir:
            self.exposition = CollectorRegistry()
            multiprocess.MultiProcessCollector(self.exposition, path=multiproc_dir)
        else:
            self.exposition = self.registry

    def render(self) -> bytes:
        """The Prometheus text exposition: this process's metrics, or every worker's in multi-process mode."""
        return generate_latest(self.exposition)

    def install(self, app: Flask) -> None:
        """Time every request and count it by endpoint and status."""

        @app.before_request
        def _start():
            g._hrdd_started = time.perf_counter()

        @app.after_request
        def _record(response):
            endpoint = request.url_rule.rule if request.url_rule else "unmatched"
            adapter = g.get("hrdd_adapter")
            if adapter and endpoint == "/v1/hooks/<name>":
                # Per adapter ("/v1/hooks/salesforce"), so 401s of one CRM are told from another's. Set only
                # once an installed adapter owns the name, so unknown names cannot add labels.
                endpoint = f"/v1/hooks/{adapter}"
            started = g.pop("_hrdd_started", None)
            if started is not None:
                self.latency.labels(endpoint).observe(time.perf_counter() - started)
            method = request.method if request.method in METHODS else "other"
            self.requests.labels(method, endpoint, str(response.status_code)).inc()
            return response
