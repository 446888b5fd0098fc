"""The rider frame (``rider.yaml``): title, parties, headings, schedule texts and the signature block."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hrdd.riders.markup import MarkupError, Token, parse_inline
from hrdd.riders.vocabulary import DECISIONS

# Texts that may use markup, variables and references (dotted paths into rider.yaml).
TEXTS = (
    "title", "subtitle", "parties.intro", "parties.seller", "parties.buyer", "parties.outro",
    "recitals_heading", "operative_intro", "findings.heading", "findings.intro", "findings.no_flags",
    "technical.heading", "technical.intro", "signature.heading", "signature.intro", "signature.seller",
    "signature.buyer", "footer",
)
# Plain labels.
LABELS = ("schedule_label", "technical.part_label", "technical.applies_to_label")
SUMMARY_KEYS = ("screening", "date", "stage", "decision", "risk", "end_user", "parties", "countries",
                "products", "intended_use", "data")
# Schedule 1 goes to the Buyer: a library that does not say which summary rows to print gets these, never
# the Seller's internal assessment (outcome and its advice, risk score, ruleset and data versions).
DEFAULT_SUMMARY_ROWS = ("screening", "date", "stage", "end_user", "parties", "countries", "products",
                        "intended_use")
# Schedule 1's red-flag table: the columns a library may print, and the five headings of a library written
# before it could choose them (a plain list, read in this order).
FLAG_COLUMN_KEYS = ("flag", "step", "severity", "finding", "source")
REQUIRED_FLAG_COLUMNS = ("flag", "finding")
DEFAULT_PARTIES_LABEL = "Disclosed Parties (role, country)"
# The Buyer signs the rider, and a grievance may be about the Buyer's own agency: RF-7.1's evidence names
# reports (references that encode when they were made, dates, status, counts), so Schedule 1 never quotes
# it, whatever the library says. This wording is only for a library written before findings.withheld
# existed; the shipped rider.yaml gives its own.
DEFAULT_WITHHELD = {"RF-7.1": ("A concern about the End-User is under review",
                               "A report concerning the End-User is under review by the Seller.")}


@dataclass(frozen=True)
class Frame:
    """The parsed frame: inline texts, labels and lists."""

    version: str
    texts: dict[str, tuple[Token, ...]]
    labels: dict[str, str]
    summary_labels: dict[str, str]
    flag_columns: tuple[tuple[str, str], ...]  # (column key, heading), in print order
    decision_labels: dict[str, str]
    signature_lines: tuple[str, ...]
    # Flag id -> (title, evidence) printed in Schedule 1 instead of the screening's own (withheld, restated).
    withheld: dict[str, tuple[str, str]] = field(default_factory=dict)
    # The summary rows Schedule 1 prints, in order, and what is cut out of every evidence text it quotes.
    summary_rows: tuple[str, ...] = DEFAULT_SUMMARY_ROWS
    evidence_omit: tuple[re.Pattern, ...] = ()

    def refs(self, technical: bool = True) -> set[str]:
        """Cross-references used by the frame (without the technical schedule's texts if not printed)."""
        return {t.value for path, tokens in self.texts.items() for t in tokens
                if t.kind == "ref" and (technical or not path.startswith("technical."))}

    def used_variables(self) -> set[str]:
        """Variables used anywhere in the frame."""
        return {t.value for tokens in self.texts.values() for t in tokens if t.kind == "var"}

    def variables_of(self, *paths: str) -> set[str]:
        """Variables used by the given texts."""
        return {t.value for p in paths for t in self.texts[p] if t.kind == "var"}


def _get(raw: dict, path: str) -> Any:
    value: Any = raw
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _string_list(value: Any, size: int | None = None) -> bool:
    return (isinstance(value, list) and bool(value) and all(isinstance(v, str) and v.strip() for v in value)
            and (size is None or len(value) == size))


def parse_frame(raw: Any) -> tuple[Frame | None, list[str]]:
    """Validate rider.yaml; return the frame (None on problems) and the problems found."""
    if not isinstance(raw, dict):
        return None, ["rider.yaml must be a YAML mapping"]
    problems: list[str] = []
    texts: dict[str, tuple[Token, ...]] = {}
    for path in TEXTS:
        value = _get(raw, path)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{path} must be non-empty text")
            continue
        try:
            texts[path] = parse_inline(" ".join(value.split()))
        except MarkupError as exc:
            problems.append(f"{path}: {exc}")
    for path in TEXTS:
        if path != "footer" and path in texts and {"page", "pages"} & {
                t.value for t in texts[path] if t.kind == "var"}:
            problems.append(f"{path}: {{{{page}}}} and {{{{pages}}}} may only be used in the footer")
    labels = {}
    for path in LABELS:
        value = _get(raw, path)
        if not isinstance(value, str) or not value.strip():
            problems.append(f"{path} must be non-empty text")
        else:
            labels[path] = value.strip()
    rows = _get(raw, "findings.summary_rows")
    if rows is None:
        rows = list(DEFAULT_SUMMARY_ROWS)
    if not _string_list(rows) or set(rows) - set(SUMMARY_KEYS) or len(set(rows)) != len(rows):
        problems.append(f"findings.summary_rows must list summary rows once each, from: {', '.join(SUMMARY_KEYS)}")
        rows = []
    summary = _get(raw, "findings.summary_labels")
    if isinstance(summary, dict) and "parties" in rows and "parties" not in summary:
        # A library written before riders named the parties still loads: its Schedule 1 gains the row
        # under the shipped label rather than the service refusing to start after an upgrade.
        summary = {**summary, "parties": DEFAULT_PARTIES_LABEL}
    if not isinstance(summary, dict) or set(rows) - set(summary) or set(summary) - set(SUMMARY_KEYS):
        problems.append(f"findings.summary_labels must give a label for each of findings.summary_rows "
                        f"({', '.join(rows)}) and no other keys than: {', '.join(SUMMARY_KEYS)}")
        summary = {}
    decisions = _get(raw, "findings.decision_labels")
    if decisions is None and "decision" not in rows:
        decisions = {}
    elif not isinstance(decisions, dict) or set(decisions) != set(DECISIONS):
        problems.append(f"findings.decision_labels must give exactly these keys: {', '.join(DECISIONS)}")
        decisions = {}
    columns, messages = _parse_flag_columns(_get(raw, "findings.flag_columns"))
    problems.extend(messages)
    withheld, messages = _parse_withheld(_get(raw, "findings.withheld"), "findings.withheld")
    problems.extend(messages)
    restated, messages = _parse_withheld(_get(raw, "findings.restated"), "findings.restated", defaults={})
    problems.extend(messages)
    for flag_id in sorted(set(restated) & set(withheld)):
        problems.append(f"findings.restated.{flag_id}: the flag is withheld (findings.withheld); it cannot be restated")
    omit, messages = _parse_patterns(_get(raw, "findings.evidence_omit"), "findings.evidence_omit")
    problems.extend(messages)
    lines = _get(raw, "signature.lines")
    if not _string_list(lines):
        problems.append("signature.lines must be a non-empty list of labels")
    if raw.get("version") is None:
        problems.append("version is missing")
    if problems:
        return None, problems
    return Frame(
        version=str(raw["version"]), texts=texts, labels=labels,
        summary_labels={k: str(v) for k, v in summary.items()}, flag_columns=columns,
        decision_labels={k: str(v) for k, v in decisions.items()}, signature_lines=tuple(lines),
        withheld={**restated, **withheld}, summary_rows=tuple(rows), evidence_omit=omit,
    ), []


def _parse_flag_columns(raw: Any) -> tuple[tuple[tuple[str, str], ...], list[str]]:
    """``findings.flag_columns``: column key -> heading, in print order (or an older library's five headings)."""
    if _string_list(raw, len(FLAG_COLUMN_KEYS)):
        return tuple(zip(FLAG_COLUMN_KEYS, (h.strip() for h in raw), strict=True)), []
    expected = (f"findings.flag_columns must map the columns to print, in order, to their headings; columns: "
                f"{', '.join(FLAG_COLUMN_KEYS)} ({' and '.join(REQUIRED_FLAG_COLUMNS)} required)")
    if not isinstance(raw, dict) or not raw:
        return (), [expected]
    unknown = sorted(map(str, set(raw) - set(FLAG_COLUMN_KEYS)))
    missing = [k for k in REQUIRED_FLAG_COLUMNS if k not in raw]
    blank = sorted(str(k) for k, v in raw.items() if not isinstance(v, str) or not v.strip())
    problems = ([f"{expected}; unknown: {', '.join(unknown)}"] if unknown else []) \
        + ([f"{expected}; missing: {', '.join(missing)}"] if missing else []) \
        + [f"findings.flag_columns.{k} must be a non-empty heading" for k in blank]
    return (() if problems else tuple((k, v.strip()) for k, v in raw.items())), problems


def _parse_withheld(raw: Any, path: str, defaults: dict | None = None) -> tuple[dict[str, tuple[str, str]], list[str]]:
    """``findings.withheld`` / ``findings.restated``: flag id -> {title, evidence}, printed instead of the
    screening's; the confidential flags (``DEFAULT_WITHHELD``) are always withheld."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        return {}, [f"{path} must map red-flag ids to a title and an evidence text"]
    problems, withheld = [], dict(DEFAULT_WITHHELD if defaults is None else defaults)
    for flag_id, entry in raw.items():
        texts = entry if isinstance(entry, dict) else {}
        title, evidence = texts.get("title"), texts.get("evidence")
        if set(texts) != {"title", "evidence"} or not all(isinstance(t, str) and t.strip() for t in (title, evidence)):
            problems.append(f"{path}.{flag_id} must give exactly a non-empty title and evidence")
            continue
        withheld[str(flag_id)] = (" ".join(title.split()), " ".join(evidence.split()))
    return withheld, problems


def _parse_patterns(raw: Any, path: str) -> tuple[tuple[re.Pattern, ...], list[str]]:
    """``findings.evidence_omit``: regular expressions whose matches are cut out of quoted evidence."""
    if raw is None:
        return (), []
    if not isinstance(raw, list) or not all(isinstance(p, str) and p for p in raw):
        return (), [f"{path} must be a list of regular expressions"]
    patterns, problems = [], []
    for index, pattern in enumerate(raw, start=1):
        try:
            patterns.append(re.compile(pattern))
        except re.error as exc:
            problems.append(f"{path} entry {index} ({pattern!r}) is not a valid regular expression: {exc}")
    return tuple(patterns), problems
