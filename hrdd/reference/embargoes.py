"""The dated, sourced list of embargoed destinations."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from hrdd.yamltext import load_yaml


@dataclass(frozen=True)
class Embargo:
    """One embargoed country with its scope, date and authority."""

    country: str
    scope: str  # all | surveillance
    since: str
    authority: str
    source: str


def load_embargoes(path: Path) -> tuple[dict[str, Embargo], str]:
    """Load the embargo file; errors name the file and the entry."""
    data = load_yaml(path.read_text(encoding="utf-8")) or {}
    out: dict[str, Embargo] = {}
    for n, entry in enumerate(data.get("entries") or (), start=1):
        missing = [k for k in ("country", "scope", "since", "authority", "source") if not entry.get(k)]
        if missing or entry.get("scope") not in ("all", "surveillance"):
            raise ValueError(f"{path}: entry {n} is missing {missing or 'a valid scope (all|surveillance)'}")
        out[entry["country"].upper()] = Embargo(entry["country"].upper(), entry["scope"], str(entry["since"]),
                                                entry["authority"], entry["source"])
    return out, str(data.get("version", "unversioned"))
