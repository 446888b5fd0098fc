"""Built-in plugin: `hrdd audit verify|show`, and configuration changes recorded at start-up."""

from __future__ import annotations

import hashlib
import json

import click
from flask.cli import with_appcontext
from sqlalchemy import insert, select, update

from hrdd import audit
from hrdd.hookspecs import hookimpl
from hrdd.workspace import cases
from hrdd.workspace.tables import workspace_settings


def _configuration_fingerprint(app) -> dict:
    services = app.extensions["hrdd"]
    policy_file = app.config.get("HRDD_POLICY_FILE")
    try:
        policy_digest = hashlib.sha256(open(policy_file, "rb").read()).hexdigest()
    except (OSError, TypeError):
        policy_digest = None
    plugins = sorted(services.pm.get_name(p) or "" for p in services.pm.get_plugins())
    try:
        # Who may approve what alone is part of the configuration: a change of these rules is recorded.
        dual_control = cases.dual_control_rules(services.policy).as_dict()
    except ValueError:
        dual_control = None  # refused at start-up by the cases plugin, naming the problem
    return {"policy_file": str(policy_file), "policy_sha256": policy_digest,
            "policy_version": getattr(services.policy, "version", None), "plugins": plugins,
            "dual_control": dual_control}


@hookimpl
def hrdd_startup(app):
    """Record a configuration change (policy file or plugin set) in the audit log when one is seen."""
    fingerprint = _configuration_fingerprint(app)
    text = json.dumps(fingerprint, sort_keys=True)
    with app.extensions["hrdd"].store.begin() as conn:
        # Instances starting together would otherwise both see "no record yet" and both insert it.
        audit.lock_chain(conn)
        row = conn.execute(select(workspace_settings.c.value)
                           .where(workspace_settings.c.key == "configuration")).first()
        if row is not None and row.value == text:
            return
        previous = json.loads(row.value) if row is not None else {}
        changed = sorted(k for k in fingerprint if previous.get(k) != fingerprint[k])
        if row is None:
            conn.execute(insert(workspace_settings).values(key="configuration", value=text))
        else:
            conn.execute(update(workspace_settings).where(workspace_settings.c.key == "configuration")
                         .values(value=text))
        audit.record(conn, "system", "config.change", "configuration",
                     {"changed": changed, "now": fingerprint,
                      "before": {k: previous.get(k) for k in changed} if previous else None})


@hookimpl
def hrdd_register_commands(cli):
    """`hrdd audit verify` and `hrdd audit show`."""

    @cli.group("audit")
    def audit_group():
        """The append-only, hash-chained audit log."""

    @audit_group.command("verify")
    @with_appcontext
    def verify():
        """Recompute the hash chain; exit 1 and name each entry that was edited or removed."""
        from hrdd.services import current_services
        with current_services().store.engine.connect() as conn:
            result = audit.verify(conn)
        if result.ok:
            click.echo(f"audit log intact: {result.entries} entries, head {result.head_hash}")
            return
        for problem in result.problems:
            click.echo(f"TAMPERED: {problem}", err=True)
        raise SystemExit(1)

    @audit_group.command("show")
    @click.option("--subject", help="Only entries about this id.")
    @click.option("--limit", default=50, show_default=True, type=int)
    @with_appcontext
    def show(subject, limit):
        """Print the newest entries as JSON lines."""
        from hrdd.services import current_services
        with current_services().store.engine.connect() as conn:
            for entry in audit.entries(conn, subject=subject, limit=limit):
                click.echo(json.dumps(entry, sort_keys=True))
