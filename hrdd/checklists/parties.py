"""The rows of the checklist's Parties sheet: which party each row is about and what its restricted-party result is.

The workbook writes these rows, the upload reads the reviewers' notes back by them (never by row position:
the sheet may be sorted), and a later screening's checklist carries each row's notes to the same party.
"""

from __future__ import annotations

from dataclasses import dataclass

from hrdd.checklists.cells import clean_text

END_USER = "end-user"
UNATTRIBUTED = "unattributed"


@dataclass(frozen=True)
class PartyRow:
    """One row of the Parties sheet: a party and one of its restricted-party results (``match`` None: no match)."""

    role: str
    name: str
    country: str | None
    government_linked: bool | None
    match: dict | None = None
    attributed: bool = True  # False: a match the screening could not tie to a party of the deal

    @property
    def result(self) -> str:
        """The "Restricted-party result" cell."""
        return "no match" if self.match is None else f"{self.match.get('status', 'possible')} match"

    @property
    def entry(self) -> str:
        """The "Matched list entry" cell."""
        if self.match is None:
            return ""
        m = self.match
        return _join([m.get("name"), m.get("matched_name") if m.get("matched_name") != m.get("name") else None,
                      m.get("entry_id")])

    @property
    def list_name(self) -> str:
        """The "List" cell."""
        return "" if self.match is None else str(self.match.get("list") or "")

    def party_key(self) -> tuple[str, str, str]:
        """Which party the row is about: role, name and country, compared as the deal's material facts are.

        The end-user is the end-user whatever its spelling: checklist uploads are only ever carried to a
        screening of the same end-user (compared by identifying words and country).
        """
        if self.role == END_USER:
            return (END_USER, "", "")
        return _identity(self.role, self.name, self.country)

    def result_key(self) -> tuple[str, str, str]:
        """The restricted-party result the row shows (notes about one match are not about another)."""
        return (self.result, self.entry, self.list_name)

    def cells(self) -> tuple[str, ...]:
        """The identifying cells as the workbook writes them and the upload reads them back (trimmed text)."""
        return tuple(clean_text(v).strip() for v in (self.role, self.name, self.country, self.result, self.entry,
                                                      self.list_name))

    def describe(self) -> str:
        """The restricted-party result in words, for notes carried to a row that shows another result."""
        return self.result + (f" ({self.entry}; {self.list_name})" if self.match is not None else "")


def _identity(role, name, country) -> tuple[str, str, str]:
    """A party as the deal's material facts compare it: role, name case-blind, country."""
    return (str(role or ""), str(name or "").strip().lower(), str(country or "").upper())


def _join(values) -> str:
    return " / ".join(str(v) for v in values if v not in (None, ""))


def _owner(match: dict, parties: list[PartyRow]) -> PartyRow | None:
    """The party a match was found for: the engine names it (role, name, country); older screenings by name."""
    party = match.get("party")
    if isinstance(party, dict):
        key = _identity(party.get("role"), party.get("name"), party.get("country"))
        return next((p for p in parties if _identity(p.role, p.name, p.country) == key), None)
    name = str(party or match.get("query") or match.get("party_name") or "").strip().lower()
    return next((p for p in parties if p.name.strip().lower() == name), None) if name else None


def party_rows(screening: dict) -> list[PartyRow]:
    """The Parties sheet's rows for a screening: the end-user and each party (listed once), a row per match."""
    txn = screening.get("transaction") or {}
    end_user = txn.get("end_user") or {}
    parties = [PartyRow(END_USER, str(end_user.get("name") or ""), end_user.get("country"),
                        end_user.get("type") in ("government", "government_linked"))]
    seen = {(END_USER, parties[0].name, parties[0].country)}
    for p in txn.get("parties") or ():
        key = (str(p.get("role") or ""), str(p.get("name") or ""), p.get("country"))
        if key not in seen:  # a party listed twice is one party (as the restricted-party check screens it)
            seen.add(key)
            parties.append(PartyRow(key[0], key[1], key[2], p.get("government_linked")))
    own: dict[int, list[dict]] = {}
    unattributed: list[PartyRow] = []
    for match in screening.get("party_matches") or ():
        owner = _owner(match, parties)
        if owner is not None:
            own.setdefault(id(owner), []).append(match)
        else:  # matches the screening could not tie to a named party
            party = match.get("party")
            named = party if isinstance(party, dict) else {}
            unattributed.append(PartyRow(
                str(named.get("role") or UNATTRIBUTED),
                str(named.get("name") or party or match.get("query") or match.get("party_name") or ""),
                named.get("country"), None, match, attributed=False))
    rows = []
    for party in parties:
        for match in own.get(id(party)) or [None]:
            rows.append(PartyRow(party.role, party.name, party.country, party.government_linked, match))
    return rows + unattributed
