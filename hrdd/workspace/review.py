"""A reviewer's standing decision as the API, the write-back and the rider show it (``review``)."""

from __future__ import annotations


def requested_information(decision: dict) -> str:
    """What a request for information asked for: its conditions text, else its rationale."""
    return (decision.get("conditions") or "").strip() or (decision.get("rationale") or "").strip()


def review_of(decision: dict, screening: dict | None) -> dict:
    """The decision as the ``review`` field: outcome, when and by whom, conditions, safeguards, request.

    Safeguards are named with the titles the screening gave them (an id it does not list is its own title).
    """
    titles = {s.get("id"): s.get("title") or s.get("id") for s in (screening or {}).get("safeguards") or ()}
    asked = decision["outcome"] == "request_information"
    return {
        "decision_id": decision["id"], "case_id": decision["case_id"], "outcome": decision["outcome"],
        "label": decision.get("label") or decision["outcome"], "gate": decision["gate"],
        "decided_at": decision["decided_at"], "decided_by": decision["decided_by"],
        "conditions": None if asked else (decision.get("conditions") or "").strip() or None,
        "safeguards": [{"id": s, "title": titles.get(s, s)} for s in decision.get("safeguards") or ()],
        "information_requested": requested_information(decision) if asked else None,
    }


def information_hold(decision: dict, screening: dict | None) -> dict:
    """The hold of a standing request for information, quoting what was asked, in place of the engine's reason."""
    return {"kind": "hold", "instead_of_engine_reason": True, "review": review_of(decision, screening),
            "reason": f"a human rights reviewer asked for information on case {decision['case_id']} "
                      f"(decision {decision['id']} by {decision['decided_by']}): "
                      f"\u201c{requested_information(decision)}\u201d; the deal is held until it is given "
                      "and the reviewer decides"}


def has_conditions(review: dict | None) -> bool:
    """True when a standing approval sets conditions or safeguards (the rider's "Conditions of approval")."""
    return bool(review and review["outcome"] == "approve_with_conditions"
                and (review.get("conditions") or review.get("safeguards")))
