"""Decision thresholds and severities, loaded from a YAML policy file an organisation can replace."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml

from hrdd import policy_schema
from hrdd.errors import StartupError
from hrdd.yamltext import load_yaml

REQUIRED_SECTIONS = ("country_risk", "step3", "severities", "decision", "risk_score", "conditions")


class PolicyError(StartupError, ValueError):
    """The policy file is missing, unreadable, lacks a required section or has a setting that cannot work."""


class Policy:
    """A loaded policy file: sections by name, plus a version and a digest for the record."""

    def __init__(self, data: dict[str, Any], path: Path | None = None, digest: str = ""):
        self.data = data
        self.path = path
        self.digest = digest
        self.version = str(data.get("version", "unversioned"))

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        """Read and check a policy file; the error names the file and the problem."""
        path = Path(path)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise PolicyError(f"policy file {path}: cannot be read ({exc.strerror})") from exc
        try:
            data = load_yaml(raw) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            raise PolicyError(f"policy file {path}: not valid YAML{where}: "
                              f"{getattr(exc, 'problem', None) or ' '.join(str(exc).split())}") from None
        if not isinstance(data, dict):
            raise PolicyError(f"policy file {path}: the top level must be a mapping")
        missing = [s for s in REQUIRED_SECTIONS if not isinstance(data.get(s), dict)]
        if missing:
            raise PolicyError(f"policy file {path}: missing section(s) {', '.join(missing)}")
        # A setting misspelt, given twice or of the wrong type would otherwise be dropped, or fail a screening.
        found = [f"{d} is given twice (the last would count)" for d in policy_schema.duplicate_keys(raw)]
        found += policy_schema.problems(data)
        if found:
            raise PolicyError(f"policy file {path}: " + "; ".join(found))
        return cls(data, path, hashlib.sha256(raw).hexdigest()[:12])

    def section(self, name: str) -> dict[str, Any]:
        """A top-level section as a dict (empty when absent)."""
        value = self.data.get(name)
        return value if isinstance(value, dict) else {}

    def severity(self, flag_id: str, default: str) -> str:
        """The configured severity of a red flag (or variant key such as 'RF-2.1-elevated')."""
        return self.section("severities").get(flag_id, default)
