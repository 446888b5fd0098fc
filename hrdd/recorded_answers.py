"""Answers a deal has on record outside the request (plugins' ``hrdd_answers_on_record``), laid under it."""

from __future__ import annotations

from typing import Any


class RecordChanged(Exception):
    """The deal's answers on record are not the ones screened; ``recorded`` holds them as read under the lock."""

    def __init__(self, recorded: dict[str, dict]):
        super().__init__("the deal's answers on record changed")
        self.recorded = recorded


def recorded_answers(pm, store, data: dict, source: str, known_ids: frozenset[str]) -> dict[str, dict]:
    """Every plugin's recorded answers for the request's deal, first plugin first per question id.

    Question ids no longer known (a template question removed since) are left out, as a request naming
    them would be refused.
    """
    recorded: dict[str, dict] = {}
    for result in pm.hook.hrdd_answers_on_record(transaction=data, source=source, store=store):
        for qid, entry in (result or {}).items():
            if "*" in known_ids or qid in known_ids:
                recorded.setdefault(qid, entry)
    return recorded


def lay_under(answers: dict[str, Any], recorded: dict[str, dict]) -> tuple[dict[str, Any], dict[str, dict]]:
    """The answers to screen, and the ``answers_on_record`` notes.

    A recorded answer fills a question the request leaves out or answers ``unknown``; a different known
    answer in the request is kept and noted (``used: false``, ``request_answer``) unless the recorder lets
    the request win. An entry the recorder marks ``not_used_because`` (the deal's facts changed since it
    was recorded) is never screened: where it would have filled the question or conflicted with the
    request, the note says ``used: false`` and why, without ``request_answer`` (it is no conflict).
    """
    merged = dict(answers)
    notes: dict[str, dict] = {}
    for qid, entry in recorded.items():
        given = merged.get(qid)
        public = {k: v for k, v in entry.items() if k != "request_wins"}
        if entry.get("not_used_because"):
            # Noted where a usable answer would have been: filling the question, or against the request's.
            if given in (None, "unknown") or (given != entry["answer"] and not entry.get("request_wins")):
                notes[qid] = {**public, "used": False}
        elif given in (None, "unknown"):
            merged[qid] = entry["answer"]
            notes[qid] = {**public, "used": True}
        elif given != entry["answer"] and not entry.get("request_wins"):
            notes[qid] = {**public, "used": False, "request_answer": given}
    return merged, notes
