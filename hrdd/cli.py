"""The `hrdd` command: serve, screen, keys, db, data, plus commands added by plugins."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import click
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext

from hrdd import audit
from hrdd.api_keys import KEY_CACHE_SECONDS, ROLES


def _create_app():
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from hrdd.adapters.config import ConfigError
    from hrdd.errors import StartupError
    from server import create_app  # noqa: PLC0415 - server.py lives at the project root
    try:
        return create_app()
    except (SQLAlchemyError, CommandError) as exc:
        raise _store_error(exc) from None
    except (ConfigError, StartupError) as exc:
        # The message names the file and setting; a traceback would bury it.
        raise click.ClickException(str(exc)) from None


def _store_error(exc: Exception) -> click.ClickException:
    """One line naming the store (passwords hidden), the database's reason and what to check."""
    from hrdd.config import load_config
    url = load_config()["HRDD_DATABASE_URL"]
    reason = _hide_passwords(str(getattr(exc, "orig", None) or exc).strip().splitlines()[0], url)
    return click.ClickException(
        f"cannot open the store {_safe_url(url)}: {reason.rstrip('.')}.{_store_hint(exc, url)}")


def _store_hint(exc: Exception, url: str) -> str:
    from sqlalchemy.exc import DBAPIError

    from server import store_fault  # noqa: PLC0415 - server.py lives at the project root
    if not isinstance(exc, DBAPIError):
        return ""  # alembic's and the store's own messages say what to do
    fault = store_fault(exc)
    if fault == "read_only":
        return " hrdd writes at start-up (schema, audit trail): give it a database that accepts writes."
    if fault == "unavailable":
        return " Check HRDD_DATABASE_URL and that the database is running."
    if url.startswith("sqlite"):
        return " Check that HRDD_DATABASE_URL names hrdd's SQLite database file."
    return " Check the database user's privileges and the schema HRDD_DATABASE_URL selects."


def _services():
    from hrdd.services import current_services
    return current_services()


class HrddGroup(FlaskGroup):
    """Flask's CLI group limited to hrdd's own commands and those plugins register.

    Flask's group builds the app to list commands extensions add to ``app.cli``; for hrdd that would open
    (and create) the store just to print ``--help``, and list Flask-Limiter's maintenance group as if it
    were hrdd's. Commands still run in an app context built on demand (``with_appcontext``).
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # hrdd's app is fixed (-A/--app), it has no debug server (--debug), and -e needs python-dotenv.
        self.params = [p for p in self.params if p.name not in ("app", "debug", "env_file")]

    def list_commands(self, ctx):
        """hrdd's commands, without building the app."""
        return sorted(self.commands)

    def get_command(self, ctx, name):
        """One of hrdd's commands, without building the app."""
        return self.commands.get(name)


@click.group(cls=HrddGroup, create_app=_create_app, add_default_commands=False, add_version_option=False)
def cli():
    """hrdd: human rights due diligence gate for surveillance-capable products."""


# Measured in docs/benchmarks.md: on SQLite every write queues on one lock and more threads only add GIL
# and lock hand-offs (CPU per screening 2.2 ms with 1 thread, 2.8 with 2, 3.6 with 8); two keep a slow
# request (a rider, a workbook) from stalling the process. A server database overlaps network waits.
SQLITE_THREADS = 2
SERVER_DB_THREADS = 8


def default_threads(database_url: str) -> int:
    """Threads per worker when --threads is not given: few on SQLite, more on a server database."""
    return SQLITE_THREADS if database_url.startswith("sqlite") else SERVER_DB_THREADS


# Not in an app context (FlaskGroup adds one by default): with workers, the app must be made after the
# metrics directory is set.
@cli.command("serve", with_appcontext=False)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--threads", default=None, type=click.IntRange(min=1),
              help=f"Threads per worker process [default: {SQLITE_THREADS} on SQLite, {SERVER_DB_THREADS} on PostgreSQL].")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
              help="Processes serving the port (POSIX only); about one per CPU core.")
@click.pass_context
def serve(ctx, host, port, threads, workers):
    """Run the service on a production WSGI server (waitress), in one process or several."""
    import logging

    from hrdd import checkpoints, serving
    if workers > 1 and not serving.can_fork():
        raise click.ClickException("--workers above 1 needs os.fork (Linux, macOS and other POSIX systems); "
                                   "here, run --workers 1 and start several instances instead")
    # waitress logs every queued request at WARNING under load; queue depth is visible in /metrics latency.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    logging.getLogger("hrdd.serving").setLevel(logging.INFO)
    script_info = ctx.ensure_object(ScriptInfo)
    if workers == 1:
        app, threads = _ready_app(script_info, threads)
        _announce(app, host, port, workers, threads)
        checkpoints.start(app.extensions["hrdd"].store)
        serving.serve(app, host=host, port=port, threads=threads)
        return
    # The app (and prometheus_client, which reads the variable on import) is made after the metrics
    # directory is set, once, before the workers are forked.
    with serving.prometheus_multiproc_dir():
        app, threads = _ready_app(script_info, threads)
        store = app.extensions["hrdd"].store
        # This process serves nothing: workers open their own connections, none is shared across a fork.
        store.engine.dispose()
        _announce(app, host, port, workers, threads)

        def after_fork():
            store.engine.dispose(close=False)
            checkpoints.start(store)

        try:
            serving.serve(app, host=host, port=port, threads=threads, workers=workers,
                          after_fork=after_fork, on_worker_exit=_worker_exited)
        except serving.ServingError as exc:
            raise click.ClickException(str(exc)) from exc
        except OSError as exc:
            raise click.ClickException(f"cannot serve on {host}:{port}: {exc}") from exc


def _ready_app(script_info, threads: int | None):
    """The app, warmed up by its plugins, and the threads per worker (given, or the store's default)."""
    app = script_info.load_app()
    # Before serving (and before forking): the workers inherit what the plugins load here.
    with app.app_context():
        app.extensions["hrdd"].pm.hook.hrdd_warm_up(app=app)
    return app, threads or default_threads(app.config["HRDD_DATABASE_URL"])


def _announce(app, host, port, workers, threads):
    click.echo(f"hrdd listening on http://{host}:{port} ({workers} worker{'s' if workers > 1 else ''} × "
               f"{threads} threads; store: {_safe_url(app.config['HRDD_DATABASE_URL'])})")


def _worker_exited(pid: int) -> None:
    from prometheus_client import multiprocess
    multiprocess.mark_process_dead(pid)


def _safe_url(url: str) -> str:
    """The database URL without its passwords: the user's, and query parameters such as ?password=."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "(not a valid database URL)"
    hidden = [key for key in parsed.query if "password" in key.lower()]
    text = parsed.difference_update_query(hidden).render_as_string(hide_password=True)
    if hidden:
        text += ("&" if "?" in text else "?") + "&".join(f"{key}=***" for key in hidden)
    return text


def _hide_passwords(text: str, url: str) -> str:
    """``text`` with every password of the database URL replaced by ***."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError
    try:
        parsed = make_url(url)
    except ArgumentError:
        return text.replace(url, "(the database URL)")
    secrets = [parsed.password] if parsed.password else []
    for key, value in parsed.query.items():
        if "password" in key.lower():
            secrets += [value] if isinstance(value, str) else list(value)
    for secret in sorted(filter(None, map(str, secrets)), key=len, reverse=True):
        # Whole tokens only: a short password must not mangle the words around it.
        text = re.sub(rf"(?<!\w){re.escape(secret)}(?!\w)", "***", text)
    return text


@cli.command("screen")
@click.argument("file", type=click.File("rb"))
@with_appcontext
def screen(file):
    """Screen a transaction JSON FILE without the HTTP service and print the screening.

    No screening is stored; the grievance check (RF-7.1) reads the configured store, as the service does.
    """
    from hrdd import safejson
    from hrdd.errors import ApiError
    from hrdd.model import Transaction
    services = _services()
    try:
        body = safejson.loads(file.read())
        screening = services.screen(Transaction.from_dict(services.validate(body)))
    except safejson.JsonRejected as exc:
        raise click.ClickException(f"{file.name}: not valid JSON ({exc})") from exc
    except ApiError as exc:
        raise click.ClickException(f"{file.name}: {exc.message}: {json.dumps(exc.errors)}") from exc
    click.echo(json.dumps(screening.to_dict(), indent=2))


@cli.group("keys")
def keys():
    """Manage API keys for machines (CRM, ERP, contract and export tools)."""


KEY_NAME_MAX = 200  # api_keys.name is VARCHAR(200)


@keys.command("create")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES))
@with_appcontext
def keys_create(name, role):
    """Create a key for the machine NAME; it is printed once, alone on the last line."""
    import unicodedata
    name = name.strip()
    if not 1 <= len(name) <= KEY_NAME_MAX or any(unicodedata.category(c) == "Cc" for c in name):
        raise click.ClickException(f"name must be 1-{KEY_NAME_MAX} characters, not blank, "
                                   "without control characters")
    key_id, plaintext = _services().store.create_api_key(name, role, actor=audit.cli_actor())
    click.echo(f"Created key {key_id} for {name} with role {role}. Store it now; it is not shown again:")
    click.echo(plaintext)


@keys.command("list")
@with_appcontext
def keys_list():
    """List keys (never the secret)."""
    for key in _services().store.list_api_keys():
        state = "revoked" if key["revoked"] else "active"
        click.echo(f"{key['id']}  {key['name']:<30} {key['role']:<10} {key['prefix']}…  {key['created_at']}  {state}")


@keys.command("revoke")
@click.argument("key_id")
@with_appcontext
def keys_revoke(key_id):
    """Revoke a key by id (running servers refuse it within the key cache's few seconds)."""
    if not _services().store.revoke_api_key(key_id, actor=audit.cli_actor()):
        raise click.ClickException(f"no active key {key_id}")
    # The CLI is never the serving process: say when the running servers stop accepting the key.
    click.echo(f"revoked {key_id}; running servers refuse it within {KEY_CACHE_SECONDS:g} seconds "
               "(they cache key look-ups)")


@cli.group("db")
def db():
    """Database schema."""


@db.command("upgrade")
@with_appcontext
def db_upgrade():
    """Create or migrate the schema (also done on start)."""
    services = _services()
    services.store.upgrade()
    click.echo(f"schema up to date ({services.store.dialect})")


# Without the app: building it migrates the schema, and this command reports the schema as found.
@db.command("current", with_appcontext=False)
def db_current():
    """Print the revisions the database records and whether they are this hrdd's (exit status 1 if not)."""
    from alembic.util import CommandError
    from sqlalchemy.exc import SQLAlchemyError

    from hrdd.config import load_config
    from hrdd.store import Store
    try:
        store = Store(load_config()["HRDD_DATABASE_URL"])
        try:
            status = store.schema_status()
        finally:
            store.engine.dispose()
    except (SQLAlchemyError, CommandError) as exc:
        raise _store_error(exc) from None
    click.echo(f"recorded: {', '.join(status['recorded']) or '(none)'}")
    click.echo(f"heads:    {', '.join(status['heads'])}")
    if status["problem"]:
        raise click.ClickException(status["problem"])
    click.echo(f"schema up to date ({store.dialect})")


@cli.group("data")
def data():
    """Reference datasets."""


@data.command("info")
@with_appcontext
def data_info():
    """Each dataset: source, version, rows and licence terms."""
    from hrdd.engine import ScreeningContext
    services = _services()
    context = ScreeningContext(services.reference, services.policy, services.store)
    for rows in services.pm.hook.hrdd_data_sources(context=context):
        for ds in rows or ():
            click.echo(f"{ds['name']}: {ds.get('title', '')}")
            click.echo(f"  file:    {ds.get('file')} ({ds.get('rows', 0)} rows{'' if ds.get('present', True) else ', MISSING'})")
            click.echo(f"  version: {ds.get('version') or '-'}")
            click.echo(f"  source:  {ds.get('source')}")
            click.echo(f"  terms:   {ds.get('terms')}")
            if ds.get("citation"):
                click.echo(f"  cite:    {ds['citation']}")
    click.echo(f"data directory: {Path(services.reference.data_dir).resolve()}")


@data.command("check")
@click.argument("directory", required=False, type=click.Path(file_okay=False, exists=True, path_type=Path))
def data_check(directory):
    """Check a data directory (default HRDD_DATA_DIR) line by line, and say what it changes against the one in use.

    Needs no database and touches no running server: check a new edition here, then point HRDD_DATA_DIR at
    it (or copy it in) and restart. Exit status 1 names the file, line and column of each problem.
    """
    from hrdd.config import load_config
    from hrdd.errors import StartupError
    from hrdd.policy import Policy
    from hrdd.reference import ReferenceData
    from hrdd.reference.check import compare, summary
    config = load_config()
    in_use = Path(config["HRDD_DATA_DIR"]).resolve()
    directory = (directory or in_use).resolve()
    try:
        policy = Policy.load(config["HRDD_POLICY_FILE"])
        candidate = ReferenceData(directory, policy)
        current = ReferenceData(in_use, policy) if directory != in_use else None
    except (StartupError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"data directory: {directory}")
    for line in summary(candidate):
        click.echo(f"  {line}")
    if current is not None:
        click.echo(f"against the data in use ({in_use}):")
        for line in compare(current, candidate):
            click.echo(f"  {line}")
    click.echo("ok: every file can be used")


def main():
    """Entry point of the `hrdd` console script."""
    # Plugins add their commands before click parses the arguments.
    from hrdd.config import load_config
    from hrdd.plugins import make_plugin_manager
    pm = make_plugin_manager(load_config().get("HRDD_PLUGINS_DIR"))
    pm.hook.hrdd_register_commands(cli=cli)
    sys.exit(cli.main(prog_name="hrdd"))


if __name__ == "__main__":
    main()
