"""The gate a CRM acts on: the engine's gate adjusted by reviewer overrides and hold conditions."""

from __future__ import annotations

from hrdd.model import is_order_stage, stage_noun


def effective_gate(engine_gate: str, factors: list[dict], engine_reason: str | None = None
                   ) -> tuple[str, list[str]]:
    """Combine the engine's gate with plugin factors; returns (gate, reasons).

    The latest reviewer override replaces the engine's gate; any hold keeps the gate at `hold` at least;
    a `block` is never lowered by a hold. ``engine_reason`` comes first among the reasons when the
    engine's own `hold` or `block` stands (no override replaced it); holds come first when they are what
    turns a release into `hold`. A hold with ``instead_of_engine_reason`` (a reviewer's request for
    information) replaces the engine's reason for its `hold`: it says more precisely what the deal waits for.
    """
    gate, reasons = engine_gate, []
    overrides = sorted((f for f in factors if f.get("kind") == "override"), key=lambda f: f.get("at") or "")
    replaced = engine_gate == "hold" and any(f.get("kind") == "hold" and f.get("instead_of_engine_reason")
                                             for f in factors)
    if overrides:
        gate = overrides[-1]["gate"]
        reasons.append(overrides[-1]["reason"])
    elif engine_reason and engine_gate in ("hold", "block") and not replaced:
        reasons.append(engine_reason)
    holds = [f["reason"] for f in factors if f.get("kind") == "hold"]
    if holds and gate not in ("hold", "block"):
        # The holds are why the gate is `hold` now: they come first, before a reviewer's release they stop.
        return "hold", holds + reasons
    reasons.extend(holds)
    return gate, reasons


def conditions_in_words(screening: dict, gate: str, factors: list[dict],
                        checklist_questions: tuple[str, ...] | list[str] = ()) -> list[str]:
    """What a deal released with conditions must still meet (or has met), in words a sales team reads.

    From the screening's ``conditions`` (a reviewer's approval, the contract rider, the checklist) with those
    the plugins add (``required_conditions``) and the reviewer's decision in force, with the conditions and
    safeguards it set. ``checklist_questions`` are the policy's questions whose unanswered state makes
    ``checklist_completed`` a condition (named here).
    """
    out: list[str] = []
    overrides = sorted((f for f in factors if f.get("kind") == "override"), key=lambda f: f.get("at") or "")
    override = overrides[-1] if overrides else None
    set_conditions = bool(override and override.get("gate") == "release_with_conditions"
                          and ((override.get("conditions") or "").strip() or override.get("safeguards")))
    if override and override.get("gate") == "release_with_conditions":
        if (override.get("conditions") or "").strip():
            out.append(f"the reviewer's conditions: {override['conditions'].strip()}")
        titles = {s.get("id"): s.get("title") or s.get("id") for s in screening.get("safeguards") or ()}
        chosen = [titles.get(s, s) for s in override.get("safeguards") or ()]
        if chosen:
            out.append("the safeguards the reviewer requires: " + "; ".join(chosen))
    answers = (screening.get("transaction") or {}).get("answers") or {}
    released = gate in ("release", "release_with_conditions")
    for condition in required_conditions(screening, factors):
        if condition == "reviewer_approval":
            if override is None:
                out.append("a human rights reviewer must approve the deal")
        elif condition == "rider_executed":
            # The rider carries the reviewer's conditions ("Conditions of approval"): one signed before lacks them.
            clauses = "the human rights clauses" + (" and the reviewer's conditions of approval" if set_conditions else "")
            stage = screening.get("stage")
            if is_order_stage(stage) and released:
                out.append(f"the contract rider with {clauses} is executed and covers this {stage_noun(stage)}")
            else:
                out.append(f"the customer must sign the contract rider with {clauses} before the "
                           + (stage_noun(stage) if is_order_stage(stage) else "order"))
        elif condition == "checklist_completed":
            unanswered = [q.replace("_", " ") for q in checklist_questions if answers.get(q) in (None, "unknown")]
            out.append("the due diligence checklist must be completed"
                       + (f" (not answered yet: {', '.join(unanswered)})" if unanswered else ""))
        else:
            out.append(condition.replace("_", " "))
    return out


def standing_review(factors: list[dict]) -> dict | None:
    """The reviewer's decision in force, as the ``review`` field of the API (from the factor carrying it)."""
    overrides = sorted((f for f in factors if f.get("kind") == "override"), key=lambda f: f.get("at") or "")
    if overrides and overrides[-1].get("review"):
        return overrides[-1]["review"]
    return next((f["review"] for f in factors if f.get("kind") == "hold" and f.get("review")), None)


def required_conditions(screening: dict, factors: list[dict]) -> list[str]:
    """The screening's ``conditions``, then any other condition a plugin's factor is about.

    A factor with a ``condition`` (a hold about it, ``met``, or ``{"kind": "condition"}``: required, not met,
    no hold yet) adds it when the screening does not list it: the order gate's executed rider after an
    approval by two reviewers of a deal the engine blocked (``do_not_proceed`` lists no rider).
    """
    out = list(screening.get("conditions") or ())
    out += dict.fromkeys(f["condition"] for f in factors if f.get("condition") and f["condition"] not in out)
    return out


def outstanding_conditions(screening: dict, factors: list[dict]) -> list[str]:
    """The screening's ``conditions`` (and those factors add, ``required_conditions``) not met yet, now:
    what the CRM must still see done.

    ``reviewer_approval`` is met by a standing approval (with or without conditions); ``rider_executed``
    when a plugin reports an executed rider that covers the deal and the reviewer's conditions (a factor
    ``{"kind": "met", "condition": ...}``); ``checklist_completed`` by a screening with the answers (a
    checklist upload stores one). The stored screening is never rewritten.
    """
    review = standing_review(factors)
    met = {f.get("condition") for f in factors if f.get("kind") == "met"}
    if review and review["outcome"] in ("approve", "approve_with_conditions"):
        met.add("reviewer_approval")
    return [c for c in required_conditions(screening, factors) if c not in met]
