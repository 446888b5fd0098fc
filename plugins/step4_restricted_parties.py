"""Step 4: the end-user and every party screened against restricted-party lists (RF-4.3)."""

from __future__ import annotations

from hrdd.flags import make_flag
from hrdd.hookspecs import hookimpl
from hrdd.parties import service


def _screen(context, name: str, country: str | None) -> service.NameResult:
    # Tailoring re-runs every check on variants of the same deal: screen each name once per screening.
    key = ("parties", name, country)
    result = context.cache.get(key)
    if result is None:
        result = context.cache[key] = service.screen_name(context.store, context.reference.data_dir,
                                                          context.policy, name, country, _matcher(context))
    return result


def _matcher(context):
    matcher = context.cache.get("parties:matcher")
    if matcher is None:
        matcher = context.cache["parties:matcher"] = service.current_matcher(
            context.store, context.reference.data_dir, context.policy)
    return matcher


@hookimpl
def hrdd_check(transaction, context):
    """RF-4.3 for each of the end-user and the parties that matches a list: confirmed critical, possible high."""
    eu = transaction.end_user
    # Names and countries only: the tailoring re-runs reuse the flags.
    return context.memo(("RF-4.3", eu.name, eu.country, transaction.parties),
                        lambda: _party_flags(transaction, context))


def _party_flags(transaction, context) -> list:
    eu = transaction.end_user
    severity = context.policy.section("parties").get("severity") or {}
    flags = []
    # A party listed twice (same role, name and country) is one party: one flag, one set of matches.
    for role, name, country in dict.fromkeys([("end-user", eu.name, eu.country),
                                              *((p.role, p.name, p.country) for p in transaction.parties)]):
        result = _screen(context, name, country)
        if not result.matches:
            continue
        best = result.matches[0]
        confirmed = best["status"] == "confirmed"
        others = len(result.matches) - 1
        evidence = (f"{role} {name!r} ({country or 'country not given'}): {best['explanation']['text']}; "
                    f"entry {best['entry_id']}, list version {best['list_version']}"
                    + (f"; {others} more candidate(s) in the matches" if others else "") + ".")
        party = {"role": role, "name": name, "country": country}
        flags.append(make_flag(
            context, "RF-4.3", evidence,
            severity_key="RF-4.3" if confirmed else "RF-4.3-possible",
            default_severity=severity.get("confirmed" if confirmed else "possible",
                                          "critical" if confirmed else "high"),
            party=party, matches=[{**m, "party": party} for m in result.matches],
            cleared=[{"entry_id": m["entry_id"], "false_positive": m["false_positive"]} for m in result.suppressed],
        ))
    return flags


@hookimpl
def hrdd_versions(context):
    """The restricted-party list version every screening used: ``parties`` (the newest version id of the
    active lists, what ``hrdd rescreen --since-list-version`` compares) and ``parties_lists`` (which lists)."""
    return dict(_matcher(context).versions)


@hookimpl
def hrdd_startup(app):
    """Refuse to start on an invalid ``parties`` policy section; offer the allowlist to the workspace."""
    from hrdd.parties.allowlist import WorkspaceAllowlist
    services = app.extensions["hrdd"]
    try:
        service.policy_settings(services.policy)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"policy file {services.policy.path}: {exc}") from exc
    app.extensions["hrdd_party_allowlist"] = WorkspaceAllowlist(app)


@hookimpl
def hrdd_warm_up(app):
    """Build the name index of the active lists (loading the shipped list into an empty store) before serving."""
    services = app.extensions["hrdd"]
    service.current_matcher(services.store, services.reference.data_dir, services.policy)


@hookimpl
def hrdd_register_routes(app):
    """POST /v1/parties/screen, GET /v1/parties/lists and the false-positive endpoints."""
    from hrdd.parties.api import bp
    app.register_blueprint(bp)


@hookimpl
def hrdd_register_commands(cli):
    """``hrdd lists`` and ``hrdd lists load FILE`` (re-screening is ``hrdd rescreen``, from the cases plugin)."""
    from hrdd.parties.commands import register
    register(cli)
