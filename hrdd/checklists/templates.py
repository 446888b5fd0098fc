"""Checklist templates: load the YAML files in the checklists directory and validate them."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from hrdd.yamltext import load_yaml

SEVERITIES = ("low", "medium", "high", "critical")
ANSWER_TYPES = ("choice", "text", "date")
# The dropdown of every "choice" question, as shown in the workbook, and the canonical value of each.
CHOICES = {"Yes": "yes", "No": "no", "Unknown": "unknown", "N/A": "n/a"}
DEFAULT_TEMPLATE = "state-dept-2020"

_TEMPLATE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_QUESTION_ID = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_FLAG_ID = re.compile(r"^[A-Z]{2,4}-[0-9]+(\.[0-9]+)?$")


class TemplateError(Exception):
    """A template file is broken; the message names the file and every problem found."""

    def __init__(self, path: Path, problems: list[str]):
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))


class _Source(Schema):
    class Meta:
        unknown = RAISE

    title = fields.String(required=True, validate=validate.Length(min=1))
    label = fields.String(validate=validate.Length(min=1, max=40))  # short name for the Source column
    url = fields.Url(required=True, schemes={"http", "https"})


class _Step(Schema):
    class Meta:
        unknown = RAISE

    step = fields.Integer(required=True, strict=True, validate=validate.Range(0, 99))
    title = fields.String(required=True, validate=validate.Length(min=1))


class _RedFlag(Schema):
    class Meta:
        unknown = RAISE

    title = fields.String(required=True, validate=validate.Length(min=1))
    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES))
    raised_by = fields.String(required=True, validate=validate.OneOf(("engine", "checklist")))
    # The guidance step (1-8) a checklist-raised flag belongs to in the screening's steps.
    step = fields.Integer(strict=True, validate=validate.Range(0, 8), load_default=None)
    mitigation = fields.String(required=True, validate=validate.Length(min=1))


class _Question(Schema):
    class Meta:
        unknown = RAISE

    id = fields.String(required=True, validate=validate.Regexp(_QUESTION_ID, error="must be snake_case"))
    step = fields.Integer(required=True, strict=True)
    text = fields.String(required=True, validate=validate.Length(min=10, max=1000))
    guidance = fields.String(required=True, validate=validate.Length(min=5, max=2000))
    answer_type = fields.String(required=True, validate=validate.OneOf(ANSWER_TYPES))
    red_flag = fields.String(load_default=None)
    risky_answer = fields.String(load_default=None, validate=validate.OneOf(("yes", "no")))


# What the instructions' text may name in braces; the workbook fills them in for its screening.
PLACEHOLDERS = ("screening_id", "template_id", "upload_url", "download_url", "max_upload", "confirm_severities")
PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")


class _Instruction(Schema):
    class Meta:
        unknown = RAISE

    heading = fields.String(required=True, validate=validate.Length(min=1, max=100))
    text = fields.String(required=True, validate=validate.Length(min=1, max=4000))


class _Template(Schema):
    class Meta:
        unknown = RAISE

    id = fields.String(required=True, validate=validate.Regexp(_TEMPLATE_ID, error="must be a lower-case slug"))
    version = fields.String(required=True, validate=validate.Length(min=1, max=40))
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    framework = fields.String(required=True, validate=validate.Length(min=1))
    description = fields.String(required=True, validate=validate.Length(min=1))
    sources = fields.List(fields.Nested(_Source), required=True, validate=validate.Length(min=1))
    steps = fields.List(fields.Nested(_Step), required=True, validate=validate.Length(min=1))
    red_flags = fields.Dict(keys=fields.String(validate=validate.Regexp(_FLAG_ID, error="bad red flag id")),
                            values=fields.Nested(_RedFlag), load_default=dict)
    questions = fields.List(fields.Nested(_Question), required=True, validate=validate.Length(min=1))
    # The workbook's first sheet, "How to fill this in": a heading and its text per row.
    instructions = fields.List(fields.Nested(_Instruction), load_default=list, validate=validate.Length(max=60))


@dataclass(frozen=True)
class Question:
    """One question of a checklist."""

    id: str
    step: int
    text: str
    guidance: str
    answer_type: str
    red_flag: str | None = None
    risky_answer: str | None = None


@dataclass(frozen=True)
class RedFlagInfo:
    """What a template says about a red flag: title, default severity, who raises it, suggested mitigation."""

    id: str
    title: str
    severity: str
    raised_by: str
    mitigation: str
    step: int | None = None


@dataclass(frozen=True)
class Template:
    """A validated checklist template."""

    id: str
    version: str
    title: str
    framework: str
    description: str
    sources: tuple[dict, ...]
    steps: dict[int, str]
    red_flags: dict[str, RedFlagInfo]
    questions: tuple[Question, ...]
    path: Path | None = field(default=None, compare=False)
    instructions: tuple[dict, ...] = ()

    def question(self, question_id: str) -> Question | None:
        """The question with this id, or None."""
        return next((q for q in self.questions if q.id == question_id), None)

    @property
    def question_ids(self) -> tuple[str, ...]:
        """Every question id, in template order."""
        return tuple(q.id for q in self.questions)


def _cross_checks(data: dict) -> list[str]:
    problems = []
    for flag_id, flag in data["red_flags"].items():
        if flag["raised_by"] == "checklist" and flag["step"] is None:
            problems.append(f"red_flags.{flag_id}: a flag raised by the checklist needs the guidance step (1-8)")
    steps = [s["step"] for s in data["steps"]]
    if len(set(steps)) != len(steps):
        problems.append("steps: a step number appears twice")
    seen: set[str] = set()
    for index, q in enumerate(data["questions"]):
        where = f"questions[{index}] ({q['id']})"
        if q["id"] in seen:
            problems.append(f"{where}: duplicate question id")
        seen.add(q["id"])
        if q["step"] not in steps:
            problems.append(f"{where}: step {q['step']} is not listed under steps")
        if q["red_flag"] and q["red_flag"] not in data["red_flags"]:
            problems.append(f"{where}: red_flag {q['red_flag']} is not defined under red_flags")
        if q["answer_type"] == "choice" and bool(q["red_flag"]) != bool(q["risky_answer"]):
            problems.append(f"{where}: red_flag and risky_answer must be given together")
        if q["answer_type"] != "choice" and (q["red_flag"] or q["risky_answer"]):
            problems.append(f"{where}: only choice questions can raise a red flag")
    for index, row in enumerate(data["instructions"]):
        unknown = sorted({name for name in PLACEHOLDER_RE.findall(row["text"]) if name not in PLACEHOLDERS})
        if unknown:
            problems.append(f"instructions[{index}] ({row['heading']}): unknown placeholder(s) "
                            f"{', '.join('{' + n + '}' for n in unknown)}; known: "
                            f"{', '.join('{' + n + '}' for n in PLACEHOLDERS)}")
    return problems


def _messages(errors, prefix: str = "") -> list[str]:
    if isinstance(errors, dict):
        out = []
        for key, value in errors.items():
            out.extend(_messages(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(errors, list) and errors and all(isinstance(e, str) for e in errors):
        return [f"{prefix}: {' '.join(errors)}"]
    return [f"{prefix}: {errors}"]


def _forgive_yaml_types(raw: dict) -> None:
    # YAML reads an unquoted yes/no as a boolean and 2026.1 as a number; editors should not have to care.
    if isinstance(raw.get("version"), int | float):
        raw["version"] = str(raw["version"])
    for q in raw.get("questions") or ():
        if isinstance(q, dict) and isinstance(q.get("risky_answer"), bool):
            q["risky_answer"] = "yes" if q["risky_answer"] else "no"


def parse_template(text: str, path: Path) -> Template:
    """Validate one template's YAML text; raise TemplateError naming the file and every problem."""
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        raise TemplateError(path, [f"not valid YAML: {exc}"]) from None
    if not isinstance(raw, dict):
        raise TemplateError(path, ["the file must hold a mapping with id, version, title, questions, ..."])
    _forgive_yaml_types(raw)
    try:
        data = _Template().load(raw)
    except ValidationError as exc:
        raise TemplateError(path, _messages(exc.messages)) from None
    problems = _cross_checks(data)
    if path.stem != data["id"]:
        problems.append(f"id {data['id']!r} must match the file name ({path.stem})")
    if problems:
        raise TemplateError(path, problems)
    return Template(
        id=data["id"], version=data["version"], title=data["title"], framework=data["framework"],
        description=data["description"], sources=tuple(data["sources"]),
        steps={s["step"]: s["title"] for s in data["steps"]},
        red_flags={k: RedFlagInfo(id=k, **v) for k, v in data["red_flags"].items()},
        questions=tuple(Question(**q) for q in data["questions"]), path=path,
        instructions=tuple(data["instructions"]),
    )


def template_files(directory: Path) -> list[Path]:
    """The template files of a directory (``*.yaml`` and ``*.yml``), sorted by name."""
    return sorted([*Path(directory).glob("*.yaml"), *Path(directory).glob("*.yml")])


def check_directory(directory: Path) -> tuple[dict[str, Template], list[TemplateError]]:
    """Load every template of a directory, returning the good ones and an error for each bad file."""
    good: dict[str, Template] = {}
    bad: list[TemplateError] = []
    for path in template_files(directory):
        try:
            template = parse_template(path.read_text(encoding="utf-8"), path)
        except TemplateError as exc:
            bad.append(exc)
            continue
        except (OSError, UnicodeDecodeError) as exc:
            bad.append(TemplateError(path, [f"cannot read the file: {exc}"]))
            continue
        clash = _clashing_flags(template, good.values())
        if clash:
            bad.append(TemplateError(path, clash))
            continue
        good[template.id] = template
    return good, bad


def _clashing_flags(template: Template, others) -> list[str]:
    # A checklist-raised flag id means one thing across templates, or screenings would disagree.
    problems = []
    for other in others:
        for flag_id, flag in template.red_flags.items():
            theirs = other.red_flags.get(flag_id)
            if flag.raised_by == "checklist" and theirs and (theirs.severity, theirs.step, theirs.raised_by) != (
                    flag.severity, flag.step, flag.raised_by):
                problems.append(f"red_flags.{flag_id}: defined differently in {other.path.name}")
    return problems


_cache: dict[Path, tuple[tuple, dict[str, Template]]] = {}
_checked_at: dict[Path, float] = {}


def load_templates(directory: Path, max_age: float = 0.0) -> dict[str, Template]:
    """Every template of a directory by id; raise the first TemplateError if any file is broken.

    Results are cached until a file in the directory is added, removed or modified; with ``max_age``
    the directory is looked at only when the last look is older than that many seconds.
    """
    if not isinstance(directory, Path):
        directory = Path(directory)
    now = time.monotonic()
    cached = _cache.get(directory)
    if cached and now - _checked_at.get(directory, 0.0) < max_age:
        return cached[1]
    _checked_at[directory] = now
    files = template_files(directory)
    stamp = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    if cached and cached[0] == stamp:
        return cached[1]
    good, bad = check_directory(directory)
    if bad:
        raise bad[0]
    if not good:
        raise TemplateError(directory, ["no checklist templates (*.yaml) found"])
    _cache[directory] = (stamp, good)
    return good


def get_template(directory: Path, template_id: str | None) -> Template:
    """The template with this id (the default when None); KeyError names the known ids."""
    templates = load_templates(directory)
    wanted = template_id or DEFAULT_TEMPLATE
    if wanted not in templates:
        raise KeyError(f"unknown checklist template {wanted!r}; known: {', '.join(sorted(templates))}")
    return templates[wanted]
