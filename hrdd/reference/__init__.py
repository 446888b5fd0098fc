"""Reference data: country risk, capability taxonomy and embargoes, loaded from the data directory."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from hrdd.flags import load_catalogue
from hrdd.reference.capabilities import Capability, load_capabilities
from hrdd.reference.countries import CountryProfile, UnknownCountry, load_country_profiles
from hrdd.reference.embargoes import Embargo, load_embargoes
from hrdd.reference.tables import DataFileError

__all__ = ["Capability", "CountryProfile", "Embargo", "ReferenceData", "UnknownCountry"]


class ReferenceData:
    """The loaded reference datasets, with lookups the step checks use."""

    def __init__(self, data_dir: Path, policy):
        self.data_dir = Path(data_dir)
        try:
            self._load(policy)
        except DataFileError:
            raise
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # The loaders' own checks name the file; as a DataFileError they stop start-up on one line.
            text = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
            raise DataFileError(f"{text} (data directory {self.data_dir})") from exc

    def _load(self, policy) -> None:
        for required in ("capabilities.yaml", "embargoes.yaml", "red_flags.yaml"):
            if not (self.data_dir / required).exists():
                raise DataFileError(f"data directory {self.data_dir} has no {required}")
        self.codes, self.countries, years = load_country_profiles(self.data_dir, policy.section("country_risk"))
        self.capabilities, caps_version = load_capabilities(self.data_dir / "capabilities.yaml")
        self.embargoes, embargo_version = load_embargoes(self.data_dir / "embargoes.yaml")
        self.red_flags = load_catalogue(self.data_dir / "red_flags.yaml")
        self.versions: dict[str, str] = {**years, "capabilities": caps_version, "embargoes": embargo_version}

    def normalise_country(self, value: str) -> str:
        """ISO alpha-2 for a code or name; raises UnknownCountry with a message naming the value."""
        return self.codes.normalise(value)

    def country(self, code: str) -> CountryProfile:
        """The risk profile of a country code (alpha-2)."""
        return self.countries[code]

    def capability(self, cap_id: str) -> Capability:
        """A capability of the taxonomy by id."""
        return self.capabilities[cap_id]

    def embargo(self, code: str, on: dt.date | None = None) -> Embargo | None:
        """The embargo of a country in force on a day (default today, UTC), if any."""
        day = on or dt.datetime.now(dt.UTC).date()
        return next((e for e in self.embargoes.get(code, ()) if e.in_force(day)), None)

    def loaded(self) -> bool:
        """True when every dataset produced rows (used by /readyz)."""
        return bool(self.capabilities) and any(p.fiw for p in self.countries.values())

    def dataset_info(self) -> list[dict[str, Any]]:
        """Counts per dataset for `hrdd data info` (sources and terms come from the data plugin)."""
        return [
            {"name": "fiw", "countries": sum(1 for p in self.countries.values() if p.fiw)},
            {"name": "pts", "countries": sum(1 for p in self.countries.values() if p.pts)},
            {"name": "wgi", "countries": sum(1 for p in self.countries.values() if p.wgi)},
            {"name": "capabilities", "countries": len(self.capabilities)},
            {"name": "embargoes", "countries": len(self.embargoes)},
        ]
