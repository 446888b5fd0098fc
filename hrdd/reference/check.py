"""`hrdd data check`: what a data directory holds, and what changes against the data in use, before a switch."""

from __future__ import annotations

import datetime as dt

from hrdd.reference.datasets import dataset_files

# How each country dataset names its edition in its records.
_RECORDS = {"fiw": ("fiw", "edition"), "pts": ("pts", "year"), "wgi": ("wgi", "year")}
LISTED = 12  # countries named per line; the rest are counted


def _names(codes: list[str], reference) -> str:
    shown = ", ".join(f"{c} ({reference.country(c).name})" for c in codes[:LISTED])
    return shown + (f" and {len(codes) - LISTED} more" if len(codes) > LISTED else "")


def summary(reference) -> list[str]:
    """One line per country dataset: file, latest edition, countries, and countries left out of that edition."""
    lines = []
    files = dataset_files(reference.data_dir)
    for name, (attr, year_attr) in _RECORDS.items():
        records = {c: getattr(p, attr) for c, p in reference.countries.items() if getattr(p, attr) is not None}
        latest = reference.versions.get(name, "")
        older = sorted(c for c, r in records.items() if str(getattr(r, year_attr)) != latest)
        line = f"{name}: {files[name].path.name}, latest {latest or '-'}, {len(records)} countries"
        if older:
            line += (f"; not in {latest} (their figures are from an earlier year, which the evidence states): "
                     + ", ".join(f"{c} {getattr(records[c], year_attr)}" for c in older[:LISTED])
                     + (f" and {len(older) - LISTED} more" if len(older) > LISTED else ""))
        lines.append(line)
    unknown = sorted(c for c, p in reference.countries.items() if p.tier == "unknown")
    lines.append(f"countries without any figure (RF-0.1 asks for information): {len(unknown)}")
    return lines + _embargoes(reference)


def _embargoes(reference) -> list[str]:
    """Embargoes in force today, and those that start or were lifted on another day (a re-screening is due then)."""
    today = dt.datetime.now(dt.UTC).date()
    entries = [e for country in reference.embargoes.values() for e in country]
    in_force = sorted(e.country for e in entries if e.in_force(today))
    lines = [f"embargoes in force today ({today}): {', '.join(in_force) or 'none'}"]
    coming = [f"{e.country} ({e.scope}) from {e.since}" for e in entries if e.since > today.isoformat()]
    lifted = [f"{e.country} ({e.scope}) lifted {e.until}" for e in entries if e.until and e.until <= today.isoformat()]
    if coming:
        lines.append("embargoes not yet in force (re-screen on the day: hrdd rescreen): " + ", ".join(coming))
    if lifted:
        lines.append("embargoes lifted: " + ", ".join(lifted))
    return lines


def compare(before, after) -> list[str]:
    """What screening would see differently with ``after`` than with ``before``: versions, tiers, gaps."""
    lines = []
    changed = [f"{k} {before.versions.get(k) or '-'} -> {after.versions.get(k) or '-'}"
               for k in sorted(set(before.versions) | set(after.versions))
               if before.versions.get(k) != after.versions.get(k)]
    lines.append("versions: " + (", ".join(changed) if changed else "unchanged"))
    tiers: dict[tuple[str, str], list[str]] = {}
    for code, profile in sorted(after.countries.items()):
        old = before.countries.get(code)
        if old is not None and old.tier != profile.tier:
            tiers.setdefault((old.tier, profile.tier), []).append(code)
    for (old, new), codes in sorted(tiers.items()):
        lines.append(f"country tier {old} -> {new}: {_names(codes, after)}")
    for name, label in (("fiw", "Freedom in the World"), ("pts", "Political Terror Scale"), ("wgi", "WGI")):
        lost = sorted(c for c, p in after.countries.items()
                      if getattr(p, name) is None and getattr(before.countries.get(c), name, None) is not None)
        if lost:
            lines.append(f"no {label} figures any more (RF-0.1 for them): {_names(lost, after)}")
    if not tiers:
        lines.append("country tiers: unchanged")
    return lines
