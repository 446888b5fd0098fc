"""A blocking index over list names: word and deletion-neighbourhood lookups, then rapidfuzz scoring."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from hrdd.parties.countries import country_code
from hrdd.parties.entries import ListEntry
from hrdd.parties.normalize import Normaliser, NormalName, default_normaliser
from hrdd.parties.scoring import Alignment, align

_PARENTHESES = re.compile(r"\(([^()]*)\)")


@dataclass(frozen=True)
class IndexSettings:
    """Matching knobs that shape the index (from the policy's ``parties`` section)."""

    token_similarity: float = 80.0  # rapidfuzz ratio at which two words count as the same word
    min_fuzzy_length: int = 5       # shorter words ("aig", "nso") must be spelt exactly
    weak_word_weight: float = 4.0   # the most a sector word can weigh
    place_word_weight: float = 1.0  # the most a common place can weigh
    similarity_floor: float = 40.0  # a word pair's similarity counts as (sim - floor) / (100 - floor)

    @classmethod
    def from_policy(cls, section: dict) -> IndexSettings:
        """Read the settings from the policy's parties section (defaults for absent keys)."""
        return cls(float(section.get("token_similarity", cls.token_similarity)),
                   int(section.get("min_fuzzy_length", cls.min_fuzzy_length)),
                   float(section.get("weak_word_weight", cls.weak_word_weight)),
                   float(section.get("place_word_weight", cls.place_word_weight)),
                   float(section.get("similarity_floor", cls.similarity_floor)))


@dataclass(frozen=True)
class Hit:
    """A listed name whose score reached the threshold asked for."""

    entry: int               # position of the entry in the index
    variant: int             # position of the matched name or alias
    score: float             # the name score 0-100 (before any country qualifier)
    method: str              # words | spacing | native
    alignment: Alignment | None
    acronym: bool = False    # the listed form is one short word (an acronym such as "AIG")


class PartyIndex:
    """Every name and alias of a list, normalised, with the lookups that find candidates fast."""

    def __init__(self, entries: Sequence[ListEntry], settings: IndexSettings | None = None,
                 normaliser: Normaliser | None = None, hashes: Sequence[str] | None = None,
                 sources: Sequence[str] | None = None):
        """Index ``entries``; ``hashes`` are their stored content hashes, ``sources`` the loaded list
        version each came from (e.g. ``csl@3``), both optional and parallel to ``entries``."""
        self.entries = tuple(entries)
        self.sources = tuple(sources) if sources is not None else None
        self.settings = settings or IndexSettings()
        self.normaliser = normaliser or default_normaliser()
        self.var_entry: list[int] = []
        self.var_text: list[str] = []
        self.var_tokens: list[tuple[int, ...]] = []
        self.vocab: dict[str, int] = {}
        self.words: list[str] = []
        self.postings: list[list[int]] = []      # word id -> variants with an identifying word
        self.weak_postings: dict[int, list[int]] = {}  # word id -> variants made only of weak words
        self.deletions: dict[str, int | list[int]] = {}
        self.compact: dict[str, list[int]] = {}
        self.native: dict[str, list[int]] = {}
        self.acronyms: set[int] = set()
        self._by_id: dict[str, list[int]] | None = None
        self._hashes: dict[int, str] = dict(enumerate(hashes)) if hashes is not None else {}
        self._build()
        self._sims_cache: dict[str, dict[int, float]] = {}

    # -- building ---------------------------------------------------------------------------------

    def _build(self) -> None:
        normalise, is_weak = self.normaliser.normalise, self.normaliser.is_weak
        min_len = self.settings.min_fuzzy_length
        vocab, words, postings = self.vocab, self.words, self.postings
        entry_df: list[int] = []
        for e, entry in enumerate(self.entries):
            seen_in_entry: set[int] = set()
            for text in _expand_names(entry.names(), self._qualifier):
                normal = normalise(text)
                if not normal.tokens or (len(normal.tokens) == 1 and is_weak(normal.tokens[0])):
                    continue  # one sector word or place alone ("Technology") identifies nothing
                ids = []
                for word in normal.tokens:
                    t = vocab.get(word)
                    if t is None:
                        t = vocab[word] = len(words)
                        words.append(word)
                        postings.append([])
                        entry_df.append(0)
                    ids.append(t)
                tokens = tuple(ids)
                v = len(self.var_entry)
                self.var_entry.append(e)
                self.var_text.append(text)
                self.var_tokens.append(tokens)
                if len(tokens) == 1 and len(normal.tokens[0]) < min_len:
                    self.acronyms.add(v)
                self.compact.setdefault(normal.compact, []).append(v)
                all_weak = all(is_weak(w) for w in normal.tokens)
                for t in set(tokens):
                    if all_weak:
                        self.weak_postings.setdefault(t, []).append(v)
                    elif not is_weak(words[t]):
                        postings[t].append(v)
                    seen_in_entry.add(t)
            for text in entry.native_names:
                key = normalise(text).native
                if key:
                    v = len(self.var_entry)
                    self.var_entry.append(e)
                    self.var_text.append(text)
                    self.var_tokens.append(())
                    self.native.setdefault(key, []).append(v)
            for t in seen_in_entry:
                entry_df[t] += 1
        n = max(1, len(self.entries))
        self.unknown_weight = math.log((n + 1) / 1.5)
        self.weights = [self._cap(w, math.log((n + 1) / (df + 0.5))) for w, df in zip(words, entry_df, strict=True)]
        self.weak = [is_weak(w) for w in words]
        self.place = [self.normaliser.is_place(w) for w in words]
        self._build_neighbourhood(min_len)

    def _build_neighbourhood(self, min_len: int) -> None:
        # Each key maps to one word id, or to a list of them when words share the key (rare, saves memory).
        deletions = self.deletions
        get = deletions.get
        for t, word in enumerate(self.words):
            keys = [word]
            if len(word) >= min_len:
                keys.extend(word[:i] + word[i + 1:] for i in range(len(word)))
            for key in keys:
                current = get(key)
                if current is None:
                    deletions[key] = t
                elif current.__class__ is int:
                    if current != t:
                        deletions[key] = [current, t]
                elif current[-1] != t:
                    current.append(t)

    def _qualifier(self, text: str) -> bool:
        # "(Hong Kong)", "(New Zealand)", "(UK)": as aliases they made "Hong Kong" a listed name, so the
        # place alone matched (confirmed) a subsidiary named after it.
        normal = self.normaliser.normalise(text)
        return not normal.tokens or self.names_place(normal)

    def names_place(self, normal: NormalName) -> bool:
        """True for a name that only names a place (``Normaliser.names_place``) or a country ("Costa Rica")."""
        if not normal.tokens:
            return False
        if self.normaliser.names_place(normal.tokens):
            return True
        # Codes are left out: a two- or three-letter name is as often a party's acronym ("Tambov Plant (TZ)").
        text = normal.original.strip()
        return len(text) > 3 and country_code(text) is not None

    def _cap(self, word: str, weight: float) -> float:
        # Inverse document frequency (over entries) measures identity; sector words and places are capped.
        # Words of place names ("City", "North") weigh as places: "Mexico City" is as often given without.
        if self.normaliser.is_place(word) or word in self.normaliser.place_name_words:
            return min(weight, self.settings.place_word_weight)
        if self.normaliser.is_weak(word):
            return min(weight, self.settings.weak_word_weight)
        return weight

    # -- querying ---------------------------------------------------------------------------------

    def word_weight(self, word: str) -> float:
        """How much identity a word carries (rarer on the list = more); unseen words weigh the most."""
        t = self.vocab.get(word)
        return self.weights[t] if t is not None else self._cap(word, self.unknown_weight)

    def similar_words(self, word: str) -> dict[int, float]:
        """List words within the similarity threshold of ``word`` (one-edit neighbourhood, then rapidfuzz)."""
        cached = self._sims_cache.get(word)
        if cached is not None:
            return cached
        found: set[int] = set()
        short = len(word) < self.settings.min_fuzzy_length
        for key in (word,) if short else (word, *_deletions(word)):
            hit = self.deletions.get(key)
            if hit is None:
                continue
            if isinstance(hit, int):
                found.add(hit)
            else:
                found.update(hit)
        sims = {t: sim for t in found if (sim := self._similarity(word, self.words[t]))}
        if len(self._sims_cache) > 200_000:
            self._sims_cache.clear()
        self._sims_cache[word] = sims
        return sims

    def exhaustive_similar_words(self, word: str) -> dict[int, float]:
        """Like ``similar_words`` but compares against every list word (the brute-force reference)."""
        cutoff = self.settings.token_similarity
        return {t: sim for other, sim, t in process.extract(word, self.words, scorer=fuzz.ratio,
                                                           score_cutoff=cutoff, limit=None)
                if self._similarity(word, other)}

    def _similarity(self, word: str, other: str) -> float:
        if word == other:
            return 100.0
        if min(len(word), len(other)) < self.settings.min_fuzzy_length:
            return 0.0
        return fuzz.ratio(word, other, score_cutoff=self.settings.token_similarity)

    def search(self, normal: NormalName, threshold: float) -> list[Hit]:
        """Best hit per entry with a name score at or above ``threshold``, using the blocking index."""
        if not self._searchable(normal):
            return self._exact_hits(normal)
        q_sims = [self.similar_words(w) for w in normal.tokens]
        q_weights, q_weak = self._profile(normal, q_sims)
        candidates = self._candidates(normal, q_sims, q_weights, q_weak, threshold)
        return self._score(normal, self._complete(normal, q_sims, candidates), q_weights, q_weak, candidates,
                           threshold)

    def brute_force(self, normal: NormalName, threshold: float) -> list[Hit]:
        """The same scoring applied to every listed name (no blocking): the reference for recall."""
        if not self._searchable(normal):
            return self._exact_hits(normal)
        q_sims = [self.exhaustive_similar_words(w) for w in normal.tokens]
        q_weights, q_weak = self._profile(normal, q_sims)
        return self._score(normal, q_sims, q_weights, q_weak, range(len(self.var_entry)), threshold)

    def _profile(self, normal: NormalName, q_sims: list[dict[int, float]]) -> tuple[list[float], list[bool]]:
        """Weight and weakness of each query word; a misspelt list word inherits them ("Tecnology")."""
        weights, weak = [], []
        for word, sims in zip(normal.tokens, q_sims, strict=True):
            t = self.vocab.get(word)
            if t is None and sims:
                t = max(sims, key=lambda k: (sims[k], self.weights[k]))
            if t is None:
                weights.append(self._cap(word, self.unknown_weight))
                weak.append(self.normaliser.is_weak(word))
            else:
                weights.append(self.weights[t])
                weak.append(self.weak[t])
        return weights, weak

    def _complete(self, normal: NormalName, q_sims: list[dict[int, float]], candidates: set[int]
                  ) -> list[dict[int, float]]:
        """Add the similarities the neighbourhood cannot see (two edits apart) for the candidates' words."""
        words = {t for v in candidates for t in self.var_tokens[v]}
        min_len = self.settings.min_fuzzy_length
        words = [t for t in words if len(self.words[t]) >= min_len]
        out = []
        for word, sims in zip(normal.tokens, q_sims, strict=True):
            missing = [t for t in words if t not in sims] if len(word) >= min_len else []
            if missing:
                sims = dict(sims)
                for _, sim, k in process.extract(word, [self.words[t] for t in missing], scorer=fuzz.ratio,
                                                 score_cutoff=self.settings.token_similarity, limit=None):
                    sims[missing[k]] = sim
            out.append(sims)
        return out

    def _searchable(self, normal: NormalName) -> bool:
        tokens = normal.tokens
        if not tokens or (len(tokens) == 1 and self.normaliser.is_weak(tokens[0])):
            return False
        # A place ("Mexico City", "Tehran Province", "Costa Rica") is no party: agreeing with the place a
        # listed branch is named after ("Huawei OpenLab Mexico City") says nothing about the branch. Only
        # a listed name that is the same place matches it (_exact_hits).
        return not self.names_place(normal)

    def _exact_hits(self, normal: NormalName) -> list[Hit]:
        """Listed names written the same (native script, or the same words but for spacing)."""
        hits = {}
        for v in self.native.get(normal.native or "", ()):
            hits.setdefault(self.var_entry[v], Hit(self.var_entry[v], v, 100.0, "native", None))
        for v in self.compact.get(normal.compact, ()) if normal.tokens else ():
            hits.setdefault(self.var_entry[v],
                            Hit(self.var_entry[v], v, 100.0, "spacing", None, v in self.acronyms))
        return sorted(hits.values(), key=lambda h: h.entry)

    def _candidates(self, normal: NormalName, q_sims: list[dict[int, float]], weights: list[float],
                    q_weak: list[bool], threshold: float) -> set[int]:
        total = sum(weights)
        # A name that agrees on none of the words in `needed` cannot reach the threshold: with r the
        # share of query weight outside them, the score is at most 2r / (1 + r).
        bound = threshold / (200.0 - threshold)
        order = sorted((i for i in range(len(weights)) if not q_weak[i]), key=lambda i: -weights[i])
        remaining = total
        candidates: set[int] = set()
        for i in order:
            for t in q_sims[i]:
                if not self.weak[t]:
                    candidates.update(self.postings[t])
            remaining -= weights[i]
            if remaining / total < bound:
                break
        if len(normal.tokens) > 1:
            # Names made only of weak words match only when every word pairs up, so any one word's
            # postings hold them all: take the word with the fewest.
            best: set[int] | None = None
            for sims in q_sims:
                found = {v for t in sims for v in self.weak_postings.get(t, ())}
                if best is None or len(found) < len(best):
                    best = found
            candidates.update(best or ())
        candidates.update(self.compact.get(normal.compact, ()))
        candidates.update(self.native.get(normal.native or "", ()))
        return candidates

    def _score(self, normal: NormalName, q_sims: list[dict[int, float]], q_weights: list[float],
               q_weak: list[bool], variants: Iterable[int], threshold: float) -> list[Hit]:
        weights, weak, var_tokens = self.weights, self.weak, self.var_tokens
        is_place = self.place.__getitem__
        best: dict[int, Hit] = {}
        compact_hits = set(self.compact.get(normal.compact, ()))
        native_hits = set(self.native.get(normal.native or "", ())) if normal.native else set()
        for v in variants:
            tokens = var_tokens[v]
            if v in native_hits:
                hit = Hit(self.var_entry[v], v, 100.0, "native", None)
            elif v in compact_hits:
                hit = Hit(self.var_entry[v], v, 100.0, "spacing", None, v in self.acronyms)
            elif not tokens:
                continue
            else:
                result = align(q_sims, q_weights, q_weak, tokens, [weights[t] for t in tokens],
                               [weak[t] for t in tokens], self.settings.similarity_floor, is_place)
                if result is None or result.score < threshold:
                    continue
                hit = Hit(self.var_entry[v], v, result.score, "words", result, v in self.acronyms)
            current = best.get(hit.entry)
            if current is None or hit.score > current.score:
                best[hit.entry] = hit
        return sorted(best.values(), key=lambda h: (-h.score, h.entry))

    def find(self, entry_id: str) -> list[int]:
        """Positions of the entries with this id (one per loaded list that has it)."""
        if self._by_id is None:
            by_id: dict[str, list[int]] = {}
            for e, entry in enumerate(self.entries):
                by_id.setdefault(entry.entry_id, []).append(e)
            self._by_id = by_id
        return self._by_id.get(entry_id, [])

    def source(self, e: int) -> str | None:
        """The loaded list version an entry came from (``name@version``), when known."""
        return self.sources[e] if self.sources else None

    def entry_hash(self, e: int) -> str:
        """The content hash of an entry (computed once)."""
        h = self._hashes.get(e)
        if h is None:
            h = self._hashes[e] = self.entries[e].content_hash()
        return h

    def variant_words(self, v: int) -> tuple[str, ...]:
        """The normalised words of a listed name or alias."""
        return tuple(self.words[t] for t in self.var_tokens[v])

    def stats(self) -> dict[str, int]:
        """Sizes for `hrdd lists` and the benchmark."""
        return {"entries": len(self.entries), "names": len(self.var_entry), "words": len(self.words),
                "neighbourhood_keys": len(self.deletions)}


def _deletions(word: str) -> list[str]:
    """Every string one deletion away: two words within one edit share one of these (or each other)."""
    return [word[:i] + word[i + 1:] for i in range(len(word))] if len(word) > 1 else []


def _expand_names(names: Iterable[str], qualifier: Callable[[str], bool] = lambda _: False) -> list[str]:
    """Names plus the forms lists hide in parentheses: "Hangzhou Hikvision (Hikvision)" gives both."""
    # A parenthesised part for which `qualifier` is true ("Huawei Technologies (Australia)") only says where
    # the party is: the name without it is kept, the part itself is no alias.
    out: dict[str, None] = {}
    for name in names:
        out.setdefault(name, None)
        if "(" in name:
            bare = " ".join(_PARENTHESES.sub(" ", name).split())
            if bare:
                out.setdefault(bare, None)
            for inner in _PARENTHESES.findall(name):
                if inner.strip() and not qualifier(inner):
                    out.setdefault(inner.strip(), None)
    return list(out)
