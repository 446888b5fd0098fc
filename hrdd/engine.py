"""screen(transaction) -> Screening: collects the plugins' red flags and applies the decision rules."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from typing import Any

from hrdd.model import (
    DECISION_GATE,
    Item,
    RedFlag,
    Safeguard,
    Screening,
    StepResult,
    Transaction,
    severity_rank,
    tier_rank,
)
from hrdd.store import memoized

# Bumped whenever a rule's outcome changes, so each stored screening says which rules produced it and
# re-screening names the change ("versions changed: ruleset ...").
# 2026.12.1: step-1 flags and RF-2.3 raised once per capability or reason, naming every item; RF-4.3 once
# per distinct party; RF-4.1 placeholder end-user names from the policy, compared without punctuation.
RULESET_VERSION = "2026.12.1"

STEP_TITLES = {
    1: "Product capabilities",
    2: "End-user's human rights record",
    3: "Laws, regulations and policies of the end-user's country",
    4: "Stakeholders in the transaction",
    5: "Tailoring the product to reduce risk",
    6: "Contractual and procedural safeguards",
    7: "Monitoring, grievances and remediation",
    8: "Public reporting",
}


@dataclass
class ScreeningContext:
    """What step checks may consult: reference data, policy, store (may be None) and a per-run cache."""

    reference: Any
    policy: Any
    store: Any = None
    cache: dict[str, Any] = field(default_factory=dict)

    def memo(self, key: tuple, compute: Callable[[], Any]) -> Any:
        """``compute()``, kept for the rest of this screening under ``key``.

        The tailoring re-runs screen the same deal with one capability taken off one item, so a check can
        keep what does not depend on the items and reuse it; ``key`` must name everything the value
        depends on (a check's own name first, so keys of different checks cannot collide).
        """
        return memoized(self.cache, key, compute)

    def capabilities_at_least(self, transaction: Transaction, tier: str) -> tuple[tuple[str, str], ...]:
        """The deal's (sku, capability) pairs whose capability is of ``tier`` or above."""
        floor = tier_rank(tier)
        return tuple((item.sku, cap) for item in transaction.items for cap in item.capabilities
                     if tier_rank(self.reference.capability(cap).tier) >= floor)

    def max_tier(self, transaction: Transaction) -> str:
        """The highest capability tier the deal carries ('low' for none)."""
        # Several checks ask, for the deal and for each tailored variant: keep the answer per capability set.
        capabilities = transaction.capabilities()
        key = ("max_tier", capabilities)
        tier = self.cache.get(key)
        if tier is None:
            tiers = [self.reference.capability(c).tier for c in capabilities]
            tier = self.cache[key] = max(tiers, key=tier_rank, default="low")
        return tier


class Engine:
    """Runs every `hrdd_check` plugin, decides, and works out tailoring and conditions."""

    def __init__(self, pm, reference, policy, store=None):
        self.pm = pm
        self.reference = reference
        self.policy = policy
        self.store = store
        self.max_item_options = int(policy.section("tailoring").get("max_item_options", 24))

    def context(self) -> ScreeningContext:
        """A fresh context for one screening (its cache is shared by the tailoring re-runs)."""
        return ScreeningContext(self.reference, self.policy, self.store)

    def collect_flags(self, transaction: Transaction, context: ScreeningContext) -> list[RedFlag]:
        """Ask every check plugin for flags; keep the plugin's name on each flag."""
        flags: list[RedFlag] = []
        hook = self.pm.hook.hrdd_check
        for impl in reversed(hook.get_hookimpls()):
            result = impl.function(transaction=transaction, context=context)
            for flag in result or ():
                flag.raised_by = flag.raised_by or impl.plugin_name
                flags.append(flag)
        flags.sort(key=lambda f: (f.step, -severity_rank(f.severity), f.id))
        return flags

    def decide(self, transaction: Transaction, flags: list[RedFlag], context: ScreeningContext) -> str:
        """Apply DESIGN.md's decision rules to the flags."""
        rules = self.policy.section("decision")
        worst = max((severity_rank(f.severity) for f in flags), default=-1)
        if worst >= severity_rank(rules.get("do_not_proceed_on", "critical")):
            return "do_not_proceed"
        if worst >= severity_rank(rules.get("escalate_on", "high")):
            return "escalate"
        if worst >= severity_rank(rules.get("safeguards_on", "medium")):
            return "proceed_with_safeguards"
        if self._government_surveillance(transaction, context):
            return "proceed_with_safeguards"
        return "proceed"

    def _government_surveillance(self, transaction: Transaction, context: ScreeningContext) -> bool:
        min_tier = self.policy.section("decision").get("safeguards_min_tier_for_government", "medium")
        eu = transaction.end_user
        return (eu.is_government or eu.is_security_sector) and tier_rank(context.max_tier(transaction)) >= tier_rank(min_tier)

    def risk(self, transaction: Transaction, flags: list[RedFlag], context: ScreeningContext) -> tuple[int, str]:
        """A 0-100 score from the policy's weights and a level from the worst severity."""
        rules = self.policy.section("risk_score")
        weights = rules.get("weights", {})
        score = sum(weights.get(f.severity, 0) for f in flags)
        if self._government_surveillance(transaction, context):
            score = max(score, rules.get("government_surveillance_floor", 0))
        worst = max(flags, key=lambda f: severity_rank(f.severity)).severity if flags else "low"
        return min(100, int(score)), worst

    def evaluate(self, transaction: Transaction, context: ScreeningContext) -> tuple[list[RedFlag], str]:
        """Flags and decision only (what tailoring re-runs need)."""
        flags = self.collect_flags(transaction, context)
        return flags, self.decide(transaction, flags, context)

    def screen(self, transaction: Transaction, context: ScreeningContext | None = None) -> Screening:
        """Screen a transaction: flags, decision, gate, risk, steps, safeguards, conditions, tailoring."""
        context = context or self.context()
        flags, decision = self.evaluate(transaction, context)
        score, level = self.risk(transaction, flags, context)
        tailoring = self.tailoring(transaction, flags, decision, context)
        safeguards = self.safeguards(transaction, flags, decision, context)
        versions = {"ruleset": RULESET_VERSION, "policy": f"{self.policy.version} ({self.policy.digest})",
                    "data": {}}
        for extra in self.pm.hook.hrdd_versions(context=context):
            versions["data"].update(extra or {})
        return Screening(
            transaction=transaction, decision=decision, gate=DECISION_GATE[decision],
            risk_score=score, risk_level=level, red_flags=flags,
            steps=self.steps(flags, decision, tailoring, safeguards),
            safeguards=safeguards, conditions=self.conditions(transaction, decision),
            tailoring=tailoring, versions=versions,
            party_matches=[m for f in flags for m in f.data.get("matches", ())],
        )

    def tailoring(self, transaction: Transaction, flags: list[RedFlag], decision: str,
                  context: ScreeningContext) -> list[dict[str, Any]]:
        """Step 5: for each flagged item capability, the decision if the item did not carry it.

        Each option names the re-run's ``decision_without`` and ``remaining_flags``, the flags raised now
        that it no longer raises (``flags_resolved``) and those it raises that are not raised now
        (``flags_raised``).

        A deal with more flagged (item, capability) pairs than the policy's ``tailoring.max_item_options``
        gets one option per capability instead (the capability taken off every item that carries it), so
        that a large bill of materials costs a bounded number of re-runs rather than one per pair.
        """
        if decision == "proceed":
            return []
        implicated: dict[tuple[str, str], None] = {}  # an ordered set of the flagged (sku, capability)
        for flag in flags:
            skus = flag.data.get("items") or [i.sku for i in transaction.items]
            for cap in flag.data.get("capabilities") or ():
                for item in transaction.items:
                    if item.sku in skus and cap in item.capabilities:
                        implicated.setdefault((item.sku, cap), None)
        if len(implicated) <= self.max_item_options:
            options = [(sku, cap, (sku,)) for sku, cap in implicated]
        else:
            by_capability: dict[str, list[str]] = {}
            for sku, cap in implicated:
                by_capability.setdefault(cap, []).append(sku)
            options = [(None, cap, skus) for cap, skus in by_capability.items()]
        out = []
        raised_now = {f.id for f in flags}
        for sku, cap, skus in options:
            tailored = replace(transaction, items=tuple(_without(i, skus, cap) for i in transaction.items))
            new_flags, new_decision = self.evaluate(tailored, context)
            remaining = {f.id for f in new_flags}
            # Resolved means gone from the re-run, not merely implicated: a flag the capability shared with
            # another cause (RF-1.3 for the item's other capability, say) stays, and one the bare item now
            # raises is said to be raised rather than hidden among the remaining.
            option = {"item": sku, "remove_capability": cap, "flags_resolved": sorted(raised_now - remaining),
                      "flags_raised": sorted(remaining - raised_now),
                      "decision_without": new_decision, "remaining_flags": sorted(remaining)}
            if sku is None:
                option["items"] = skus
            out.append(option)
        return out

    def safeguards(self, transaction: Transaction, flags: list[RedFlag], decision: str,
                   context: ScreeningContext) -> list[Safeguard]:
        """Safeguards contributed by plugins (clauses, technical controls), de-duplicated by id."""
        merged: dict[str, Safeguard] = {}
        for result in self.pm.hook.hrdd_safeguards(transaction=transaction, flags=flags, decision=decision,
                                                   context=context):
            for sg in result or ():
                merged.setdefault(sg.id, sg)
        return list(merged.values())

    def conditions(self, transaction: Transaction, decision: str) -> list[str]:
        """What must happen before the deal can go ahead (reviewer, rider, completed checklist)."""
        rules = self.policy.section("conditions")
        out = []
        if decision in rules.get("reviewer_approval_on", ()):
            out.append("reviewer_approval")
        if decision in rules.get("rider_on", ()):
            out.append("rider_executed")
        open_questions = [q for q in rules.get("checklist_questions", ()) if transaction.answer(q) in (None, "unknown")]
        if open_questions and decision in ("proceed_with_safeguards", "escalate"):
            out.append("checklist_completed")
        return out

    def steps(self, flags: list[RedFlag], decision: str, tailoring: list[dict], safeguards: list[Safeguard]
              ) -> list[StepResult]:
        """The status of each of the eight steps."""
        by_step: dict[int, dict[str, None]] = {}
        for flag in flags:
            by_step.setdefault(flag.step, {})[flag.id] = None
        # The status of an unflagged step: 1-4 clear; 5 by the tailoring options; 6-7 by the decision; 8 recorded.
        options = "options" if any(t["decision_without"] != decision for t in tailoring) else (
            "not_applicable" if decision == "proceed" else "no_options")
        required = "required" if decision != "proceed" or safeguards else "not_applicable"
        unflagged = ("clear", "clear", "clear", "clear", options, required, required, "recorded")
        return [StepResult(step, title, "flagged", list(by_step[step])) if step in by_step
                else StepResult(step, title, unflagged[step - 1], [])
                for step, title in STEP_TITLES.items()]


def _without(item: Item, skus: Collection[str], cap: str) -> Item:
    if item.sku not in skus or cap not in item.capabilities:
        return item
    remaining = tuple(c for c in item.capabilities if c != cap) or ("none",)
    return replace(item, capabilities=remaining)
