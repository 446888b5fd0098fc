"""Two-person approval: which screenings need a second reviewer (policy section reviewer_decisions.dual_control)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hrdd.model import DECISIONS, SEVERITIES, severity_rank

DEFAULT_DUAL_CONTROL = {
    "red_flags": [{"id": "RF-4.4"}, {"id": "RF-4.3", "match": "confirmed"}],
    "engine_decisions": ["do_not_proceed"],
}
MATCH_STATUSES = ("confirmed", "possible")


@dataclass(frozen=True)
class FlagRule:
    """A red flag that puts an approval under dual control, optionally only at a severity or match status."""

    id: str
    severity_at_least: str | None = None
    match: str | None = None

    def applies(self, flag: dict) -> bool:
        """True when a screening's flag (its JSON form) is one this rule names."""
        if flag.get("id") != self.id:
            return False
        if self.severity_at_least and severity_rank(flag.get("severity") or "low") < severity_rank(self.severity_at_least):
            return False
        if self.match:
            matches = (flag.get("data") or {}).get("matches") or ()
            return any(isinstance(m, dict) and m.get("status") == self.match for m in matches)
        return True


@dataclass(frozen=True)
class DualControl:
    """Which screenings need two approvers, a licence reference and at most approve with conditions."""

    red_flags: tuple[FlagRule, ...] = ()
    engine_decisions: tuple[str, ...] = ()

    def reasons(self, screening: dict | None) -> list[str]:
        """Why approving this screening needs two approvers (empty: one reviewer may approve it)."""
        if not screening:
            return []
        out: dict[str, None] = {}
        for flag in screening.get("red_flags") or ():
            for rule in self.red_flags:
                if rule.applies(flag):
                    match = " confirmed match" if rule.match == "confirmed" else (
                        " possible match" if rule.match else "")
                    out.setdefault(f"{flag['id']} ({flag.get('severity')}{match}): {flag.get('title') or ''}".rstrip(": "))
        if screening.get("decision") in self.engine_decisions:
            out.setdefault(f"engine decision {screening['decision']}")
        return list(out)

    def as_dict(self) -> dict:
        """The rules in force, as the policy would state them (for the audit trail's configuration record)."""
        return {"red_flags": [{k: v for k, v in vars(r).items() if v} for r in self.red_flags],
                "engine_decisions": list(self.engine_decisions)}


def dual_control_rules(policy, known_flags: Iterable[str] | None = None) -> DualControl:
    """The policy's ``reviewer_decisions.dual_control`` (the defaults when the section is absent).

    ValueError names what is wrong: an unknown key, flag id (when ``known_flags`` is given), severity,
    match status or engine decision.
    """
    section = (policy.section("reviewer_decisions") if policy is not None else {}).get("dual_control")
    if section is None:
        section = DEFAULT_DUAL_CONTROL
    if not isinstance(section, dict):
        raise ValueError("reviewer_decisions.dual_control must be a mapping (red_flags, engine_decisions)")
    unknown = sorted(set(section) - {"red_flags", "engine_decisions"})
    if unknown:
        raise ValueError(f"reviewer_decisions.dual_control: unknown key(s) {', '.join(unknown)} "
                         "(known: red_flags, engine_decisions)")
    known = set(known_flags) if known_flags is not None else None
    rules = []
    for n, entry in enumerate(section.get("red_flags") or ()):
        where = f"reviewer_decisions.dual_control.red_flags[{n}]"
        if isinstance(entry, str):
            entry = {"id": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            raise ValueError(f"{where}: must be a red flag id or a mapping with an id")
        extra = sorted(set(entry) - {"id", "severity_at_least", "match"})
        if extra:
            raise ValueError(f"{where}: unknown key(s) {', '.join(extra)} (known: id, severity_at_least, match)")
        if known is not None and entry["id"] not in known:
            raise ValueError(f"{where}: {entry['id']!r} is not a red flag of data/red_flags.yaml")
        if entry.get("severity_at_least") is not None and entry["severity_at_least"] not in SEVERITIES:
            raise ValueError(f"{where}: severity_at_least must be one of {', '.join(SEVERITIES)}")
        if entry.get("match") is not None and entry["match"] not in MATCH_STATUSES:
            raise ValueError(f"{where}: match must be one of {', '.join(MATCH_STATUSES)}")
        rules.append(FlagRule(entry["id"], entry.get("severity_at_least"), entry.get("match")))
    decisions = section.get("engine_decisions") or ()
    if isinstance(decisions, str) or not all(d in DECISIONS for d in decisions):
        raise ValueError(f"reviewer_decisions.dual_control.engine_decisions must list engine decisions "
                         f"({', '.join(DECISIONS)})")
    return DualControl(tuple(rules), tuple(decisions))


def awaiting_second_approval(decision: dict | None) -> bool:
    """True for a first approval under dual control (its second approval is another, later row)."""
    return bool(decision and decision.get("dual_control") and not decision.get("second_approval_of"))


def reviewer_identity(actor: str) -> str:
    """Who an actor is for two-person approval: ``user:alice`` and ``key:alice`` are both ``alice``."""
    # A key named after a reviewer is theirs: counting it as another person would let one approve twice.
    return actor.split(":", 1)[-1].strip().casefold()
