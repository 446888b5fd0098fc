"""Load and validate the clause library (clause files, the rider frame and the variable registry)."""

from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from hrdd.riders.conditions import Facts, applies, validate_conditions
from hrdd.riders.frame import Frame, parse_frame
from hrdd.riders.markup import MarkupError, Paragraph, parse_body
from hrdd.riders.variables import VariableSpec, parse_registry
from hrdd.riders.vocabulary import Vocabulary
from hrdd.yamltext import load_yaml

log = logging.getLogger("hrdd.riders")
KINDS = {"recitals": "recital", ".": "clause", "technical": "technical"}
ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{1,33}$")
VERSION_PATTERN = re.compile(r"^\d+(\.\d+){0,2}([-+][0-9A-Za-z.-]+)?$")
SCHEDULE_REFS = ("schedule:findings", "schedule:technical")
SURVIVORS_REF = "clauses:survives"
COMMON_KEYS = {"id", "title", "version", "order", "rationale", "variables"}
KEYS = {
    "clause": (COMMON_KEYS | {"applies_when"}, {"survives"}),
    "recital": (COMMON_KEYS | {"applies_when"}, set()),
    "technical": (COMMON_KEYS | {"capability"}, set()),
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with one file of the library."""

    file: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.message}"


class ClauseLibraryError(Exception):
    """The clause library cannot be used; ``problems`` names each file and what is wrong with it."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        lines = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"clause library has {len(problems)} problem(s):\n{lines}")


@dataclass(frozen=True)
class Clause:
    """One clause, recital or technical-schedule part, parsed from its file."""

    kind: str
    id: str
    title: str
    version: str
    order: int
    rationale: str
    variables: tuple[str, ...]
    applies_when: Any
    paragraphs: tuple[Paragraph, ...]
    file: str
    digest: str
    capability: str | None = None
    survives: bool = False

    @cached_property
    def _refs(self) -> frozenset[str]:
        return frozenset().union(*(p.names("ref") for p in self.paragraphs))

    @cached_property
    def _variables(self) -> frozenset[str]:
        return frozenset().union(*(p.names("var") for p in self.paragraphs))

    def refs(self) -> frozenset[str]:
        """Every cross-reference the text makes."""
        return self._refs

    def used_variables(self) -> frozenset[str]:
        """Every variable the text uses."""
        return self._variables

    def applies(self, facts: Facts) -> bool:
        """True when the clause's conditions hold (a technical part: when its capability is sold)."""
        if self.kind == "technical":
            return self.capability in facts.capabilities
        return applies(self.applies_when, facts)


@dataclass
class Library:
    """The whole clause library, validated."""

    directory: Path
    frame: Frame
    variables: dict[str, VariableSpec]
    recitals: list[Clause]
    clauses: list[Clause]
    technical: list[Clause]
    file_digests: dict[str, str] = field(default_factory=dict)
    selections: dict = field(default_factory=dict, repr=False)

    @cached_property
    def by_id(self) -> dict[str, Clause]:
        """Operative clauses by id."""
        return {c.id: c for c in self.clauses}

    def all_texts(self) -> list[Clause]:
        """Recitals, clauses and technical parts, in document order."""
        return [*self.recitals, *self.clauses, *self.technical]


_SPLIT = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*\r?\n?(.*)\Z", re.S)


def _parse_clause_file(path: Path, kind: str, rel: str,
                       vocabulary: Vocabulary) -> tuple[Clause | None, list[Problem]]:
    raw = path.read_bytes()
    problems: list[Problem] = []

    def bad(message: str) -> tuple[None, list[Problem]]:
        problems.append(Problem(rel, message))
        return None, problems

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return bad(f"not UTF-8 text ({exc.reason} at byte {exc.start})")
    # Files saved on Windows (CRLF) or old Macs (CR) read as if they had Unix line ends.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    match = _SPLIT.match(text.lstrip("\ufeff"))
    if not match:
        return bad("no front matter: the file must start with a '---' line, the YAML fields, and a '---' line")
    try:
        meta = load_yaml(match[1])
    except yaml.YAMLError as exc:
        return bad(f"front matter is not valid YAML{yaml_error_text(exc, first_line=2)}")
    if not isinstance(meta, dict):
        return bad("front matter must be a YAML mapping of fields")
    required, optional = KEYS[kind]
    missing = sorted(required - meta.keys())
    if missing:
        problems.append(Problem(rel, f"missing front matter field(s): {', '.join(missing)}"))
    unknown = sorted(meta.keys() - required - optional)
    if unknown:
        problems.append(Problem(rel, f"unknown front matter field(s): {', '.join(map(str, unknown))}; "
                                     f"allowed: {', '.join(sorted(required | optional))}"))
    if missing:
        return None, problems
    clause_id, version = meta["id"], str(meta["version"])
    if not isinstance(clause_id, str) or not ID_PATTERN.match(clause_id):
        problems.append(Problem(rel, f"id {clause_id!r} must be 2-34 characters: lower-case letters, digits, '-'"))
    if not VERSION_PATTERN.match(version):
        problems.append(Problem(rel, f"version {version!r} must look like 1.0.0"))
    for key in ("title", "rationale"):
        if not isinstance(meta[key], str) or not meta[key].strip():
            problems.append(Problem(rel, f"{key} must be non-empty text"))
    if not isinstance(meta["order"], int) or isinstance(meta["order"], bool):
        problems.append(Problem(rel, f"order must be a whole number, not {meta['order']!r}"))
    variables = meta["variables"]
    if not isinstance(variables, list) or not all(isinstance(v, str) for v in variables):
        problems.append(Problem(rel, "variables must be a list of variable names (use [] for none)"))
        variables = []
    if "survives" in meta and not isinstance(meta["survives"], bool):
        problems.append(Problem(rel, "survives must be true or false"))
    if kind == "technical":
        if meta["capability"] not in vocabulary.capability_ids:
            problems.append(Problem(rel, f"unknown capability {meta['capability']!r}; "
                                         f"known: {', '.join(vocabulary.capability_ids)}"))
    else:
        problems.extend(Problem(rel, m) for m in validate_conditions(meta["applies_when"], vocabulary))
    try:
        paragraphs = parse_body(match[2])
    except MarkupError as exc:
        problems.append(Problem(rel, str(exc)))
        paragraphs = ()
    if not paragraphs and not problems:
        problems.append(Problem(rel, "the clause has no text after the front matter"))
    if problems:
        return None, problems
    clause = Clause(
        kind=kind, id=clause_id, title=meta["title"].strip(), version=version, order=meta["order"],
        rationale=" ".join(meta["rationale"].split()), variables=tuple(variables),
        applies_when=meta.get("applies_when"), paragraphs=paragraphs, file=rel,
        digest=hashlib.sha256(raw).hexdigest(), capability=meta.get("capability"),
        survives=bool(meta.get("survives", False)),
    )
    used = clause.used_variables()
    if set(variables) != used:
        if used - set(variables):
            problems.append(Problem(rel, f"uses undeclared variable(s): {', '.join(sorted(used - set(variables)))}"))
        if set(variables) - used:
            problems.append(Problem(rel, f"declares unused variable(s): {', '.join(sorted(set(variables) - used))}"))
    return clause, problems


def _read_yaml(path: Path, rel: str, problems: list[Problem]) -> Any:
    if not path.is_file():
        problems.append(Problem(rel, "file is missing"))
        return None
    try:
        return load_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        problems.append(Problem(rel, f"not UTF-8 text ({exc.reason} at byte {exc.start})"))
    except yaml.YAMLError as exc:
        # One line, as start-up prints it: where the parser gave up and why, not PyYAML's multi-line dump.
        problems.append(Problem(rel, f"not valid YAML{yaml_error_text(exc, first_line=1)}"))
    return None


def yaml_error_text(exc: yaml.YAMLError, first_line: int) -> str:
    """' at line 8, column 9: did not find expected ',' or ']' (while parsing a flow sequence started at
    line 7)': a YAML error on one line, numbered as in the file whose line ``first_line`` the text starts at."""
    mark, context = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    if mark is None:
        return f": {' '.join(str(exc).split())}"
    text = f" at line {mark.line + first_line}, column {mark.column + 1}: {getattr(exc, 'problem', None) or exc}"
    if getattr(exc, "context", None) and context is not None and context.line != mark.line:
        text += f" ({exc.context} started at line {context.line + first_line})"
    return text


def _check_references(library: Library, problems: list[Problem]) -> None:
    ids = library.by_id
    texts: list[tuple[str, set[str], set[str]]] = [
        (c.file, c.refs(), c.used_variables()) for c in library.all_texts()]
    texts.append(("rider.yaml", library.frame.refs(), library.frame.used_variables()))
    for file, refs, used in texts:
        for ref in sorted(refs):
            if ref not in ids and ref not in SCHEDULE_REFS and ref != SURVIVORS_REF:
                problems.append(Problem(file, f"[[{ref}]] refers to no clause; use a clause id, "
                                              f"{', '.join(SCHEDULE_REFS)} or {SURVIVORS_REF}"))
        for name in sorted(used):
            if name not in library.variables and not (file == "rider.yaml" and name in ("page", "pages")):
                problems.append(Problem(file, f"variable {{{{{name}}}}} is not in variables.yaml"))
    for clause in library.clauses:
        if "schedule:technical" in clause.refs() and not _requires_technical(clause):
            problems.append(Problem(clause.file, "refers to [[schedule:technical]] but can apply without a "
                                                 "technical schedule; add 'technical_schedule: true' to each "
                                                 "condition set"))


def _requires_technical(clause: Clause) -> bool:
    conditions = clause.applies_when
    return conditions != "always" and all(s.get("technical_schedule") is True for s in conditions)


def _check_unique(items: list[Clause], what: str, problems: list[Problem]) -> None:
    seen: dict[str, str] = {}
    for item in items:
        key = item.capability if what == "capability" else item.id
        if key in seen:
            problems.append(Problem(item.file, f"duplicate {what} {key!r} (also in {seen[key]})"))
        seen[key] = item.file


def _check_orders(items: list[Clause], problems: list[Problem]) -> None:
    # Two texts at the same position would be numbered in the order of their ids: a lawyer who moved one
    # would not see which came first.
    seen: dict[int, str] = {}
    for item in items:
        if item.order in seen:
            problems.append(Problem(item.file, f"order {item.order} is also the order of {seen[item.order]}; "
                                               "give each its own position"))
        else:
            seen[item.order] = item.file


def load_library_uncached(directory: str | Path, vocabulary: Vocabulary | None = None) -> Library:
    """Read and validate every file of the library; raise ClauseLibraryError listing all problems."""
    directory = Path(directory)
    vocabulary = vocabulary or Vocabulary()
    problems: list[Problem] = []
    if not directory.is_dir():
        raise ClauseLibraryError([Problem(str(directory), "clause directory does not exist")])
    registry_raw = _read_yaml(directory / "variables.yaml", "variables.yaml", problems)
    variables, messages = parse_registry(registry_raw) if registry_raw is not None else ({}, [])
    problems.extend(Problem("variables.yaml", m) for m in messages)
    frame_raw = _read_yaml(directory / "rider.yaml", "rider.yaml", problems)
    frame, messages = parse_frame(frame_raw) if frame_raw is not None else (None, [])
    problems.extend(Problem("rider.yaml", m) for m in messages)
    for flag_id in frame.withheld if frame is not None else ():
        if flag_id not in vocabulary.flag_ids:
            problems.append(Problem("rider.yaml", f"findings.withheld or findings.restated names unknown red flag {flag_id!r}"))
    parsed: dict[str, list[Clause]] = {"recital": [], "clause": [], "technical": []}
    for sub, kind in KINDS.items():
        folder = directory / sub
        for path in sorted(folder.glob("*.md")) if folder.is_dir() else ():
            if path.name.lower() == "readme.md":
                continue
            clause, clause_problems = _parse_clause_file(path, kind, path.relative_to(directory).as_posix(),
                                                         vocabulary)
            problems.extend(clause_problems)
            if clause is not None:
                parsed[kind].append(clause)
    if not parsed["clause"]:
        problems.append(Problem(directory.name, "the library has no clause files"))
    _check_unique(parsed["recital"] + parsed["clause"] + parsed["technical"], "id", problems)
    _check_unique(parsed["technical"], "capability", problems)
    for kind in ("recital", "clause", "technical"):
        _check_orders(parsed[kind], problems)
    present = {t.capability for t in parsed["technical"]}
    for capability in vocabulary.capabilities_needing_schedule:
        if capability not in present:
            problems.append(Problem("technical/", f"no technical-safeguards part for capability {capability!r}"))
    if frame is None or problems:
        raise ClauseLibraryError(problems)
    library = Library(directory, frame, variables, *(sorted(parsed[k], key=lambda c: (c.order, c.id))
                                                     for k in ("recital", "clause", "technical")))
    _check_references(library, problems)
    if problems:
        raise ClauseLibraryError(problems)
    library.file_digests = {c.file: c.digest for c in library.all_texts()}
    for name in ("rider.yaml", "variables.yaml"):
        library.file_digests[name] = hashlib.sha256((directory / name).read_bytes()).hexdigest()
    return library


_cache: dict[tuple[str, Vocabulary], tuple[tuple, float, Library]] = {}
_lock = threading.Lock()
# Screening calls this for every transaction: look at the files' timestamps at most this often.
RECHECK_SECONDS = 1.0


def _fingerprint(directory: Path) -> tuple:
    entries = []
    for path in sorted(directory.rglob("*")):
        if path.suffix in (".md", ".yaml") and path.is_file():
            stat = path.stat()
            entries.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(entries)


def load_library(directory: str | Path, vocabulary: Vocabulary | None = None, strict: bool = False) -> Library:
    """The validated library, re-read only when a file in the directory changed.

    When a file was changed into a broken state, the last valid library is kept unless ``strict``.
    """
    vocabulary = vocabulary or Vocabulary()
    key = (str(directory), vocabulary)
    now = time.monotonic()
    with _lock:
        cached = _cache.get(key)
    if cached and now - cached[1] < RECHECK_SECONDS and not strict:
        return cached[2]
    directory = Path(directory).resolve()
    fingerprint = _fingerprint(directory) if directory.is_dir() else ()
    if cached and cached[0] == fingerprint:
        library = cached[2]
    else:
        try:
            library = load_library_uncached(directory, vocabulary)
        except ClauseLibraryError as exc:
            if not cached or strict:
                raise
            # A file edited into a broken state while the service runs must not stop screening: keep the
            # last valid library (riders record exactly which texts they used) and say so in the log.
            log.error("clause library %s changed but is invalid; still using the last valid version. %s",
                      directory, exc)
            library, fingerprint = cached[2], cached[0]
    with _lock:
        _cache[key] = (fingerprint, now, library)
    return library
