"""The plugin contract: every hook hrdd calls, with what it receives and what it must return."""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("hrdd")
hookimpl = pluggy.HookimplMarker("hrdd")


@hookspec
def hrdd_check(transaction, context):
    """Examine a transaction and return a list of ``hrdd.model.RedFlag`` (or None when nothing applies).

    Every step check (capabilities, end-user, country laws, stakeholders, safeguards, grievances) is a
    plugin implementing this hook; the engine only collects the flags and decides. ``context`` is an
    ``hrdd.engine.ScreeningContext`` giving the reference data, the policy, the store (may be None) and a
    per-screening ``cache`` dict. Flags that concern particular items or capabilities should say so in
    ``flag.data["items"]`` (SKUs) and ``flag.data["capabilities"]`` so the engine can work out tailoring.
    Tailoring calls the hook again on variants of the deal that differ only in item capabilities; a check
    can keep flags that do not depend on the items with ``context.memo(key, compute)``, whose key names
    the check and every input the flags depend on, and the variants then reuse them.
    """


@hookspec
def hrdd_safeguards(transaction, flags, decision, context):
    """Return a list of ``hrdd.model.Safeguard`` that a screening with these flags and decision calls for.

    The clause library contributes contract clauses here; other plugins may add technical or process
    safeguards. Duplicates (same id) are merged by the engine.
    """


@hookspec
def hrdd_safeguard_catalogue():
    """Return every ``hrdd.model.Safeguard`` this plugin can call for, whatever the deal (a list).

    A reviewer approving with conditions may require a safeguard the screening did not call for: the ids
    a decision may name are the screening's safeguards and these. An id named by no plugin is refused.
    """


@hookspec
def hrdd_answer_ids():
    """Return the checklist question ids (strings) this plugin reads from a transaction's ``answers``.

    A transaction whose ``answers`` name any other id is refused with a 422 that lists the known ids, so
    that a misspelt id (``past_missuse``) cannot silently drop the flag its answer would raise. The
    checklist plugin returns the question ids of every loaded template; a check that reads an answer
    returns the ids it reads. When no plugin returns any id, ``answers`` keys are not checked; a plugin
    that cannot say right now (its templates fail to load) returns ``("*",)`` and nothing is refused.
    Requests stored before (re-screening, a checklist upload) are not checked again.
    """


@hookspec
def hrdd_answers_on_record(transaction, source, store):
    """Return answers recorded for this deal outside the request, or None.

    ``{question id: {"answer": "yes" | "no" | "n/a", "source": str, "recorded_at": str, ...}}``. Called
    whenever a request is screened with a store (not offline): for a dry run or a re-screening's
    comparison before it is screened, for a stored screening inside the storing transaction once the
    deal is locked (then screened again with the answers, if there are any); with the
    validated request as a dict and where it came from (``source``: "api", "checklist", "rescreen" or an
    adapter's name). Where the request leaves a question out or answers ``unknown``, the core screens it
    with the recorded answer; each recorded answer is listed in the screening's ``answers_on_record``, with
    ``used: false`` and ``request_answer`` where the request gave another known answer (which is kept),
    unless the entry says ``request_wins: true``. An entry with ``not_used_because`` (why, as a sentence)
    is never screened: where it would have filled the question or differed from the request's answer it
    is listed with ``used: false`` and that sentence, without ``request_answer``. Whatever is returned must
    compare equal when read again with nothing changed (the storing transaction compares the two). The
    first plugin to record a question id wins; ids no
    longer known are dropped. A screening prepared before the lock (a re-screening) is screened again
    there only if the answers changed meanwhile. The checklist plugin
    returns the newest known answer per question of all the deal's uploads made for the request's
    end-user (``request_wins`` when the request is itself an upload); one given on other material facts
    than the request's names them in ``facts_changed`` and, unless it raises a red flag, is not used.
    """


@hookspec
def hrdd_versions(context):
    """Return a dict of dataset name -> version string to record in every screening's ``versions.data``."""


@hookspec
def hrdd_data_sources(context):
    """Return a list of dicts describing shipped datasets for ``hrdd data info`` and reports.

    Keys: ``name``, ``file``, ``source``, ``version``, ``rows``, ``terms``.
    """


@hookspec(firstresult=True)
def hrdd_render_document(kind, screening, options, app):
    """Render a document for a stored screening, or return None when this plugin does not own ``kind``.

    ``kind`` is e.g. ``"rider.docx"`` or ``"checklist.xlsx"``; ``screening`` is the stored screening dict
    (the response body); ``options`` the request's query arguments as a dict. Return a tuple
    ``(body_bytes, mimetype, download_filename)``. Raise ``hrdd.errors.ApiError`` for bad options.
    """


@hookspec(firstresult=True)
def hrdd_webhook_adapter(name, app):
    """Return the adapter object that owns ``POST /v1/hooks/<name>``, or None when it is not yours.

    The adapter object has ``handle(request, services) -> flask.Response`` and is responsible for
    authenticating the sender the vendor's way, parsing, deduplicating and answering.
    """


@hookspec
def hrdd_screening_stored(screening, connection, store, policy):
    """Called inside the database transaction that stores a screening (dict), before commit.

    Write rows that must be atomic with the screening here (for example an outbox entry for write-back
    or a review case). ``connection`` is the SQLAlchemy connection of that transaction; ``policy`` the
    ``hrdd.policy.Policy`` in force (None for a store opened without one, such as a migration's).
    """


@hookspec
def hrdd_gate_changed(transaction_id, reference, gate, previous_gate, reasons, screening, cause, connection, store):
    """Called when something other than a new screening changed a stored deal's gate, before commit.

    A reviewer's decision, a grievance assessed as credible (or no longer), closed or linked to the deal,
    an executed rider: whatever runs in ``Services.changing_gates``. Called once per deal whose effective
    gate differs from before the change (not when only the reasons changed, except for a reviewer's request
    for information: then also with ``gate`` equal to ``previous_gate``, so the CRM shows what the reviewer
    asked), inside the database transaction of the change; ``connection`` is its SQLAlchemy connection, so
    rows written here (an outbox entry for the CRM write-back, say) commit or roll back with it.
    ``reference`` is the deal's business reference (system, object_type, object_id), ``gate`` and
    ``reasons`` its gate now and why, ``previous_gate`` its gate before, ``screening`` its newest stored
    screening, ``cause`` what changed, in words. A new screening calls ``hrdd_screening_stored`` instead.
    """


@hookspec
def hrdd_register_routes(app):
    """Register extra blueprints or routes on the Flask app (documents, web workspace, adapters)."""


@hookspec
def hrdd_register_commands(cli):
    """Add click commands to the ``hrdd`` command group."""


@hookspec
def hrdd_startup(app):
    """Called once when the app is created, after the store is ready; validate plugin data here.

    Raise ``hrdd.errors.StartupError`` with a one-line message naming the file and the problem to refuse
    start-up on broken data: ``hrdd`` prints it without a traceback and exits 1.
    """


@hookspec
def hrdd_warm_up(app):
    """Called by ``hrdd serve`` once before it serves (before forking workers): load now what the first
    screening would otherwise load lazily (indexes, parsed templates).

    Work done here is shared by every worker process (copy-on-write) and kept out of the garbage
    collector's scans; a request is not kept waiting for it. Return nothing; raise to refuse to serve.
    """


@hookspec
def hrdd_gate_factors(transaction_id, screening, store, policy):
    """Return what, beyond the engine's decision, governs the gate of a transaction right now.

    ``screening`` is the latest stored screening dict of the transaction, or a dry run's screening (not
    stored: its ``id`` is None, ``dry_run`` true) previewing the gate it would get if stored now; then
    ``transaction_id`` is the stored deal's id, or None when the deal has never been stored. Return a list
    of dicts:
    ``{"kind": "override", "gate": <gate>, "reason": str, "at": iso8601}`` for a reviewer's decision that
    replaces the engine's gate (the latest override wins), or ``{"kind": "hold", "reason": str}`` for a
    condition that keeps the gate at ``hold`` at least (an undecided escalation at order stage, a rider
    not executed, a material change since the quote, an open credible grievance). A ``block`` is never
    lowered by a hold. The order stage is ``hrdd.model.ORDER_STAGES`` (order, renewal, post-sale), one stage
    for every hold; ``policy`` is the ``hrdd.policy.Policy`` in force (what is material:
    ``hrdd.material.rules_of``). A factor may also carry ``"review"`` (the reviewer's decision in force, as
    the API's ``review`` field), ``"condition"`` (the screening condition a hold is about, e.g.
    ``rider_executed``) and ``"instead_of_engine_reason": True`` (a hold whose reason replaces the engine's
    for its own ``hold``: a reviewer's request for information); ``{"kind": "met", "condition": <id>}`` says
    a condition of the screening is met now (``outstanding_conditions``) without moving the gate, and
    ``{"kind": "condition", "condition": <id>}`` that the deal owes a condition not met yet, without a hold.
    A condition a factor names that the screening does not list is added to ``outstanding_conditions``
    unless met (``hrdd.gate.required_conditions``: the rider an approval by two reviewers requires).
    """
