"""`hrdd lists`, `hrdd lists load FILE` and `hrdd rescreen --since-list-version V`."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import click
import sqlalchemy as sa
from flask import current_app
from flask.cli import with_appcontext

from hrdd.parties import service, storage
from hrdd.parties.loaders import FORMATS, ListFormatError, load_file
from hrdd.tables import screenings

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_DEFAULT_NAMES = {"csl": "csl", "compiled": service.DEFAULT_LIST_NAME}


def register(cli: click.Group) -> None:
    """Add the list and re-screening commands to the ``hrdd`` group."""
    cli.add_command(lists)
    cli.add_command(rescreen)


def _services():
    from hrdd.services import current_services
    return current_services()


@click.group("lists", invoke_without_command=True)
@click.pass_context
@with_appcontext
def lists(ctx):
    """Restricted-party lists: without a subcommand, show every loaded version."""
    if ctx.invoked_subcommand is not None:
        return
    services = _services()
    service.matcher_for(services.store, current_app.config["HRDD_DATA_DIR"], services.policy)
    versions = storage.list_versions(services.store)
    click.echo(f"{'version':>7}  {'list':<24} {'format':<8} {'entries':>8} {'names':>8}  {'loaded (UTC)':<19}  "
               f"{'file':<40} state")
    for v in versions:
        click.echo(f"{v['id']:>7}  {v['name']:<24} {v['format']:<8} {v['entry_count']:>8,} {v['name_count']:>8,}  "
                   f"{v['loaded_at']:%Y-%m-%d %H:%M:%S}  {v['source_file']:<40} "
                   f"{'active' if v['active'] else 'superseded'}")
    click.echo(f"screenings use: {service.list_label(services.store, current_app.config['HRDD_DATA_DIR'], services.policy)}")


@lists.command("load")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="List format (default: from the header).")
@click.option("--name", help="List name; a load under an existing name supersedes its previous version.")
@with_appcontext
def lists_load(file: Path, fmt: str | None, name: str | None):
    """Load a list FILE as a new version (all entries or, on any error, none)."""
    try:
        loaded = load_file(file, fmt, list_name=name)
    except ListFormatError as exc:
        raise click.ClickException(f"{exc}; nothing was loaded") from exc
    name = name or _DEFAULT_NAMES.get(loaded.format) or re.sub(r"[^A-Za-z0-9._-]+", "-", file.stem)[:100]
    if not _NAME.match(name):
        raise click.ClickException(f"list name {name!r}: use 1-100 letters, digits, '.', '_' or '-'")
    services = _services()
    names = sum(len(e.names()) for e in loaded.entries)
    version = storage.save_version(services.store, loaded, name, "hrdd lists load (command line)", names)
    service.invalidate(services.store)
    click.echo(f"Loaded {version['entries']:,} entries ({names:,} names and aliases) from {file.name} "
               f"[{loaded.format}] as list {name!r}, version {version['id']} (sha256 {loaded.sha256[:12]}).")
    click.echo(f"Re-screen stored transactions with: hrdd rescreen --since-list-version {version['id']}")


@click.command("rescreen")
@click.option("--since-list-version", "since", required=True, type=click.IntRange(min=1),
              help="Re-screen transactions last screened before this list version was loaded.")
@click.option("--dry-run", is_flag=True, help="Report what would change without storing new screenings.")
@with_appcontext
def rescreen(since: int, dry_run: bool):
    """Re-screen stored transactions against the current lists and report every changed decision."""
    services = _services()
    known = {v["id"] for v in storage.list_versions(services.store)}
    if since not in known:
        raise click.ClickException(f"there is no list version {since}; `hrdd lists` shows the versions")
    stale = stale_screenings(services.store, since)
    changed = []
    with click.progressbar(stale, label=f"Re-screening {len(stale)} transaction(s)", file=sys.stderr,
                           show_pos=True) as bar:
        for transaction_id, screening_id, old in bar:
            body = services.store.get_screening_request(screening_id)
            new, _ = services.screen_and_store(body, source="rescreen", dry_run=dry_run)
            if (old["decision"], old["gate"]) != (new["decision"], new.get("engine_gate", new["gate"])):
                changed.append((transaction_id, old, new))
    for transaction_id, old, new in changed:
        ref = old.get("transaction", {}).get("reference", {})
        flags = sorted({f["id"] for f in new["red_flags"]} - {f["id"] for f in old["red_flags"]})
        click.echo(f"{transaction_id} ({ref.get('system')}/{ref.get('object_type')}/{ref.get('object_id')}): "
                   f"{old['decision']} -> {new['decision']} (gate {old['gate']} -> "
                   f"{new.get('engine_gate', new['gate'])})" + (f"; new flags {', '.join(flags)}" if flags else "")
                   + ("" if dry_run else f"; screening {new['id']}"))
    verb = "would change" if dry_run else "changed"
    click.echo(f"{len(stale)} transaction(s) re-screened against {service.list_label(services.store, current_app.config['HRDD_DATA_DIR'], services.policy)}; "
               f"{len(changed)} decision(s) {verb}." + (" Nothing was stored (dry run)." if dry_run else ""))


def stale_screenings(store, since: int) -> list[tuple[str, str, dict]]:
    """(transaction id, latest screening id, its result) for transactions not yet screened with ``since``."""
    latest = (sa.select(screenings.c.transaction_id, sa.func.max(screenings.c.created_at).label("at"))
              .group_by(screenings.c.transaction_id).subquery())
    stmt = (sa.select(screenings.c.transaction_id, screenings.c.id, screenings.c.result)
            .join(latest, sa.and_(latest.c.transaction_id == screenings.c.transaction_id,
                                  latest.c.at == screenings.c.created_at))
            .order_by(screenings.c.transaction_id))
    out = []
    with store.engine.connect() as conn:
        for row in conn.execute(stmt):
            label = ((row.result or {}).get("versions") or {}).get("data", {}).get("parties") or ""
            versions = [int(v) for v in re.findall(r"@(\d+)", label)]
            if not versions or max(versions) < since:
                out.append((row.transaction_id, row.id, row.result))
    return out
