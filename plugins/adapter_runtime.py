"""Runtime of the adapters: outbox rows with each screening, ``hrdd worker``, ``hrdd outbox``, event holds."""

from __future__ import annotations

import json
import logging
import time

import click
import sqlalchemy as sa
from flask import current_app, has_app_context
from flask.cli import with_appcontext

from hrdd.adapters import deliveries, mapcheck, outbox, pipeline, versions
from hrdd.adapters.backlog import AdapterBacklog
from hrdd.adapters.config import check_urls, settings_for
from hrdd.adapters.tables import adapter_deliveries, aware, iso
from hrdd.hookspecs import hookimpl

log = logging.getLogger(__name__)
UNSCREENED = ("queued", "pending_enrichment", "invalid", "failed")


@hookimpl
def hrdd_screening_stored(screening, connection, store):
    """Queue the write-back of this screening in the same database transaction."""
    if not has_app_context():
        return
    ref = (screening.get("transaction") or {}).get("reference") or {}
    if not ref.get("system"):
        return
    # To the record delivered (an order's gate onto the order), which need not be the deal's reference.
    target = pipeline.delivered_record(ref)
    outbox.enqueue(connection, settings_for(current_app), **target, transaction_id=screening["transaction_id"],
                   screening_id=screening["id"])


@hookimpl
def hrdd_gate_changed(transaction_id, reference, gate, previous_gate, reasons, screening, cause, connection,
                      store):
    """Queue the write-back of a deal whose gate a reviewer, a grievance or a rider changed, or on which a
    reviewer asked for information (its reason then quotes what was asked, the gate unchanged).

    In the transaction of the change; only for systems configured for write-back. The row carries no gate
    of its own: the worker sends the deal's gate as it is when it delivers, so of several quick changes
    the CRM ends with the last.
    """
    if not has_app_context() or not reference or not reference.get("system"):
        return
    # The record whose screening governs the deal (the order, not the quotation the deal is keyed on).
    target = pipeline.record_of_screening(store, (screening or {}).get("id"), reference)
    row = outbox.enqueue(connection, settings_for(current_app), **target,
                         transaction_id=transaction_id, screening_id=(screening or {}).get("id"))
    if row:
        log.info("write-back %s queued for %s/%s/%s: gate %s -> %s (%s)", row, target["system"],
                 target["object_type"], target["object_id"], previous_gate, gate, cause)


# Built once: the gate is computed on every screening response, where building it costs more than running it.
_UNSCREENED_EVENTS = sa.select(adapter_deliveries).where(
    adapter_deliveries.c.system == sa.bindparam("system"),
    adapter_deliveries.c.object_type == sa.bindparam("object_type"),
    adapter_deliveries.c.object_id == sa.bindparam("object_id"),
    # Equalities, not IN: an IN list is expanded again on every execution, these compile once.
    sa.or_(*(adapter_deliveries.c.status == status for status in UNSCREENED))).order_by(adapter_deliveries.c.created_at)


@hookimpl
def hrdd_gate_factors(transaction_id, screening, store):
    """Hold while a newer CRM/ERP event for this deal is recorded but not screened, saying why."""
    ref = (screening.get("transaction") or {}).get("reference")
    if not ref:
        record = store.get_transaction(transaction_id)
        if record is None:
            return None
        ref = record["reference"]
    since = screening.get("created_at") or ""
    with store.reading() as conn:
        rows = conn.execute(_UNSCREENED_EVENTS, {"system": ref["system"], "object_type": ref["object_type"],
                                                 "object_id": ref["object_id"]}).fetchall()
    factors = []
    for row in rows:
        if iso(aware(row.created_at)) <= since:
            continue
        what = row.reason or "it is waiting to be fetched and screened"
        factors.append({"kind": "hold", "reason": f"a {row.vendor} event for this deal received "
                        f"{iso(aware(row.created_at))} is not screened yet: {what}"})
    return factors


def _resolver(app):
    services = app.extensions["hrdd"]
    cache: dict = {}

    def resolve(vendor: str):
        if vendor not in cache:
            cache[vendor] = services.pm.hook.hrdd_webhook_adapter(name=vendor, app=app)
        return cache[vendor]
    return resolve


def run_once(app) -> dict:
    """One worker pass: due enrichments, then due write-backs. Returns the counts."""
    services = app.extensions["hrdd"]
    settings = settings_for(app)
    events = pipeline.process_due(services, _resolver(app), settings)
    deliveries = outbox.deliver_due(services, settings)
    return {"events": events, "writeback": deliveries}


@click.command("worker")
@click.option("--once", is_flag=True, help="Process what is due once and exit.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between passes.")
@with_appcontext
def worker_command(once: bool, interval: float):
    """Fetch and screen queued CRM events and deliver decisions back to the CRM (retries with back-off)."""
    app = current_app._get_current_object()
    while True:
        try:
            counts = run_once(app)
        except sa.exc.OperationalError as exc:
            # The database is away (restart, fail-over, network): keep the worker alive and try again;
            # leased rows whose outcome could not be written are taken again when their lease ends.
            if once:
                raise
            log.warning("worker pass failed, database unavailable; retrying in %.0f s: %s", interval,
                        str(exc.orig or exc).splitlines()[0])
            click.echo(json.dumps({"error": "database unavailable", "retry_in_s": interval}), err=True)
            time.sleep(interval)
            continue
        busy = any(counts["events"].values()) or any(counts["writeback"].values())
        if once or busy:
            click.echo(json.dumps(counts))
        if once:
            return
        if not busy:
            # Sleep only when a pass found nothing to do: sleeping after every batch of 50 capped the
            # drain rate at 50 rows per interval, and a backlog then grew under sustained load.
            time.sleep(interval)


@click.group("outbox", invoke_without_command=True)
@click.option("--status", type=click.Choice(["pending", "failed", "delivered", "all"]), default=None,
              help="Show only this status (default: pending and failed).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
@with_appcontext
def outbox_command(ctx, status: str | None, as_json: bool):
    """List write-backs to the CRM that are pending or failed (or any status)."""
    if ctx.invoked_subcommand:
        return
    store = current_app.extensions["hrdd"].store
    if status == "all":
        rows = outbox.rows(store)
    elif status:
        rows = outbox.rows(store, status)
    else:
        rows = outbox.rows(store, "pending") + outbox.rows(store, "failed")
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo("No write-backs" + (f" with status {status}." if status else " pending or failed."))
        return
    click.echo(f"{'id':32} {'status':9} {'tries':>5} {'system':10} {'object':30} {'next attempt':27} last error")
    for row in rows:
        obj = f"{row['object_type']}/{row['object_id']}"[:30]
        # Only a pending row has a next attempt: a failed one waits for `hrdd outbox retry`.
        upcoming = (row["next_attempt_at"] or "") if row["status"] == "pending" else "-"
        click.echo(f"{row['id']:32} {row['status']:9} {row['attempts']:>5} {row['system'][:10]:10} {obj:30} "
                   f"{upcoming[:27]:27} {(row['last_error'] or '')[:80]}")


@outbox_command.command("retry")
@click.argument("row_id", required=False)
@click.option("--all-failed", is_flag=True, help="Queue every failed write-back again (after a CRM outage).")
@click.option("--system", default=None, help="With --all-failed: only this system's.")
@with_appcontext
def outbox_retry(row_id: str | None, all_failed: bool, system: str | None):
    """Put a failed write-back (ROW_ID, or --all-failed [--system S]) back in the queue."""
    if bool(row_id) == all_failed:
        raise click.UsageError("give a write-back id or --all-failed (not both)")
    if system and not all_failed:
        raise click.UsageError("--system goes with --all-failed")
    count = outbox.retry(current_app.extensions["hrdd"].store, row_id, system=system)
    if row_id:
        if not count:
            raise click.ClickException(f"{row_id} is not a failed write-back")
        click.echo(f"{row_id} queued again")
        return
    click.echo(f"{count} failed write-back(s){f' to {system}' if system else ''} queued again")


@click.group("deliveries", invoke_without_command=True)
@click.option("--status", type=click.Choice([*deliveries.STATUSES, "all"]), default=None,
              help="Show only this status (default: failed, pending_enrichment, queued and invalid).")
@click.option("--vendor", default=None, help="Only this adapter's deliveries (salesforce, hubspot, ...).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
@with_appcontext
def deliveries_command(ctx, status: str | None, vendor: str | None, as_json: bool):
    """List CRM/ERP deliveries that hold a deal: failed fetches, queued events, invalid records.

    Without --status, those a later screened delivery of the same record superseded are left out.
    """
    if ctx.invoked_subcommand:
        return
    statuses = None if status == "all" else (status,) if status else deliveries.NEEDS_ATTENTION
    # By default only what still holds a deal: not those a later screened delivery of the record superseded.
    rows = deliveries.rows(current_app.extensions["hrdd"].store, statuses, vendor, open_only=not status)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    if not rows:
        click.echo("No deliveries" + (f" with status {status}." if status else " waiting, failed or invalid."))
        return
    click.echo(f"{'vendor':10} {'status':18} {'tries':>5} {'object':34} {'received':27} delivery id / reason")
    for row in rows:
        obj = f"{row['object_type']}/{row['object_id']}"[:34]
        click.echo(f"{row['vendor'][:10]:10} {row['status']:18} {row['attempts']:>5} {obj:34} "
                   f"{(row['created_at'] or '')[:27]:27} {row['delivery_id']}")
        if row["reason"]:
            click.echo(f"{'':10} {row['reason'][:200]}")


@deliveries_command.command("retry")
@click.argument("vendor")
@click.argument("delivery_id", required=False)
@with_appcontext
def deliveries_retry(vendor: str, delivery_id: str | None):
    """Queue a failed delivery of VENDOR (or all of its failed ones) to be fetched and screened again."""
    count = deliveries.retry(current_app.extensions["hrdd"].store, vendor, delivery_id)
    if delivery_id and not count:
        raise click.ClickException(f"{vendor} delivery {delivery_id} is not a failed delivery")
    click.echo(f"{count} failed {vendor} deliver{'y' if count == 1 else 'ies'} queued again; `hrdd worker` "
               "fetches and screens them")


@hookimpl
def hrdd_register_commands(cli):
    """Add ``hrdd worker``, ``hrdd outbox`` and ``hrdd deliveries``."""
    cli.add_command(worker_command)
    cli.add_command(outbox_command)
    cli.add_command(deliveries_command)


@hookimpl
def hrdd_startup(app):
    """Refuse to start on an unreadable adapter configuration or field map, naming the problem."""
    settings = settings_for(app)
    metrics = getattr(app.extensions["hrdd"], "metrics", None)
    if metrics is not None:
        # Write-backs and CRM events waiting or given up, on /metrics (alert on failed ones).
        metrics.exposition.register(AdapterBacklog(app.extensions["hrdd"].store))
    versions.check_settings(settings)
    check_urls(settings)
    mapcheck.check_settings(settings, _resolver(app), app.config.get("HRDD_ADAPTERS_FILE"))
