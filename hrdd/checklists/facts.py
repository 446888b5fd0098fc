"""Whether a deal's material facts changed since a checklist upload: one comparison for the checklist a
screening downloads (hrdd.checklists.carry) and the answers a screening uses (hrdd.checklists.on_record)."""

from __future__ import annotations

from typing import Any

from hrdd.model import Transaction
from hrdd.workspace.util import keyed_facts

# The material facts (Transaction.material_facts) an upload's answers rest on, as the notes name them. The
# end-user is left out: uploads are found by the end-user's key, so it is the same one however it is spelt.
# Parties compare by that key too (as reviewer decisions and the order gate do): a respelt party is no change.
FACT_LABELS = {"parties": "parties", "items": "items", "countries": "countries", "deployment": "deployment countries"}


def facts_of(transaction: dict | None) -> dict[str, Any] | None:
    """The material facts of a stored or validated transaction dict; None when there is none to read."""
    if not transaction:
        return None
    try:
        return Transaction.from_dict(transaction).material_facts()
    except (KeyError, TypeError):
        return None


def changed_between(then: dict[str, Any] | None, now: dict[str, Any] | None) -> tuple[str, ...]:
    """The labels of the facts that differ, in FACT_LABELS order; () when either side cannot be read."""
    if then is None or now is None:
        return ()
    then, now = keyed_facts(then), keyed_facts(now)
    return tuple(label for key, label in FACT_LABELS.items() if then.get(key) != now.get(key))


def in_words(labels) -> str:
    """'parties, countries and deployment countries': changed facts' labels in FACT_LABELS order, for notes."""
    order = list(FACT_LABELS.values())
    ordered = sorted(set(labels), key=lambda label: order.index(label) if label in order else len(order))
    return ordered[0] if len(ordered) == 1 else ", ".join(ordered[:-1]) + " and " + ordered[-1] if ordered else ""


def changed_facts(before: dict | None, after: dict | None) -> tuple[str, ...]:
    """What changed between two transaction dicts (an upload's screening's, and a later one's)."""
    return changed_between(facts_of(before), facts_of(after))
