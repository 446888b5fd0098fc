"""Built-in plugin: `hrdd audit verify|show`, and configuration changes recorded at start-up."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import click
from flask.cli import with_appcontext
from sqlalchemy import insert, select, update

from hrdd import audit
from hrdd.hookspecs import hookimpl
from hrdd.workspace.dual_control import dual_control_rules
from hrdd.workspace.tables import workspace_settings


def _configuration_fingerprint(app) -> dict:
    services = app.extensions["hrdd"]
    policy_file = app.config.get("HRDD_POLICY_FILE")
    try:
        policy_digest = hashlib.sha256(open(policy_file, "rb").read()).hexdigest()
    except (OSError, TypeError):
        policy_digest = None
    plugins = sorted(services.pm.get_name(p) or "" for p in services.pm.get_plugins())
    from hrdd.checklists.service import checklists_dir  # noqa: PLC0415 - plugins import the app's modules late
    from hrdd.riders import clauses_dir  # noqa: PLC0415
    try:
        # Who may approve what alone is part of the configuration: a change of these rules is recorded.
        dual_control = dual_control_rules(services.policy).as_dict()
    except ValueError:
        dual_control = None  # refused at start-up by the cases plugin, naming the problem
    return {"policy_file": str(policy_file), "policy_sha256": policy_digest,
            "policy_version": getattr(services.policy, "version", None), "plugins": plugins,
            "dual_control": dual_control, "adapters": _adapter_settings(app),
            "clauses": _file_digests(clauses_dir(app.config)),
            "checklist_templates": _file_digests(checklists_dir(app.config)),
            # A corrected edition keeps its year (the version screenings record): the file digests tell.
            "data_dir": str(services.reference.data_dir), "data": _file_digests(services.reference.data_dir)}


def _adapter_settings(app) -> dict | None:
    """The CRM/ERP adapters' settings without their secrets: a field map read from another field, a stage
    mapped differently, a write-back target or an allowlist changed is part of what decides a deal."""
    from hrdd.adapters.config import ConfigError, public_view, settings_for  # noqa: PLC0415

    try:
        return public_view(settings_for(app))
    except ConfigError:
        return None  # refused at start-up by the adapter runtime, naming the setting


def _file_digests(directory) -> dict[str, str] | None:
    """Each file of a data directory (the clause library, the checklist templates) with a digest of it."""
    try:
        root = Path(directory)
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()[:16] for p in files}
    except OSError:
        return None


def _files_changed(before: dict | None, now: dict | None) -> dict[str, list[str]]:
    """Which files of a directory fingerprint were added, removed or edited."""
    before, now = before or {}, now or {}
    return {"added": sorted(set(now) - set(before)), "removed": sorted(set(before) - set(now)),
            "edited": sorted(f for f in set(now) & set(before) if now[f] != before[f])}


@hookimpl
def hrdd_startup(app):
    """Record a configuration change (policy file, plugin set, clause library, checklist templates, reference
    data files or the CRM/ERP adapters' settings, secrets left out) in the audit log when one is seen."""
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
        details = {"changed": changed, "now": fingerprint,
                   "before": {k: previous.get(k) for k in changed} if previous else None}
        files = {k: _files_changed(previous.get(k), fingerprint[k]) for k in ("clauses", "checklist_templates", "data")
                 if k in changed and previous}
        if files:
            details["files"] = files
        audit.record(conn, "system", "config.change", "configuration", details)


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
