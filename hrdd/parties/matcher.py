"""Screen one name against an index: thresholds and country qualifier from policy, explained matches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hrdd.parties.countries import country_code
from hrdd.parties.index import Hit, PartyIndex
from hrdd.parties.normalize import NormalName


@dataclass(frozen=True)
class MatchPolicy:
    """Thresholds (0-100) and the country qualifier, from the policy's ``parties`` section."""

    confirmed: float = 94.0
    possible: float = 80.0
    country_agrees: float = 5.0
    country_differs: float = -8.0
    max_matches: int = 10

    @classmethod
    def from_policy(cls, section: dict) -> MatchPolicy:
        """Read the policy section; a missing key keeps the default, a nonsensical value is refused."""
        country = section.get("country") or {}
        policy = cls(
            confirmed=float(section.get("confirmed_threshold", cls.confirmed)),
            possible=float(section.get("possible_threshold", cls.possible)),
            country_agrees=float(country.get("agrees", cls.country_agrees)),
            country_differs=float(country.get("differs", cls.country_differs)),
            max_matches=int(section.get("max_matches", cls.max_matches)),
        )
        if not 0 < policy.possible <= policy.confirmed <= 100:
            raise ValueError("policy parties: need 0 < possible_threshold <= confirmed_threshold <= 100")
        if policy.country_agrees < 0 or policy.country_differs > 0:
            raise ValueError("policy parties.country: 'agrees' must be >= 0 and 'differs' <= 0")
        return policy


class Matcher:
    """Screens names against one index with one match policy; remembers recent answers."""

    def __init__(self, index: PartyIndex, policy: MatchPolicy, list_version: str = "", number: str = ""):
        """``list_version`` names the lists (``csl@3+own@4``); ``number`` is the newest version id of them."""
        self.index = index
        self.policy = policy
        self.list_version = list_version
        # Screenings record the number (comparable across loads: `hrdd rescreen --since-list-version V`)
        # and the lists behind it.
        self.versions = {"parties": number or list_version, "parties_lists": list_version}
        self._cache: dict[tuple[str, str | None], list[dict[str, Any]]] = {}

    def screen(self, name: str, country: str | None = None) -> list[dict[str, Any]]:
        """Matches for a name (best first): entry, matched name, score, status and explanation."""
        code = country_code(country) if country else None
        key = (name, code)
        cached = self._cache.get(key)
        if cached is not None:
            return cached
        normal = self.index.normaliser.normalise(name)
        threshold = self.policy.possible - (self.policy.country_agrees if code else 0.0)
        graded = [g for g in (self._grade(hit, code) for hit in self.index.search(normal, threshold)) if g]
        graded.sort(key=lambda g: (-g[1], self.index.entries[g[0].entry].entry_id))
        matches = [self._match(normal, hit, score, status, adjust, note, code)
                   for hit, score, status, adjust, note in graded[: self.policy.max_matches]]
        if len(self._cache) > 50_000:
            self._cache.clear()
        self._cache[key] = matches
        return matches

    def _grade(self, hit: Hit, code: str | None) -> tuple | None:
        entry = self.index.entries[hit.entry]
        adjust, note = self._country(code, entry.countries)
        score = max(0.0, min(100.0, hit.score + adjust))
        if score >= self.policy.confirmed and (not hit.acronym or adjust > 0):
            # An acronym alone ("AIG") is confirmed only when the country agrees too.
            status = "confirmed"
        elif score >= self.policy.possible or hit.score >= self.policy.possible:
            # The country qualifies a score but never hides a name that matches on its own.
            status = "possible"
        else:
            return None
        return hit, score, status, adjust, note

    def _match(self, normal: NormalName, hit: Hit, score: float, status: str, adjust: float, note: str,
               code: str | None) -> dict[str, Any]:
        entry = self.index.entries[hit.entry]
        return {
            "list": entry.list,
            "entry_id": entry.entry_id,
            "name": entry.name,
            "matched_name": self.index.var_text[hit.variant],
            "score": round(score, 1),
            "status": status,
            "country": ";".join(entry.countries) or None,
            "list_version": self.index.sources[hit.entry] if self.index.sources else self.list_version,
            "entry_hash": self.index.entry_hash(hit.entry),
            "explanation": self._explain(normal, hit, entry, code, adjust, note, score, status),
        }

    def _country(self, code: str | None, listed: tuple[str, ...]) -> tuple[float, str]:
        if not code:
            return 0.0, "no country given"
        if not listed:
            return 0.0, f"{code} given; the listing names no country"
        if code in listed:
            return self.policy.country_agrees, f"{code} agrees with the listing ({', '.join(listed)})"
        return self.policy.country_differs, f"{code} differs from the listing ({', '.join(listed)})"

    def _explain(self, normal: NormalName, hit: Hit, entry, code, adjust, country_note, score, status
                 ) -> dict[str, Any]:
        listed_words = self.index.variant_words(hit.variant)
        agreed, query_only, listed_only = [], list(normal.tokens), list(listed_words)
        if hit.alignment is not None:
            for i, j, sim in hit.alignment.pairs:
                agreed.append({"query": normal.tokens[i], "listed": listed_words[j], "similarity": round(sim, 1)})
            paired_q = {i for i, _, _ in hit.alignment.pairs}
            paired_c = {j for _, j, _ in hit.alignment.pairs}
            query_only = [w for i, w in enumerate(normal.tokens) if i not in paired_q]
            listed_only = [w for j, w in enumerate(listed_words) if j not in paired_c]
        elif hit.method == "spacing":
            query_only, listed_only = [], []
        how = {
            "words": "words agreed: " + (", ".join(
                f"{a['query']}={a['listed']}" + ("" if a["similarity"] == 100 else f" ({a['similarity']:g})")
                for a in agreed) or "none"),
            "spacing": "the same letters with different spacing",
            "native": "identical native-script name",
        }[hit.method]
        parts = [f"{status} match ({score:.1f}) with {entry.name!r} via {self.index.var_text[hit.variant]!r}: {how}"]
        if query_only:
            parts.append("not in the listed name: " + ", ".join(query_only))
        if listed_only:
            parts.append("listed words not given: " + ", ".join(listed_only))
        if normal.removed:
            parts.append("ignored legal forms and stop words: " + ", ".join(normal.removed))
        parts.append(f"country: {country_note}" + (f" ({adjust:+g})" if adjust else ""))
        parts.append(f"listed on {entry.citation()}")
        return {
            "text": "; ".join(parts),
            "method": hit.method,
            "name_score": round(hit.score, 1),
            "agreed": agreed,
            "query_only": query_only,
            "listed_only": listed_only,
            "ignored": list(normal.removed),
            "country": {"given": code, "listed": list(entry.countries), "adjustment": adjust, "note": country_note},
            "list": entry.list,
            "federal_register_notice": entry.federal_register_notice,
            "source": entry.source,
            "source_url": entry.source_url,
            "programs": entry.programs,
        }
