"""Built-in plugin: the workspace's sign-in, pages (reviewers' and export-control staff's) and `hrdd users`."""

from __future__ import annotations

import sys

import click
from flask.cli import with_appcontext

from hrdd import audit
from hrdd.hookspecs import hookimpl
from hrdd.workspace import security, users, views, views_checklists, views_reports, views_rider, web


@hookimpl
def hrdd_register_routes(app):
    """Sessions, the sign-in page, the case queue, case pages, the rider form, the checklist page, the dashboard
    and report pages."""
    web.init_app(app)
    app.register_blueprint(views.bp)
    app.register_blueprint(views_checklists.bp)
    app.register_blueprint(views_reports.bp)
    app.register_blueprint(views_rider.bp)


@hookimpl
def hrdd_startup(app):
    """Let signed-in people use the JSON API from the browser, and make sure sessions can be signed."""
    services = app.extensions["hrdd"]
    services.session_principal = web.session_principal
    security.ensure_secret_key(app, services.store)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@hookimpl
def hrdd_register_commands(cli):
    """`hrdd users create|list|password|disable|enable`."""

    @cli.group("users")
    def users_group():
        """Manage people who sign in to the workspace (roles: reviewer, export, admin)."""

    @users_group.command("create")
    @click.argument("name")
    @click.option("--role", required=True, type=click.Choice(users.ROLES))
    @click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
    @with_appcontext
    def create(name, role, password_stdin):
        """Create a person NAME with a ROLE; the password is asked for (never given as an argument)."""
        from hrdd.services import current_services
        password = _read_password(password_stdin)
        try:
            with current_services().store.begin() as conn:
                users.create_user(conn, name, role, password, audit.cli_actor())
        except users.UserError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"Created {role} {name}.")

    @users_group.command("list")
    @with_appcontext
    def list_():
        """List people, their roles and whether they are disabled."""
        from hrdd.services import current_services
        with current_services().store.engine.connect() as conn:
            for user in users.list_users(conn):
                state = " (disabled)" if user["disabled"] else ""
                click.echo(f"{user['name']}\t{user['role']}\t{user['created_at']}{state}")

    @users_group.command("password")
    @click.argument("name")
    @click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
    @with_appcontext
    def password(name, password_stdin):
        """Set a new password for NAME."""
        from hrdd.services import current_services
        try:
            with current_services().store.begin() as conn:
                users.set_password(conn, name, _read_password(password_stdin), audit.cli_actor())
        except users.UserError as exc:
            raise click.ClickException(str(exc)) from exc
        click.echo(f"Password changed for {name}.")

    for verb, flag in (("disable", True), ("enable", False)):
        def make(flag=flag, verb=verb):
            @users_group.command(verb)
            @click.argument("name")
            @with_appcontext
            def toggle(name):
                from hrdd.services import current_services
                try:
                    with current_services().store.begin() as conn:
                        users.set_disabled(conn, name, flag, audit.cli_actor())
                except users.UserError as exc:
                    raise click.ClickException(str(exc)) from exc
                click.echo(f"{name} {verb}d.")
            toggle.__doc__ = f"{verb.capitalize()} sign-in for NAME."
        make()
