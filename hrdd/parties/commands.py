"""`hrdd lists` and `hrdd lists load FILE`."""

from __future__ import annotations

import re
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from hrdd import audit
from hrdd.parties import service, storage
from hrdd.parties.loaders import FORMATS, ListFormatError, load_file

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_DEFAULT_NAMES = {"csl": "csl", "compiled": service.DEFAULT_LIST_NAME}


def register(cli: click.Group) -> None:
    """Add the list commands to the ``hrdd`` group."""
    cli.add_command(lists)


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
    matcher = service.matcher_for(services.store, current_app.config["HRDD_DATA_DIR"], services.policy)
    click.echo(f"screenings use: {matcher.list_version} (recorded as parties version {matcher.versions['parties']})")


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
    version = storage.save_version(services.store, loaded, name, "hrdd lists load (command line)", names,
                                   actor=audit.cli_actor())
    service.invalidate(services.store)
    click.echo(f"Loaded {version['entries']:,} entries ({names:,} names and aliases) from {file.name} "
               f"[{loaded.format}] as list {name!r}, version {version['id']} (sha256 {loaded.sha256[:12]}).")
    click.echo("Re-screen transactions screened against older lists with: "
               f"hrdd rescreen --since-list-version {version['id']}")
