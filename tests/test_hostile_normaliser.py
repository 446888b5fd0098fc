"""Property-based tests of the restricted-party name normaliser and of name screening over HTTP."""

from __future__ import annotations

import json
import re
import unicodedata

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hrdd.parties.normalize import default_normaliser

SETTINGS = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck))
NAMES = st.text(max_size=200)  # any code point: controls, surrogates, combining marks, every script
WORDS = st.lists(st.from_regex(r"\A[A-Za-z0-9]{1,12}\Z"), min_size=1, max_size=6)
TOKEN = re.compile(r"\A[a-z0-9]+\Z")


@pytest.fixture(scope="module")
def normaliser():
    return default_normaliser()


@given(name=NAMES)
@example(name="")
@example(name="\x00\ud800\U0010ffff")
@example(name="ОАО «Газпром»")
@example(name="华为技术有限公司")
@example(name="A.B.C. & Sons, Ltd.")
@SETTINGS
def test_total_on_any_unicode_and_tokens_are_plain_words(normaliser, name):
    result = normaliser.normalise(name)
    assert result.original == name
    assert all(TOKEN.match(t) for t in result.tokens), result.tokens
    assert not set(result.tokens) & (normaliser.legal_forms | normaliser.stop_words)
    json.dumps({"key": result.key, "native": result.native})  # storable as JSON


@given(name=NAMES)
@example(name="Joint of Stock Company Acme")
@example(name="The Co Ltd of Holding")
@example(name="Acme\x8b")
@SETTINGS
def test_idempotent_the_identifying_words_normalise_to_themselves(normaliser, name):
    result = normaliser.normalise(name)
    again = normaliser.normalise(" ".join(result.tokens))
    assert again.tokens == result.tokens
    if result.tokens:  # (a name of stop words only falls back to its native-script letters)
        assert normaliser.normalise(result.key).key == result.key


INVISIBLE = st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e", "\u202c",
                             "\u180e", "\x8b", "\x7f", "\ud800"])


@given(words=WORDS, inserts=st.lists(st.tuples(st.integers(min_value=0), INVISIBLE), min_size=1, max_size=4))
@example(words=["Huawei", "Technologies"], inserts=[(3, "\u200b")])
@SETTINGS
def test_invisible_characters_inside_a_name_do_not_hide_it(normaliser, words, inserts):
    """Zero-width, bidi, soft-hyphen or control characters slipped into a listed name change nothing."""
    name = " ".join(words)
    hidden = name
    for at, ch in inserts:
        at %= len(hidden) + 1
        hidden = hidden[:at] + ch + hidden[at:]
    assert normaliser.normalise(hidden).tokens == normaliser.normalise(name).tokens


def _look_alikes() -> dict[str, list[str]]:
    from hrdd.parties.normalize import _confusables

    found: dict[str, list[str]] = {}
    for code, latin in sorted(_confusables().items()):
        found.setdefault(latin, []).append(chr(code))
    return found


LOOK_ALIKES = _look_alikes()


@given(words=WORDS, swaps=st.lists(st.tuples(st.integers(min_value=0), st.integers(min_value=0)),
                                   min_size=1, max_size=8))
@example(words=["Hikvision"], swaps=[(0, 0)])
@SETTINGS
def test_look_alike_letters_of_other_scripts_inside_a_latin_word_do_not_hide_it(normaliser, words, swaps):
    """Swapping up to half the letters of a Latin word for Greek, Cyrillic, Cherokee … look-alikes changes nothing."""
    disguised = [list(w) for w in words]
    swapped: dict[int, set[int]] = {}
    for at, pick in swaps:
        word = disguised[at % len(disguised)]
        done = swapped.setdefault(at % len(disguised), set())
        # At most half the letters: a word mostly in Cyrillic is read as Cyrillic (a real name with a stray
        # Latin letter), and the first Latin letter stays, so the word still mixes scripts.
        letters = sum(1 for ch in word if ch.isalpha())
        first = next((i for i, ch in enumerate(word) if ch.isascii() and ch.isalpha()), None)
        places = [i for i, ch in enumerate(word) if i != first and i not in done and ch in LOOK_ALIKES]
        if first is not None and places and 2 * (len(done) + 1) <= letters:
            i = places[pick % len(places)]
            word[i] = LOOK_ALIKES[word[i]][pick % len(LOOK_ALIKES[word[i]])]
            done.add(i)
    name = " ".join("".join(w) for w in disguised)
    assert normaliser.normalise(name).tokens == normaliser.normalise(" ".join(words)).tokens, name


def test_vocabulary_words_yaml_would_read_as_booleans_are_refused(tmp_path):
    from hrdd.parties.normalize import Normaliser

    assert {"on", "no"} <= default_normaliser().stop_words
    path = tmp_path / "vocabulary.yaml"
    path.write_text("stop_words: [of, on, the]\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"stop_words: True is not a word; quote it"):
        Normaliser.from_file(path)


@given(words=WORDS, separators=st.lists(st.sampled_from([" ", "  ", "\t", ", ", " - ", "\n", " / "]),
                                         min_size=6, max_size=6))
@SETTINGS
def test_case_spacing_and_punctuation_do_not_change_the_key(normaliser, words, separators):
    plain = normaliser.normalise(" ".join(words)).key
    varied = "".join(w + s for w, s in zip(words, separators, strict=False)).strip()
    assert normaliser.normalise(varied.upper()).key == plain
    assert normaliser.normalise(varied.lower()).key == plain


@given(name=NAMES)
@example(name="ＡＣＭＥ Ｈｏｌｄｉｎｇｓ")  # full-width letters
@example(name="ﬁnance")  # a ligature
@SETTINGS
def test_compatibility_forms_normalise_alike(normaliser, name):
    assert normaliser.normalise(unicodedata.normalize("NFKC", name)).key == normaliser.normalise(name).key


def test_long_names_are_handled(normaliser):
    name = "Acme " * 20000 + "华为" * 5000
    result = normaliser.normalise(name)
    assert result.tokens and result.native


@pytest.mark.api
def test_screening_any_name_over_http_never_causes_a_5xx(app, client, auth_headers):
    crm = auth_headers("crm")

    @given(name=st.text(max_size=120), country=st.none() | st.sampled_from(["EG", "CN", "RU", "Egypt", "zz", "12"]))
    @settings(max_examples=80, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(name, country):
        response = client.post("/v1/parties/screen", data=json.dumps({"name": name, "country": country}),
                               headers=crm, content_type="application/json")
        assert response.status_code < 500, response.get_data(as_text=True)[:300]
        if response.status_code == 200:
            for match in response.get_json()["matches"]:
                assert 0 <= match["score"] <= 100 and match["status"] in ("confirmed", "possible")
        else:
            assert response.get_json()["message"]

    check()
