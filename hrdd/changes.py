"""What changed between two screenings of one deal, in words: material facts and red flags.

The order gate names the changes since the quote; a reviewer's decision refused because the deal was
screened again while the case page was open names the changes since the screening the page showed.
"""

from __future__ import annotations

from hrdd import material
from hrdd.model import Transaction, severity_rank
from hrdd.workspace.util import end_user_key


def _label(party: list) -> str:
    role, name, country = party
    return f"{role} {name!r}" + (f" ({country})" if country else "")


def _parties_by_key(transaction: Transaction) -> dict[tuple[str, str], list]:
    parties = sorted(transaction.parties, key=lambda p: (p.role, p.name.strip().lower(), p.country or ""))
    return {(p.role, end_user_key(p.name, p.country)): [p.role, p.name.strip(), p.country or ""] for p in parties}


def _capabilities_by_sku(items: list) -> dict[str, list[str]]:
    # A SKU may appear on several lines (the same part configured differently): compare them all.
    out: dict[str, set[str]] = {}
    for sku, caps in items:
        out.setdefault(sku, set()).update(caps)
    return {sku: sorted(caps) for sku, caps in out.items()}


def material_changes(before_screening: dict, after_screening: dict,
                     rules: material.Rules = material.DEFAULT_RULES) -> list[str]:
    """What changed between two screenings' transactions, in words (empty when nothing material did);
    ``rules``: what besides parties, end-user, items and countries is material (the policy's)."""
    quoted = Transaction.from_dict(before_screening["transaction"])
    ordered = Transaction.from_dict(after_screening["transaction"])
    before, after = quoted.material_facts(), ordered.material_facts()
    changes = []
    # Spelt differently ("The Port Authority of Bergen."), the same end-user: the same key as the rider's
    # coverage, the answers on record and grievances use.
    if end_user_key(quoted.end_user.name, quoted.end_user.country) != \
            end_user_key(ordered.end_user.name, ordered.end_user.country):
        changes.append(f"end-user changed from {quoted.end_user.name.strip()!r} ({quoted.end_user.country}) "
                       f"to {ordered.end_user.name.strip()!r} ({ordered.end_user.country})")
    # Parties by role and the same key (as the rider's coverage and reviewer decisions compare them),
    # named as the CRM spells them.
    old_parties, new_parties = _parties_by_key(quoted), _parties_by_key(ordered)
    changes += [f"new party: {_label(p)}" for key, p in new_parties.items() if key not in old_parties]
    changes += [f"party removed: {_label(p)}" for key, p in old_parties.items() if key not in new_parties]
    old_items = _capabilities_by_sku(before["items"])
    new_items = _capabilities_by_sku(after["items"])
    for sku, caps in new_items.items():
        if sku not in old_items:
            changes.append(f"new item: {sku}" + (f" ({', '.join(caps)})" if caps else ""))
        elif caps != old_items[sku]:
            changes.append(f"item {sku} capabilities changed from {old_items[sku]} to {caps}")
    changes += [f"item removed: {sku}" for sku in old_items if sku not in new_items]
    changes += [f"new country: {c}" for c in after["countries"] if c not in before["countries"]]
    changes += [f"country removed: {c}" for c in before["countries"] if c not in after["countries"]]
    # A country already in the deal (a consignee's, say) becoming a place of deployment is a change too.
    old_deployment, new_deployment = before.get("deployment", []), after.get("deployment", [])
    changes += [f"new deployment country: {c}" for c in new_deployment
                if c not in old_deployment and c in before["countries"]]
    changes += [f"no longer a deployment country: {c}" for c in old_deployment
                if c not in new_deployment and c in after["countries"]]
    return changes + material.changes(before, after, rules)


def worst_severities(screening: dict) -> dict[str, str]:
    """Each red flag id of a screening with the worst severity it was raised at."""
    worst: dict[str, str] = {}
    for flag in screening.get("red_flags") or ():
        if flag["id"] not in worst or severity_rank(flag["severity"]) > severity_rank(worst[flag["id"]]):
            worst[flag["id"]] = flag["severity"]
    return worst


def flag_changes(before_screening: dict, after_screening: dict) -> list[str]:
    """Red flags raised, dropped or changed in severity, and a changed engine decision, in words."""
    before, after = worst_severities(before_screening), worst_severities(after_screening)
    changes = [f"new red flag: {flag_id} ({severity})" for flag_id, severity in sorted(after.items())
               if flag_id not in before]
    changes += [f"red flag {flag_id} {before[flag_id]} -> {severity}" for flag_id, severity in sorted(after.items())
                if flag_id in before and before[flag_id] != severity]
    changes += [f"red flag no longer raised: {flag_id} ({severity})" for flag_id, severity in sorted(before.items())
                if flag_id not in after]
    old, new = before_screening.get("decision"), after_screening.get("decision")
    if old != new:
        changes.append(f"engine decision {old} -> {new}")
    return changes
