"""Name normalisation for screening: Unicode, transliteration, legal forms and stop words."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from anyascii import anyascii

from hrdd.yamltext import load_yaml

VOCABULARY_FILE = Path(__file__).with_name("vocabulary.yaml")
CONFUSABLES_FILE = Path(__file__).with_name("confusables.tsv")

_INITIALS = re.compile(r"\b(?:[a-z]\.)+(?:[a-z]\b)?")
_APOSTROPHES = re.compile(r"['`´’‘ʼ]")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_NATIVE_SPLIT = re.compile(r"[\s\W_]+")
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class NormalName:
    """A name reduced to the words that identify it, plus what was dropped and its exact-match keys."""

    original: str
    tokens: tuple[str, ...]
    removed: tuple[str, ...]
    native: str | None

    @property
    def compact(self) -> str:
        """The identifying words without spaces, so "Sense Time" and "SenseTime" compare equal."""
        return "".join(self.tokens)

    @property
    def key(self) -> str:
        """A stable key for the name (used to remember false-positive decisions for a party)."""
        return " ".join(self.tokens) if self.tokens else (self.native or "")


class Normaliser:
    """Applies a vocabulary (legal forms, stop words, weak words, places, abbreviations) to names."""

    def __init__(self, vocabulary: dict[str, Any], *, fold_homoglyphs: bool = True):
        self.fold_homoglyphs = fold_homoglyphs
        self.legal_forms = frozenset(vocabulary.get("legal_forms") or ())
        self.stop_words = frozenset(vocabulary.get("stop_words") or ())
        self.abbreviations = {str(k): str(v) for k, v in (vocabulary.get("abbreviations") or {}).items()}
        self.place_words = frozenset(str(w) for w in vocabulary.get("place_words") or ())
        self.place_kinds = frozenset(str(w) for w in vocabulary.get("place_kinds") or ())
        # Words of place names: weak words that weigh as places ("Mexico City", "North Korea").
        compass = frozenset(str(w) for w in vocabulary.get("compass_words") or ())
        self.place_name_words = self.place_kinds | compass
        self.weak_words = frozenset(
            self.abbreviations.get(str(w), str(w)) for w in vocabulary.get("weak_words") or ()
        ) | self.place_words | self.place_name_words
        phrases: dict[int, set[tuple[str, ...]]] = {}
        for phrase in vocabulary.get("legal_phrases") or ():
            words = tuple(self.abbreviations.get(w, w) for w in str(phrase).split())
            phrases.setdefault(len(words), set()).add(words)
        # Longest phrases first so "public joint stock company" wins over "joint stock company".
        self.phrases = sorted(phrases.items(), reverse=True)
        self.phrase_starts = frozenset(words[0] for group in phrases.values() for words in group)
        # Longest first so that a suffix like 股份有限公司 goes before 有限公司 and 公司.
        self.native_legal_forms = tuple(
            sorted({_native_key(str(f)) for f in vocabulary.get("native_legal_forms") or ()}, key=len, reverse=True)
        )

    @classmethod
    def from_file(cls, path: str | Path = VOCABULARY_FILE, *, fold_homoglyphs: bool = True) -> Normaliser:
        """Load a vocabulary YAML file; the error names the file."""
        path = Path(path)
        try:
            data = load_yaml(path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ValueError(f"vocabulary file {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"vocabulary file {path}: the top level must be a mapping")
        for section, entries in data.items():
            values = list(entries.items()) if isinstance(entries, dict) else entries or []
            for entry in values if isinstance(values, list) else [values]:
                for word in entry if isinstance(entry, tuple) else (entry,):
                    if not isinstance(word, str):
                        # YAML reads bare on/no/yes/off as booleans: "on" and "no" were silently lost.
                        raise ValueError(f"vocabulary file {path}: {section}: {word!r} is not a word; "
                                         "quote it (for example \"on\", \"no\")")
        return cls(data, fold_homoglyphs=fold_homoglyphs)

    def is_weak(self, token: str) -> bool:
        """True for words that cannot carry a match on their own (sector words, common places)."""
        return token in self.weak_words

    def is_place(self, token: str) -> bool:
        """True for places that prefix many listed names (the lightest of the weak words)."""
        return token in self.place_words

    def names_place(self, tokens: tuple[str, ...]) -> bool:
        """True for words that only name a place: "Hong Kong", "Mexico City", "North America", "Tula Oblast"."""
        # A place kind with one other word names a place whatever the word ("Tula Oblast", "City of Tula");
        # "City" alone does not.
        if len(tokens) == 2 and (tokens[0] in self.place_kinds) != (tokens[1] in self.place_kinds):
            return True
        return any(w in self.place_words for w in tokens) and all(
            w in self.place_words or w in self.place_name_words for w in tokens)

    def normalise(self, name: str) -> NormalName:
        """Reduce a name to its identifying words (ASCII, lower case) and its native-script key."""
        text = (name or "").strip()
        if not text.isprintable():
            text = _strip_invisible(text)
        if text.isascii():
            native = None
            ascii_text = text.lower()
        else:
            text = unicodedata.normalize("NFKC", text)
            if self.fold_homoglyphs:
                text = fold_homoglyphs(text)
            native = self._native(text)
            ascii_text = anyascii(text).lower()
        if "&" in ascii_text:
            ascii_text = ascii_text.replace("&", " and ")
        ascii_text = _APOSTROPHES.sub("", ascii_text)
        if "." in ascii_text:
            ascii_text = _INITIALS.sub(_join_initials, ascii_text)
        words = [self.abbreviations.get(w, w) for w in _NON_ALNUM.split(ascii_text) if w]
        kept: list[str] = []
        removed: list[str] = []
        i = 0
        while i < len(words):
            size = self._phrase_at(words, i) if words[i] in self.phrase_starts else 0
            if size:
                removed.append(" ".join(words[i:i + size]))
                i += size
                continue
            word = words[i]
            if word in self.legal_forms or word in self.stop_words:
                removed.append(word)
            else:
                kept.append(word)
            i += 1
        return NormalName(name, tuple(kept), tuple(removed), native)

    def _phrase_at(self, words: list[str], i: int) -> int:
        for size, phrases in self.phrases:
            if i + size <= len(words) and tuple(words[i:i + size]) in phrases:
                return size
        return 0

    def _native(self, text: str) -> str | None:
        if text.isascii():
            return None
        words = [_native_key(w) for w in _NATIVE_SPLIT.split(text)]
        words = [w for w in words if w and w not in self.native_legal_forms]
        key = "".join(words)
        # CJK names are written without spaces, so their legal forms are suffixes inside the word.
        for form in self.native_legal_forms:
            if _is_cjk(form) and key.endswith(form) and key != form:
                key = key[: -len(form)]
        return key or None


def _strip_invisible(text: str) -> str:
    """Whitespace controls become spaces; other controls, format characters (zero-width, bidi, soft
    hyphen) and surrogates vanish, so none of them can split or hide a word.

    Without this a stray control character made an ASCII name take the native-script path, so
    "Acme\x8b" and "Acme" got different keys.
    """
    out = []
    for ch in text:
        if ch.isspace():
            out.append(" ")
        elif unicodedata.category(ch) not in ("Cc", "Cf", "Cs"):
            out.append(ch)
    return "".join(out).strip()


def fold_homoglyphs(text: str) -> str:
    """In each word that mixes Latin letters with another script, that script's Latin look-alikes become Latin."""
    table = _confusables()
    if not any(ord(ch) in table for ch in text):
        return text
    return _WORD.sub(lambda m: _fold_word(m.group(), table), text)


def _fold_word(word: str, table: dict[int, str]) -> str:
    # Only mixed words written mostly in Latin: a word wholly in Cyrillic or Greek is a real name and keeps its
    # phonetic spelling, and so does one with a stray Latin letter ("Pостех" with a Latin P is Rostekh).
    if not any(ord(ch) in table for ch in word):
        return word
    letters = [ch for ch in word if ch.isalpha()]
    latin = sum(1 for ch in letters if _is_latin(ch))
    if latin and latin >= len(letters) - latin:
        return word.translate(table)
    return word


def _is_latin(ch: str) -> bool:
    if ch.isascii():
        return ch.isalpha()
    return ch.isalpha() and unicodedata.name(ch, "").startswith("LATIN ")


@lru_cache(maxsize=1)
def _confusables() -> dict[int, str]:
    """Code point → Latin look-alike, from the generated subset of Unicode's confusables.txt."""
    table = {}
    for line in CONFUSABLES_FILE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            code, latin = line.split("\t")[:2]
            table[int(code, 16)] = latin
    return table


def _join_initials(match: re.Match) -> str:
    return match.group().replace(".", "")


def _native_key(text: str) -> str:
    """Case-folded letters and digits of a name in its own script (for exact comparison)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in folded if unicodedata.category(ch)[0] in "LN")


def _is_cjk(text: str) -> bool:
    return any("\u3040" <= ch <= "\u9fff" or "\uf900" <= ch <= "\ufaff" for ch in text)


@lru_cache(maxsize=1)
def default_normaliser() -> Normaliser:
    """The normaliser with the shipped vocabulary."""
    return Normaliser.from_file()
