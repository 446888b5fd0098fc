"""Choose the recitals, clauses and technical-schedule parts a screening calls for, and number them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from hrdd.riders.conditions import Facts
from hrdd.riders.library import SCHEDULE_REFS, Clause, Library


class SelectionError(ValueError):
    """The library's texts do not fit together for this screening (found by ``hrdd clauses check``)."""


@dataclass(frozen=True, eq=False)  # identity: selections are cached and looked up by object
class Selection:
    """What goes into one rider, with clause and schedule numbers computed."""

    facts: Facts
    recitals: tuple[Clause, ...]
    clauses: tuple[Clause, ...]
    technical: tuple[Clause, ...]
    numbers: dict[str, int]
    schedules: dict[str, int]
    pulled_in: tuple[str, ...]

    def texts(self) -> list[Clause]:
        """Everything selected, in document order."""
        return [*self.recitals, *self.clauses, *self.technical]

    def survivors(self) -> list[Clause]:
        """The selected clauses marked ``survives: true``."""
        return [c for c in self.clauses if c.survives]

    def manifest(self) -> list[str]:
        """``kind/id@version`` for every selected text: what a signed copy was built from."""
        prefix = {"recital": "recital/", "clause": "", "technical": "technical/"}
        return [f"{prefix[c.kind]}{c.id}@{c.version}" for c in self.texts()]

    def digest(self, library: Library) -> str:
        """SHA-256 over the exact bytes of every selected file and of the frame and variable registry."""
        hasher = hashlib.sha256()
        for name in [c.file for c in self.texts()] + ["rider.yaml", "variables.yaml"]:
            hasher.update(f"{name}:{library.file_digests[name]}\n".encode())
        return hasher.hexdigest()


SELECTION_CACHE_SIZE = 1024


def select(library: Library, facts: Facts) -> Selection:
    """Apply every clause's conditions to the facts, then add the clauses the selected text refers to.

    Results are remembered per library: the facts that matter take few distinct values.
    """
    cache = library.selections
    selection = cache.get(facts)
    if selection is None:
        selection = _select(library, facts)
        if len(cache) >= SELECTION_CACHE_SIZE:
            cache.pop(next(iter(cache)))
        cache[facts] = selection
    return selection


def _select(library: Library, facts: Facts) -> Selection:
    technical = tuple(t for t in library.technical if t.applies(facts) or t.id in facts.required)
    facts = replace(facts, technical_schedule=bool(technical))
    by_id = library.by_id
    chosen = {c.id for c in library.clauses if c.applies(facts) or c.id in facts.required}
    recitals = tuple(r for r in library.recitals if r.applies(facts))
    pulled: list[str] = []
    # A clause referred to by a printed text must be in the rider, or the reference would dangle.
    frame_refs = library.frame.refs(technical=bool(technical))
    pending = [*recitals, *technical, *(by_id[i] for i in chosen)]
    refs = set(frame_refs)
    while pending or refs:
        for text in pending:
            refs |= text.refs()
        pending = []
        for ref in sorted(refs):
            if ref in by_id and ref not in chosen:
                chosen.add(ref)
                pulled.append(ref)
                pending.append(by_id[ref])
        refs = set()
    clauses = tuple(c for c in library.clauses if c.id in chosen)
    schedules = {"schedule:findings": 1}
    if technical:
        schedules["schedule:technical"] = 2
    used_refs = frame_refs.union(*(t.refs() for t in (*recitals, *clauses, *technical)))
    missing = [ref for ref in SCHEDULE_REFS if ref in used_refs and ref not in schedules]
    if missing:
        raise SelectionError(f"{', '.join(missing)} is referred to, but this rider has no such schedule")
    return Selection(
        facts=facts, recitals=recitals, clauses=clauses, technical=technical,
        numbers={c.id: n for n, c in enumerate(clauses, start=1)}, schedules=schedules,
        pulled_in=tuple(pulled),
    )
