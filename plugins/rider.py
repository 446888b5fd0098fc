"""Contract riders: clause safeguards for screenings, rider.docx rendering and the rider/clauses commands."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import click
from flask import current_app, has_app_context
from flask.cli import with_appcontext

from hrdd.errors import ApiError, StartupError
from hrdd.gate import standing_review
from hrdd.hookspecs import hookimpl
from hrdd.model import Safeguard
from hrdd.riders import (
    DOCX_MIMETYPE,
    ClauseLibraryError,
    Facts,
    SelectionError,
    VariableError,
    build_rider,
    clauses_dir,
    configured_library,
    select,
)
from hrdd.riders.check import check_library
from hrdd.riders.governing import refuse_unless_governing
from hrdd.riders.variables import option_names, query_parameter
from hrdd.riders.vocabulary import Vocabulary

KIND = "rider.docx"


def _config(app=None) -> dict:
    if app is not None:
        return app.config
    return current_app.config if has_app_context() else {}


def _library(config, strict: bool = False):
    return configured_library(config, strict)


def _services(app=None):
    app = app if app is not None else (current_app if has_app_context() else None)
    return app.extensions.get("hrdd") if app is not None else None


@hookimpl
def hrdd_startup(app):
    """Refuse to start on a clause library with broken files; the one-line error names each file."""
    try:
        _library(app.config, strict=True)
    except ClauseLibraryError as exc:
        directory = clauses_dir(app.config)
        problems = "; ".join(f"{directory / p.file}: {p.message}" for p in exc.problems)
        raise StartupError(f"clause library: {problems} (run `hrdd clauses check` after fixing)") from None


@hookimpl
def hrdd_safeguards(transaction, flags, decision, context):
    """The rider's clauses (kind "clause") and technical-schedule parts (kind "technical") that apply."""
    config = _config()
    if not config.get("HRDD_DATA_DIR") and context is not None and getattr(context, "reference", None):
        config = {**config, "HRDD_DATA_DIR": context.reference.data_dir}
    selection = select(_library(config), Facts.from_transaction(transaction, flags, decision))
    return list(_safeguards_of(selection))


@hookimpl
def hrdd_safeguard_catalogue():
    """Every clause (kind "clause") and technical-schedule part (kind "technical") of the clause library."""
    library = _library(_config())
    return [Safeguard(id=c.id, kind="clause", title=c.title) for c in library.clauses] + [
        Safeguard(id=t.id, kind="technical", title=f"Technical safeguards: {t.title}") for t in library.technical]


@lru_cache(maxsize=1024)
def _safeguards_of(selection) -> tuple[Safeguard, ...]:
    # Screening is a hot path and selections repeat: build the Safeguard objects once per selection.
    return (tuple(Safeguard(id=c.id, kind="clause", title=c.title) for c in selection.clauses)
            + tuple(Safeguard(id=t.id, kind="technical", title=f"Technical safeguards: {t.title}")
                    for t in selection.technical))


def render_rider(screening: dict, options: dict, config,
                 how_to_give: Callable[[str], str] = query_parameter, services=None) -> tuple[bytes, str, str]:
    """The rider for a screening dict; ApiError 409 for a superseded screening or a blocked deal (see
    ``refuse_unless_governing``) and 422 naming each missing or invalid variable."""
    if not screening.get("transaction"):
        raise ApiError(409, "screening_incomplete",
                       f"Screening {screening.get('id')!r} does not record its transaction; re-screen it")
    refuse_unless_governing(screening, services)
    library = _library(config)
    try:
        body = build_rider(screening, options, library, config, how_to_give)
    except VariableError as exc:
        names = ", ".join(sorted(exc.errors))
        raise ApiError(422, "validation_error", f"Rider variables missing or invalid: {names}", exc.errors) from exc
    except SelectionError as exc:
        raise ApiError(500, "clause_library_error", f"The clause library cannot build this rider: {exc}") from exc
    return body, DOCX_MIMETYPE, f"rider-{screening.get('id') or 'screening'}.docx"


def with_review(screening: dict, services) -> dict:
    """A stored screening with the reviewer's decision in force for it (``review``): "Conditions of approval".

    A screening that already says (a GET /v1/screenings answer given to ``hrdd rider --json``) is kept as is.
    """
    if "review" in screening or not screening.get("id") or not screening.get("transaction_id"):
        return screening
    _, _, factors = services.gate_details(screening["transaction_id"], screening)
    return {**screening, "review": standing_review(factors)}


@hookimpl
def hrdd_render_document(kind, screening, options, app):
    """Render ``rider.docx``; options are the rider variables (seller_name, buyer_name, …)."""
    if kind != KIND:
        return None
    services = _services(app)
    screening = with_review(screening, services) if services is not None else screening
    return render_rider(screening, dict(options or {}), _config(app), services=services)


# The rider variables of the default registry that have an option of their own (e.g. --seller-name).
CLI_OPTIONS = ("seller_name", "buyer_name", "agreement_reference", "governing_law", "grievance_contact",
               "cure_period")


def _option_flags(command):
    """Add one --option per rider variable of the default registry (e.g. --seller-name)."""
    for name in reversed(CLI_OPTIONS):
        command = click.option(f"--{name.replace('_', '-')}", name, default=None,
                               help=f"Rider variable {name} (or configure HRDD_RIDER_{name.upper()}).")(command)
    return command


def cli_option(name: str) -> str:
    """How ``hrdd rider`` is given rider variable ``name``: its own option, else ``--set``."""
    if name in CLI_OPTIONS:
        return f"the option --{name.replace('_', '-')}"
    return f"--set {name}=VALUE"


@hookimpl
def hrdd_register_commands(cli):
    """``hrdd rider SCREENING_ID -o FILE`` and ``hrdd clauses check``."""

    @cli.command("rider")
    @click.argument("screening_id", required=False)
    @click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
                  help="Where to write the .docx.")
    @click.option("--json", "json_file", type=click.File("r"),
                  help="Build from a screening JSON file instead of a stored screening (one the store holds is "
                       "built from its record).")
    @click.option("--set", "extra", multiple=True, metavar="NAME=VALUE",
                  help="Any other rider variable defined in the clause library's variables.yaml.")
    @_option_flags
    @with_appcontext
    def rider(screening_id, output, json_file, extra, **variables):
        """Write the contract rider of a stored screening (or of --json FILE) to OUTPUT."""
        if bool(screening_id) == bool(json_file):
            raise click.UsageError("give either SCREENING_ID or --json FILE")
        if json_file:
            try:
                screening = json.load(json_file)
            except json.JSONDecodeError as exc:
                raise click.ClickException(f"{json_file.name}: not valid JSON ({exc})") from exc
            if not isinstance(screening, dict):
                raise click.ClickException(f"{json_file.name}: not a screening (a JSON object, as GET "
                                           "/v1/screenings/{id} answers)")
            # A screening the store holds is built from its record and judged by its deal there (a reviewer
            # may have decided since the file was saved, or the file been edited); any other file by the gate
            # it states.
            stored = screening.get("id") and _services().store.get_screening(str(screening["id"]))
            if stored:
                screening, json_file = with_review(stored, _services()), None
        else:
            screening = current_app.extensions["hrdd"].store.get_screening(screening_id)
            if screening is None:
                raise click.ClickException(f"screening {screening_id!r} does not exist")
            screening = with_review(screening, current_app.extensions["hrdd"])
        options = {k: v for k, v in variables.items() if v is not None}
        for item in extra:
            name, sep, value = item.partition("=")
            if not sep:
                raise click.UsageError(f"--set expects NAME=VALUE, not {item!r}")
            options[name.strip()] = value
        try:
            body, _, _ = render_rider(screening, options, current_app.config, cli_option,
                                      None if json_file else _services())
        except ApiError as exc:
            details = "; ".join(f"{k}: {' '.join(v)}" for k, v in sorted(exc.errors.items()))
            raise click.ClickException(f"{exc.message}{' (' + details + ')' if details else ''}") from exc
        output.write_bytes(body)
        click.echo(f"wrote {output} ({len(body)} bytes) for screening {screening.get('id')}")

    # A plain click group: checking a broken library must not need the app, which refuses to start on one.
    clauses = click.Group("clauses", help="The clause library of the contract rider.")
    cli.add_command(clauses)

    @clauses.command("check")
    @click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path),
                  help="Check this directory instead of the configured HRDD_CLAUSES_DIR.")
    def check(directory):
        """Validate every clause file (front matter, variables, conditions, references)."""
        from hrdd.config import load_config
        config = load_config()
        target = directory or clauses_dir(config)
        report = check_library(target, Vocabulary.from_data_dir(config.get("HRDD_DATA_DIR")))
        if not report.ok:
            for problem in report.problems:
                click.echo(f"{target}/{problem}", err=True)
            click.echo(f"clause library {target}: {len(report.problems)} problem(s)", err=True)
            sys.exit(1)
        lib = report.library
        click.echo(f"clause library {target}: OK — {len(lib.recitals)} recitals, {len(lib.clauses)} clauses, "
                   f"{len(lib.technical)} technical-schedule parts, {len(lib.variables)} variables "
                   f"(options: {', '.join(option_names(lib.variables))}); "
                   f"{report.scenarios} screening scenarios assemble")


__all__ = ["ClauseLibraryError", "hrdd_register_commands", "hrdd_render_document", "hrdd_safeguards",
           "hrdd_startup", "render_rider"]
