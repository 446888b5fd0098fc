"""Country risk from Freedom in the World, the Political Terror Scale and the WGI, every figure traceable."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import pycountry

from hrdd.reference.country_names import CountryNameIndex, load_name_file, region_of
from hrdd.yamltext import load_yaml

FIW_FILE = "freedom_house_fiw_2013_2025.csv"
PTS_FILE = "political_terror_scale_1976_2023.csv"
WGI_FILE = "wgi_governance_1996_2022.csv"
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
        parts = [r.describe() for r in (self.fiw, self.pts, self.wgi) if r is not None]
        parts += [f"no {g} data" for g in self.gaps]
        return f"{self.name}: " + "; ".join(parts)

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


def _int(value: str) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        return None


class CountryCodes:
    """ISO 3166-1 normalisation (codes and names) with the datasets' non-ISO codes mapped."""

    def __init__(self, aliases: dict[str, str], data_dir: Path | None = None):
        self.aliases = {k.upper(): v.upper() for k, v in aliases.items()}
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


def load_fiw(path: Path, codes: CountryCodes) -> dict[str, FiwRecord]:
    """Latest FIW edition per country (territories without a code are skipped)."""
    out: dict[str, FiwRecord] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            alpha2 = codes.alpha2_from_dataset_code(row["iso3"]) or (
                "XK" if row["country_territory"] == "Kosovo" else None)
            total = _int(row["total"])
            if not alpha2 or total is None or not row["status"]:
                continue
            d, e = _int(row["d"]), _int(row["e"])
            rec = FiwRecord(int(row["edition"]), int(row["data_year"]), row["status"].strip(), total,
                            None if d is None or e is None else d + e, _int(row["f"]))
            if alpha2 not in out or rec.edition > out[alpha2].edition:
                out[alpha2] = rec
    return out


def load_pts(path: Path, codes: CountryCodes, columns: list[str]) -> dict[str, PtsRecord]:
    """Latest PTS year with at least one coded score per country."""
    out: dict[str, PtsRecord] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            alpha2 = codes.alpha2_from_dataset_code(row["WordBank_Code_A"])
            if not alpha2:
                continue
            scores = {c: int(row[c]) for c in columns if _int(row.get(c)) is not None}
            year = int(row["Year"])
            if scores and (alpha2 not in out or year > out[alpha2].year):
                out[alpha2] = PtsRecord(year, scores)
    return out


def load_wgi(path: Path, codes: CountryCodes) -> dict[str, WgiRecord]:
    """Latest WGI rule-of-law percentile per country."""
    out: dict[str, WgiRecord] = {}
    with path.open(newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            alpha2 = codes.alpha2_from_dataset_code(row["wb_code"])
            value = row.get("rule_of_law_percentile_rank")
            if not alpha2 or not value:
                continue
            year = int(row["year"])
            if alpha2 not in out or year > out[alpha2].year:
                out[alpha2] = WgiRecord(year, float(value))
    return out


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
    if reasons_high:
        profile.tier, profile.tier_reasons = "high", reasons_high
    elif reasons_elev:
        profile.tier, profile.tier_reasons = "elevated", reasons_elev
    elif fiw is None and pts is None and wgi is None:
        profile.tier, profile.tier_reasons = "unknown", ["no country data"]
    else:
        profile.tier, profile.tier_reasons = "low", []


def load_country_profiles(data_dir: Path, rules: dict[str, Any]) -> tuple[CountryCodes, dict[str, CountryProfile],
                                                                           dict[str, str]]:
    """Load the three datasets and classify every country; returns codes, profiles and dataset years."""
    aliases_path = data_dir / "country_codes.yaml"
    aliases = load_yaml(aliases_path.read_text(encoding="utf-8")) if aliases_path.exists() else {}
    codes = CountryCodes(aliases or {}, data_dir)
    fiw = load_fiw(data_dir / FIW_FILE, codes)
    pts = load_pts(data_dir / PTS_FILE, codes, rules.get("pts_scores", ["PTS_A", "PTS_H", "PTS_S"]))
    wgi = load_wgi(data_dir / WGI_FILE, codes)
    profiles: dict[str, CountryProfile] = {}
    all_codes = {c.alpha_2 for c in pycountry.countries} | set(_EXTRA_COUNTRIES)
    for code in all_codes:
        profile = CountryProfile(code, codes.name(code), fiw.get(code), pts.get(code), wgi.get(code))
        classify(profile, rules)
        profiles[code] = profile
    years = {
        "fiw": str(max((r.edition for r in fiw.values()), default="")),
        "pts": str(max((r.year for r in pts.values()), default="")),
        "wgi": str(max((r.year for r in wgi.values()), default="")),
    }
    return codes, profiles, years
