"""Describes the shipped datasets (source, version, rows, terms) for `hrdd data info` and reports."""

from __future__ import annotations

import csv

from hrdd.hookspecs import hookimpl
from hrdd.yamltext import load_yaml


def _rows(path) -> int:
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as fh:
            return max(0, sum(1 for _ in csv.reader(fh)) - 1)
    data = load_yaml(path.read_text(encoding="utf-8")) or {}
    for key in ("capabilities", "entries", "flags"):
        if key in data:
            return len(data[key])
    if "names" in data:  # country_names.yaml: the aliases and the ambiguous names
        return len(data["names"] or {}) + len(data.get("ambiguous") or {})
    return 0


@hookimpl
def hrdd_versions(context):
    """The versions of the country, capability and embargo datasets used by the step checks."""
    return dict(context.reference.versions)


@hookimpl
def hrdd_data_sources(context):
    """One row per dataset listed in data/datasets.yaml that exists in the data directory."""
    data_dir = context.reference.data_dir
    listing = load_yaml((data_dir / "datasets.yaml").read_text(encoding="utf-8")) or {}
    versions = context.reference.versions
    out = []
    for entry in listing.get("datasets") or ():
        path = data_dir / entry["file"]
        out.append({**entry, "version": versions.get(entry["name"], ""), "present": path.exists(),
                    "rows": _rows(path) if path.exists() else 0})
    return out
