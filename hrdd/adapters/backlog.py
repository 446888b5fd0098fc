"""/metrics gauges of what waits on the CRM/ERP side: write-backs and deliveries pending or given up."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.exc import SQLAlchemyError

from hrdd.adapters.deliveries import NEEDS_ATTENTION, still_open
from hrdd.adapters.tables import adapter_deliveries, outbox

log = logging.getLogger(__name__)
OUTBOX_WAITING = ("pending", "failed")


class AdapterBacklog:
    """A Prometheus collector that counts, at each scrape, write-backs and deliveries not done yet.

    ``hrdd_outbox_rows{system,status}``: write-backs pending or failed (a failed one leaves the CRM showing
    an older gate until ``hrdd outbox retry``); ``hrdd_adapter_deliveries{vendor,status}``: CRM/ERP events
    queued, waiting to be fetched, failed or invalid and not superseded by a later screened delivery of
    the same record (each holds its deal). Read from the database, so every
    instance and worker process reports the same numbers; only unfinished rows are counted (indexed).
    """

    def __init__(self, store):
        self.store = store

    def describe(self):
        """The metric names, without touching the database at registration."""
        return [self._outbox(), self._deliveries()]

    @staticmethod
    def _outbox() -> GaugeMetricFamily:
        return GaugeMetricFamily("hrdd_outbox_rows", "Write-backs to the CRM/ERP waiting (pending) or given up "
                                 "(failed), by system", labels=["system", "status"])

    @staticmethod
    def _deliveries() -> GaugeMetricFamily:
        return GaugeMetricFamily("hrdd_adapter_deliveries", "CRM/ERP events not screened (queued, "
                                 "pending_enrichment, failed, invalid), by adapter", labels=["vendor", "status"])

    def collect(self):
        """Count the rows now; nothing (and a warning) when the database does not answer."""
        rows, events = self._outbox(), self._deliveries()
        o, d = outbox.c, adapter_deliveries.c
        try:
            with self.store.engine.connect() as conn:
                for system, status, count in conn.execute(
                        sa.select(o.system, o.status, sa.func.count()).where(o.status.in_(OUTBOX_WAITING))
                        .group_by(o.system, o.status)):
                    rows.add_metric([system, status], count)
                for vendor, status, count in conn.execute(
                        sa.select(d.vendor, d.status, sa.func.count())
                        .where(d.status.in_(NEEDS_ATTENTION), still_open()).group_by(d.vendor, d.status)):
                    events.add_metric([vendor, status], count)
        except SQLAlchemyError as exc:
            log.warning("adapter backlog metrics not read: %s", str(exc).splitlines()[0])
            return
        yield rows
        yield events
