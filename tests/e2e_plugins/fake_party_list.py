"""Test plugin standing in for restricted-party screening: one listed look-alike, honouring reviewers' marks."""

from hrdd.hookspecs import hookimpl
from hrdd.model import RedFlag

LISTED = {"list": "Test List", "entry_id": "TL-0042", "name": "NILE INTEGRATED SYSTEMS FZE",
          "matched_name": "Nile Integrated Systems", "score": 91, "status": "possible", "country": "AE"}


@hookimpl
def hrdd_check(transaction, context):
    """RF-4.3 (possible match, high) for the party named like the listed entry, unless marked false positive."""
    from hrdd.workspace import falsepositives
    flags = []
    for party in transaction.parties:
        if party.name.lower() != "nile integrated systems":
            continue
        if context.store is not None:
            with context.store.engine.connect() as conn:
                if falsepositives.is_marked(conn, party_name=party.name, list_name=LISTED["list"],
                                            entry_id=LISTED["entry_id"]):
                    continue
        match = {**LISTED, "party": {"name": party.name, "role": party.role, "country": party.country}}
        flags.append(RedFlag(id="RF-4.3", step=4, severity="high", title="Possible restricted-party match",
                             evidence=f"{party.name} resembles {LISTED['name']} ({LISTED['list']} {LISTED['entry_id']}), "
                                      f"score {LISTED['score']}", source="Test List (fixture)",
                             data={"matches": [match]}))
    return flags
