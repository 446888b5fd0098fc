"""Country risk from Freedom in the World, the Political Terror Scale and the WGI, every figure traceable."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import pycountry

from hrdd.reference import datasets
from hrdd.reference.country_names import CountryNameIndex, load_name_file, region_of
from hrdd.reference.tables import DataFileError, read_yaml

FIW_STATUS_NAMES = {"F": "Free", "PF": "Partly Free", "NF": "Not Free"}
# Kosovo has no ISO 3166-1 entry; XK is the code the EU, the World Bank and most CRMs use.
_EXTRA_COUNTRIES = {"XK": "Kosovo"}


_ADVICE = "use an ISO 3166-1 alpha-2 code such as 'EG', or a country name"


class UnknownCountry(ValueError):
    """A value that is neither an ISO 3166-1 code nor a recognisable country name."""


@dataclass(frozen=True)
class FiwRecord:
    """Freedom in the World, one edition for one country."""

    edition: int
    data_year: int
    status: str
    total: int
    civic_space: int | None      # D + E, 0-28
    rule_of_law: int | None      # F, 0-16

    def describe(self) -> str:
        """e.g. 'Freedom in the World 2025: Not Free, 18/100'."""
        return f"Freedom in the World {self.edition}: {FIW_STATUS_NAMES.get(self.status, self.status)}, {self.total}/100"


@dataclass(frozen=True)
class PtsRecord:
    """Political Terror Scale, latest coded year for one country."""

    year: int
    scores: dict[str, int]       # PTS_A / PTS_H / PTS_S -> 1..5

    @property
    def worst(self) -> int:
        """The worst (highest) of the coded scores."""
        return max(self.scores.values())

    def describe(self) -> str:
        """e.g. 'Political Terror Scale 2023: 4 (A 4, S 3)'."""
        parts = ", ".join(f"{k[-1]} {v}" for k, v in sorted(self.scores.items()))
        return f"Political Terror Scale {self.year}: {self.worst} ({parts})"


@dataclass(frozen=True)
class WgiRecord:
    """World Bank Worldwide Governance Indicators, rule of law, latest year."""

    year: int
    rule_of_law_percentile: float

    def describe(self) -> str:
        """e.g. 'WGI 2022 rule of law: 18.4th percentile'."""
        return f"WGI {self.year} rule of law: percentile {self.rule_of_law_percentile:.1f}"


@dataclass
class CountryProfile:
    """Everything the engine knows about one country, with the tier and the reasons for it."""

    code: str
    name: str
    fiw: FiwRecord | None = None
    pts: PtsRecord | None = None
    wgi: WgiRecord | None = None
    tier: str = "unknown"
    tier_reasons: list[str] = field(default_factory=list)
    # The latest year of each dataset ("fiw" -> "2026"): a country left out of it is said to be.
    latest: dict[str, str] = field(default_factory=dict)

    @property
    def gaps(self) -> list[str]:
        """Datasets with no figure for this country."""
        return [name for name, rec in (("Freedom in the World", self.fiw), ("Political Terror Scale", self.pts),
                                       ("WGI rule of law", self.wgi)) if rec is None]

    def figures(self) -> str:
        """The figures used, as one evidence sentence with sources and years."""
        return self._figures

    @cached_property
    def _figures(self) -> str:
        parts = [r.describe() + self._left_out(name, year) for name, r, year in (
            ("fiw", self.fiw, self.fiw and self.fiw.edition), ("pts", self.pts, self.pts and self.pts.year),
            ("wgi", self.wgi, self.wgi and self.wgi.year)) if r is not None]
        parts += [f"no {g} data" for g in self.gaps]
        return f"{self.name}: " + "; ".join(parts)

    def _left_out(self, dataset: str, year: int) -> str:
        latest = self.latest.get(dataset)
        return f" (none in {latest})" if latest and str(year) != latest else ""

    def to_dict(self) -> dict[str, Any]:
        """Figures as data, for flag.data and reports."""
        return {
            "code": self.code, "name": self.name, "tier": self.tier, "tier_reasons": self.tier_reasons,
            "fiw": None if not self.fiw else {"edition": self.fiw.edition, "status": self.fiw.status,
                                              "total": self.fiw.total, "civic_space": self.fiw.civic_space,
                                              "rule_of_law": self.fiw.rule_of_law},
            "pts": None if not self.pts else {"year": self.pts.year, "worst": self.pts.worst, **self.pts.scores},
            "wgi": None if not self.wgi else {"year": self.wgi.year,
                                              "rule_of_law_percentile": self.wgi.rule_of_law_percentile},
            "gaps": self.gaps,
        }


class CountryCodes:
    """ISO 3166-1 normalisation (codes and names) with the datasets' non-ISO codes mapped."""

    def __init__(self, aliases: dict[str, str], data_dir: Path | None = None):
        # A code mapped to nothing (~) is a former country or an entity without an ISO code, skipped.
        self.aliases = {str(k).upper(): str(v).upper() if v else None for k, v in aliases.items()}
        self._dataset_codes: dict[str, str | None] = {}
        known = {c.alpha_2 for c in pycountry.countries} | set(_EXTRA_COUNTRIES)
        self.names = CountryNameIndex(_EXTRA_COUNTRIES, *load_name_file(data_dir, known))

    def alpha2_from_dataset_code(self, code: str) -> str | None:
        """Map a dataset's alpha-3 or World Bank code to alpha-2 (None when unmapped)."""
        try:
            return self._dataset_codes[code]
        except KeyError:
            pass
        # The datasets repeat each code once per year: look each up in pycountry once.
        text = (code or "").strip().upper()
        if not text or text == "NA":
            mapped = None
        elif text in self.aliases:
            mapped = self.aliases[text]
        else:
            country = pycountry.countries.get(alpha_3=text)
            mapped = country.alpha_2 if country else None
        self._dataset_codes[code] = mapped
        return mapped

    def is_unmapped_on_purpose(self, code: str) -> bool:
        """True for a former country's code (ISO 3166-3, e.g. YUG) or one country_codes.yaml maps to ~."""
        text = (code or "").strip().upper()
        if text in self.aliases:
            return self.aliases[text] is None
        return len(text) == 3 and pycountry.historic_countries.get(alpha_3=text) is not None

    def name(self, alpha2: str) -> str:
        """The common English name of a country code."""
        if alpha2 in _EXTRA_COUNTRIES:
            return _EXTRA_COUNTRIES[alpha2]
        country = pycountry.countries.get(alpha_2=alpha2)
        return getattr(country, "common_name", None) or country.name

    @lru_cache(maxsize=4096)  # noqa: B019 - one instance per process, bounded
    def normalise(self, value: str) -> str:
        """Return the alpha-2 code for a code or a name ('EG', 'EGY', 'Egypt'); raise UnknownCountry."""
        text = (value or "").strip()
        if not text:
            raise UnknownCountry(f"empty country; {_ADVICE}")
        codes = self.resolve(text)
        if len(codes) == 1:
            return next(iter(codes))
        if codes:
            raise UnknownCountry(f"{text!r} could be {' or '.join(map(self.names.describe, sorted(codes)))}; "
                                 f"send the ISO 3166-1 alpha-2 code of the one meant")
        raise UnknownCountry(f"{text!r} is not an ISO 3166-1 code or a country name{self._hint(text)}; {_ADVICE}")

    def resolve(self, text: str) -> set[str]:
        """Every alpha-2 code a code or name can stand for: one, several (ambiguous) or none."""
        upper = text.strip().upper()
        if len(upper) == 2 and upper.isalpha() and (upper in _EXTRA_COUNTRIES or pycountry.countries.get(alpha_2=upper)):
            return {upper}
        if len(upper) == 3 and upper.isalpha():
            mapped = self.alpha2_from_dataset_code(upper)
            if mapped:
                return {mapped}
        return self.names.lookup(text)

    def _hint(self, text: str) -> str:
        region = region_of(text)
        if region:
            return (f" (it is a region of {self.names.describe(region)}: send the code of the country that "
                    f"governs the place, which decides the figures and embargoes that apply)")
        close = self.names.suggest(text)
        if close:
            return f" (did you mean {' or '.join(map(self.names.describe, close))}?)"
        return ""


@lru_cache(maxsize=1)
def shipped_codes() -> CountryCodes:
    """Codes and names of the shipped data directory (for callers without a deployment's reference data)."""
    from hrdd.config import DEFAULT_DATA_DIR  # noqa: PLC0415 - config imports nothing of ours; keep it that way

    return CountryCodes({}, DEFAULT_DATA_DIR)


def classify(profile: CountryProfile, rules: dict[str, Any]) -> None:
    """Set the profile's tier and reasons from the policy's country_risk section."""
    high, elevated = rules.get("high", {}), rules.get("elevated", {})
    fiw, pts, wgi = profile.fiw, profile.pts, profile.wgi
    reasons_high, reasons_elev = [], []
    if fiw and fiw.status in high.get("fiw_status", []):
        reasons_high.append(f"FIW status {fiw.status}")
    pf_pts = high.get("partly_free_with_pts_at_least")
    if fiw and pts and fiw.status == "PF" and pf_pts is not None and pts.worst >= pf_pts:
        reasons_high.append(f"FIW status PF with PTS {pts.worst} >= {pf_pts}")
    if fiw and fiw.status in elevated.get("fiw_status", []):
        reasons_elev.append(f"FIW status {fiw.status}")
    pts_min = elevated.get("pts_at_least")
    if pts and pts_min is not None and pts.worst >= pts_min:
        reasons_elev.append(f"PTS {pts.worst} >= {pts_min}")
    wgi_below = elevated.get("wgi_rule_of_law_percentile_below")
    if wgi and wgi_below is not None and wgi.rule_of_law_percentile < wgi_below:
        reasons_elev.append(f"WGI rule of law percentile {wgi.rule_of_law_percentile:.1f} < {wgi_below}")
    override = (rules.get("overrides") or {}).get(profile.code)
    if override:
        # The organisation's own judgement, quoted with the figures it sets aside.
        profile.tier, profile.tier_reasons = override["tier"], [f"policy override: {override['reason']}"]
    elif reasons_high:
        profile.tier, profile.tier_reasons = "high", reasons_high
    elif reasons_elev:
        profile.tier, profile.tier_reasons = "elevated", reasons_elev
    elif fiw is None and pts is None and wgi is None:
        profile.tier, profile.tier_reasons = "unknown", ["no country data"]
    else:
        profile.tier, profile.tier_reasons = "low", []


def load_country_profiles(data_dir: Path, rules: dict[str, Any]) -> tuple[CountryCodes, dict[str, CountryProfile],
                                                                           dict[str, str]]:
    """Load the three datasets and classify every country; returns codes, profiles and dataset years.

    Raises DataFileError naming the file, line and column of anything that cannot be read as data.
    """
    codes = CountryCodes(_load_aliases(data_dir / "country_codes.yaml"), data_dir)
    files = datasets.dataset_files(data_dir)
    fiw = datasets.load_fiw(files["fiw"], codes, FiwRecord)
    pts = datasets.load_pts(files["pts"], codes, rules.get("pts_scores", datasets.PTS_COLUMNS), PtsRecord)
    wgi = datasets.load_wgi(files["wgi"], codes, WgiRecord)
    years = {
        "fiw": str(max((r.edition for r in fiw.values()), default="")),
        "pts": str(max((r.year for r in pts.values()), default="")),
        "wgi": str(max((r.year for r in wgi.values()), default="")),
    }
    profiles: dict[str, CountryProfile] = {}
    all_codes = {c.alpha_2 for c in pycountry.countries} | set(_EXTRA_COUNTRIES)
    for code in all_codes:
        profile = CountryProfile(code, codes.name(code), fiw.get(code), pts.get(code), wgi.get(code), latest=years)
        classify(profile, rules)
        profiles[code] = profile
    return codes, profiles, years


def _load_aliases(path: Path) -> dict[str, str | None]:
    """country_codes.yaml: dataset code -> alpha-2 code, or ~ for a code that is no country (YUG)."""
    if not path.exists():
        return {}
    aliases = read_yaml(path) or {}
    if not isinstance(aliases, dict):
        raise DataFileError(f"{path}: expected lines 'CODE: XX' mapping a dataset's code to an alpha-2 code")
    known = {c.alpha_2 for c in pycountry.countries} | set(_EXTRA_COUNTRIES)
    for code, alpha2 in aliases.items():
        if alpha2 is not None and (not isinstance(alpha2, str) or alpha2.upper() not in known):
            raise DataFileError(f"{path}: {code}: {alpha2!r} is not an ISO 3166-1 alpha-2 code (quote codes YAML "
                                f"reads otherwise, such as 'NO'); use ~ for a code that is no country")
    return aliases
