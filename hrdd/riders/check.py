"""``hrdd clauses check``: validate the library, then try every clause combination a screening can give."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from hrdd.riders.conditions import Facts
from hrdd.riders.library import ClauseLibraryError, Library, Problem, load_library_uncached
from hrdd.riders.selection import SelectionError, select
from hrdd.riders.vocabulary import DECISIONS, Vocabulary


@dataclass
class CheckReport:
    """What ``hrdd clauses check`` found."""

    library: Library | None
    problems: list[Problem] = field(default_factory=list)
    scenarios: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


def scenarios(vocabulary: Vocabulary):
    """Facts for each decision and end-user kind with no flag, each single red flag, each capability, with and
    without a reviewer's conditions of approval."""
    singles = [((), ())] + [((f,), ()) for f in vocabulary.flag_ids] + [
        ((), (c,)) for c in vocabulary.capability_ids]
    for decision, (flags, capabilities), security, government, intermediaries, approval in itertools.product(
            DECISIONS, singles, (False, True), (False, True), (False, True), (False, True)):
        yield Facts(decision=decision, flags=frozenset(flags), capabilities=frozenset(capabilities),
                    security_sector=security, government=government, intermediaries=intermediaries,
                    reviewer_conditions=approval)


def check_library(directory: str | Path, vocabulary: Vocabulary | None = None) -> CheckReport:
    """Load the library from scratch and report every problem, naming files."""
    vocabulary = vocabulary or Vocabulary()
    try:
        library = load_library_uncached(directory, vocabulary)
    except ClauseLibraryError as exc:
        return CheckReport(None, exc.problems)
    report = CheckReport(library)
    seen: set[str] = set()
    for facts in scenarios(vocabulary):
        report.scenarios += 1
        try:
            select(library, facts)
        except SelectionError as exc:
            if str(exc) not in seen:
                seen.add(str(exc))
                report.problems.append(Problem("(selection)", f"{exc} (e.g. decision {facts.decision}, flags "
                                               f"{sorted(facts.flags)}, capabilities {sorted(facts.capabilities)})"))
    return report
