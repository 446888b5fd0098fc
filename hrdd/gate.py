"""The gate a CRM acts on: the engine's gate adjusted by reviewer overrides and hold conditions."""

from __future__ import annotations


def effective_gate(engine_gate: str, factors: list[dict], engine_reason: str | None = None
                   ) -> tuple[str, list[str]]:
    """Combine the engine's gate with plugin factors; returns (gate, reasons).

    The latest reviewer override replaces the engine's gate; any hold keeps the gate at `hold` at least;
    a `block` is never lowered by a hold. ``engine_reason`` comes first among the reasons when the
    engine's own `hold` or `block` stands (no override replaced it); holds come first when they are what
    turns a release into `hold`.
    """
    gate, reasons = engine_gate, []
    overrides = sorted((f for f in factors if f.get("kind") == "override"), key=lambda f: f.get("at") or "")
    if overrides:
        gate = overrides[-1]["gate"]
        reasons.append(overrides[-1]["reason"])
    elif engine_reason and engine_gate in ("hold", "block"):
        reasons.append(engine_reason)
    holds = [f["reason"] for f in factors if f.get("kind") == "hold"]
    if holds and gate not in ("hold", "block"):
        # The holds are why the gate is `hold` now: they come first, before a reviewer's release they stop.
        return "hold", holds + reasons
    reasons.extend(holds)
    return gate, reasons
