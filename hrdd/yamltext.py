"""YAML reading for the files staff edit (policy, clauses, checklists, reference data): libyaml when present."""

from __future__ import annotations

from typing import Any

import yaml

# The C parser reads the same YAML into the same values (SafeLoader's constructors) about ten times as
# fast; every app start reads a dozen such files, and every test builds an app.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_yaml(text: str) -> Any:
    """The data of one YAML document, read safely (no Python objects); raises yaml.YAMLError."""
    return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader, C or Python
