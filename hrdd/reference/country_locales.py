"""Country names in other languages (pycountry's translations), for text people type rather than systems send."""

from __future__ import annotations

import gettext
import unicodedata
from functools import lru_cache
from pathlib import Path

import pycountry

# The languages of most reporters: loading all of pycountry's ~150 catalogues takes seconds and adds
# mistranslations that make names ambiguous.
LOCALES = ("ar fa ur he tr ru uk be kk uz az ka hy zh_CN zh_TW zh_HK ja ko vi th my km lo id ms hi bn ta ne si "
           "am ti so sw ha yo fr de es pt pt_BR it nl pl cs ro hu el bg sr hr").split()


def _key(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


@lru_cache(maxsize=1)
def _index() -> dict[str, str]:
    localedir = Path(pycountry.__file__).parent / "locales"
    found: dict[str, set[str]] = {}
    for locale in LOCALES:
        try:
            catalogue = gettext.translation("iso3166-1", str(localedir), languages=[locale])
        except OSError:
            continue
        for country in pycountry.countries:
            for attr in ("name", "common_name", "official_name"):
                name = getattr(country, attr, None)
                if name:
                    found.setdefault(_key(catalogue.gettext(name)), set()).add(country.alpha_2)
    # A name two countries share in some catalogue resolves to neither.
    return {name: next(iter(codes)) for name, codes in found.items() if len(codes) == 1}


def code_for_translated_name(text: str) -> str | None:
    """The alpha-2 code of a country named in another language ('مصر', 'Ägypten', '中国'), or None."""
    return _index().get(_key(text or "")) if text and text.strip() else None


def warm_up() -> None:
    """Build the index now (about a second) rather than on the first report."""
    _index()
