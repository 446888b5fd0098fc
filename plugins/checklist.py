"""Excel due diligence checklists: the workbook download, the upload endpoint, CLI commands and the
red flags that checklist answers raise."""

from __future__ import annotations

from pathlib import Path

import click

from hrdd.checklists import on_record, service, withdrawals
from hrdd.checklists.templates import CHOICES, TemplateError, check_directory, load_templates
from hrdd.hookspecs import hookimpl
from hrdd.model import RedFlag
from hrdd.schemas import ANY_ANSWER_ID

_DISPLAY = {v: k for k, v in CHOICES.items()}


@hookimpl
def hrdd_render_document(kind, screening, options, app):
    """Render ``checklist.xlsx`` (``?template=`` picks the template); other kinds are not ours."""
    if kind != "checklist.xlsx":
        return None
    return service.render_checklist(screening, options or {}, app)


@hookimpl
def hrdd_register_routes(app):
    """POST /v1/screenings/<id>/checklist."""
    app.register_blueprint(service.bp)


@hookimpl
def hrdd_startup(app):
    """Refuse to start when a checklist template is broken; the error names the file and the problems."""
    load_templates(service.checklists_dir(app.config))
    service.template_for(app.config, None)


@hookimpl
def hrdd_screening_stored(screening, connection, store):
    """Store an uploaded checklist in the same database transaction as the screening it produced."""
    service.store_pending_upload(screening, connection)


@hookimpl
def hrdd_answers_on_record(transaction, source, store):
    """The known answers of the deal's checklist uploads (an upload's own known answers replace them).

    Those given on other facts than the request's are not used unless they raise a red flag (see
    ``on_record.answers_on_record``).
    """
    if store is None:
        return None
    return on_record.answers_on_record(store, transaction, request_wins=source == "checklist",
                                       risky=_risky_answers)


_risky_answers_of: list = [None, on_record.ENGINE_RISKY_ANSWERS]


def _risky_answers() -> dict[str, frozenset[str]]:
    """Question id -> the answers that raise a red flag (the engine's and the loaded templates'), cached per
    loaded template set. With the templates broken only the engine's count: more answers on changed facts
    go unused, never fewer."""
    try:
        templates = load_templates(service.checklists_dir(), max_age=RECHECK_SECONDS)
    except TemplateError:
        return on_record.ENGINE_RISKY_ANSWERS
    if _risky_answers_of[0] is not templates:
        _risky_answers_of[:] = [templates, on_record.risky_answers(templates)]
    return _risky_answers_of[1]


@hookimpl
def hrdd_gate_factors(transaction_id, screening, store):
    """Hold while a request's answer differs from the deal's uploaded checklist, and while an answer an
    upload withdrew (one that had raised a flag of a severity the policy names) awaits a reviewer."""
    holds = on_record.conflict_holds(screening)
    if transaction_id is not None:
        with store.reading() as conn:
            holds += withdrawals.pending_holds(conn, transaction_id, screening)
    return holds


@hookimpl
def hrdd_answer_ids():
    """The question ids of every loaded checklist template (an upload's answers use them)."""
    try:
        templates = load_templates(service.checklists_dir(), max_age=RECHECK_SECONDS)
    except TemplateError:
        # Start-up refuses broken templates; an edit broken since then must not refuse every deal.
        return (ANY_ANSWER_ID,)
    return _question_ids(templates)


_question_ids_of: list = [None, frozenset()]


def _question_ids(templates) -> frozenset[str]:
    if _question_ids_of[0] is not templates:
        _question_ids_of[:] = [templates, frozenset(q.id for t in templates.values() for q in t.questions)]
    return _question_ids_of[1]


# Screening runs this check on every request: look at the template directory at most once a second
# (edits still show within a second) and index the answer-raised flags once per loaded template set.
RECHECK_SECONDS = 1.0
_raised_index: list = [None, {}]


def _checklist_raised(templates) -> dict[str, list[tuple]]:
    """Question id -> [(template, question, flag)] for questions whose risky answer raises a checklist flag."""
    if _raised_index[0] is not templates:
        index: dict[str, list[tuple]] = {}
        for t in templates.values():
            for q in t.questions:
                flag = t.red_flags.get(q.red_flag) if q.red_flag else None
                if flag is not None and flag.raised_by == "checklist":
                    index.setdefault(q.id, []).append((t, q, flag))
        _raised_index[:] = [templates, index]
    return _raised_index[1]


@hookimpl
def hrdd_check(transaction, context):
    """Raise the flags that templates mark ``raised_by: checklist`` when a question gets its risky answer.

    One flag per id, whichever template and however many questions raised it; the severity can be
    overridden in the policy file's ``severities`` section like any other flag.
    """
    if not transaction.answers:
        return None
    # Only the answers matter, and tailoring leaves them alone.
    return context.memo(("checklist", tuple(transaction.answers.items())),
                        lambda: _answer_flags(transaction, context))


def _answer_flags(transaction, context) -> list[RedFlag] | None:
    try:
        templates = load_templates(service.checklists_dir(), max_age=RECHECK_SECONDS)
    except TemplateError:
        return None  # start-up refuses broken templates; screening offline does not depend on them
    hits: dict[str, tuple] = {}
    index = _checklist_raised(templates)
    raised = ((t, q, f) for qid, answer in transaction.answers.items() for t, q, f in index.get(qid, ())
              if answer == q.risky_answer)
    for template, q, flag in raised:
        entry = hits.setdefault(flag.id, (flag, template, []))
        if q.id not in entry[2]:
            entry[2].append(q.id)
    flags = []
    for flag_id, (flag, template, questions) in hits.items():
        answered = "; ".join(f"{qid} = {_DISPLAY.get(transaction.answer(qid))}" for qid in questions)
        flags.append(RedFlag(
            id=flag_id, step=flag.step, severity=context.policy.severity(flag_id, flag.severity),
            title=flag.title, evidence=f"Due diligence checklist answer: {answered}.",
            source=f"{template.sources[0].get('label') or template.sources[0]['title']} "
                   f"(checklist {template.id} {template.version})",
            data={"questions": questions, "template": template.id}))
    return flags


@hookimpl
def hrdd_register_commands(cli):
    """``hrdd checklist SCREENING_ID -o FILE`` and ``hrdd checklists check``."""
    from flask import current_app
    from flask.cli import with_appcontext

    from hrdd.errors import ApiError
    from hrdd.services import current_services

    @cli.command("checklist")
    @click.argument("screening_id")
    @click.option("-o", "--output", "output", required=True, type=click.Path(dir_okay=False, writable=True),
                  help="Where to write the workbook (.xlsx).")
    @click.option("--template", default=None, help="Template id (default: HRDD_CHECKLIST_TEMPLATE or state-dept-2020).")
    @with_appcontext
    def checklist(screening_id, output, template):
        """Write the due diligence checklist workbook of a stored screening."""
        screening = current_services().store.get_screening(screening_id)
        if screening is None:
            raise click.ClickException(f"screening {screening_id!r} does not exist")
        try:
            body, _, _ = service.render_checklist(screening, {"template": template}, current_app)
        except ApiError as exc:
            raise click.ClickException(exc.message) from exc
        Path(output).write_bytes(body)
        click.echo(f"wrote {output} ({len(body)} bytes) for screening {screening_id}")

    @click.group("checklists")
    def checklists():
        """Checklist templates."""

    cli.add_command(checklists)  # a plain click group: checking templates needs no app or database

    @checklists.command("check")
    @click.argument("directory", required=False, type=click.Path(file_okay=False, exists=True))
    def check(directory):
        """Validate every template in DIRECTORY (default: HRDD_CHECKLISTS_DIR, else the checklists/ shipped with hrdd)."""
        path = Path(directory) if directory else service.checklists_dir({})
        good, bad = check_directory(path)
        for template in good.values():
            raised = sum(1 for f in template.red_flags.values() if f.raised_by == "checklist")
            click.echo(f"ok    {template.path.name}: {template.id} {template.version}, "
                       f"{len(template.questions)} questions, {len(template.red_flags)} red flags "
                       f"({raised} raised by answers)")
        for error in bad:
            click.echo(f"ERROR {error.path}:", err=True)
            for problem in error.problems:
                click.echo(f"        {problem}", err=True)
        if bad or not good:
            raise click.ClickException(f"{len(bad)} broken template(s)" if bad else f"no templates in {path}")
