"""Configuration: defaults, then environment variables, then the overrides given to create_app()."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent

_PATH_KEYS = {
    "HRDD_DATA_DIR": PROJECT_ROOT / "data",
    "HRDD_CLAUSES_DIR": PROJECT_ROOT / "clauses",
    "HRDD_CHECKLISTS_DIR": PROJECT_ROOT / "checklists",
    "HRDD_POLICY_FILE": PROJECT_ROOT / "policy" / "default.yaml",
}
DEFAULT_DATA_DIR = _PATH_KEYS["HRDD_DATA_DIR"]


@lru_cache(maxsize=64)
def cached_path(value: str) -> Path:
    """One ``Path`` object per directory string: screening asks for content directories every time, and a
    reused ``Path`` keeps its computed hash for the caches keyed by it."""
    return Path(value)


def default_database_url() -> str:
    """The embedded default store: a SQLite file under ./var/."""
    var = Path(os.environ.get("HRDD_VAR_DIR", "var")).resolve()
    return f"sqlite:///{var / 'hrdd.sqlite3'}"


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Merge defaults, HRDD_* environment variables and explicit overrides into one dict."""
    config: dict[str, Any] = {
        "HRDD_DATABASE_URL": os.environ.get("HRDD_DATABASE_URL") or default_database_url(),
        "HRDD_PLUGINS_DIR": os.environ.get("HRDD_PLUGINS_DIR"),
        "HRDD_MAX_BODY": int(os.environ.get("HRDD_MAX_BODY", 1024 * 1024)),
        "HRDD_RATELIMIT_STORAGE_URI": os.environ.get("HRDD_RATELIMIT_STORAGE_URI", "memory://"),
        "SECRET_KEY": os.environ.get("HRDD_SECRET_KEY"),
    }
    for key, default in _PATH_KEYS.items():
        config[key] = Path(os.environ.get(key) or default)
    for key, value in os.environ.items():
        if key.startswith("HRDD_") and key not in config:
            config[key] = value
    for key, value in (overrides or {}).items():
        config[key] = Path(value) if key in _PATH_KEYS and value is not None else value
    if not config.get("SECRET_KEY"):
        # Not a per-process random key: instances sharing a database must sign sessions alike, so the
        # workspace keeps a generated key in the database (hrdd.workspace.security.ensure_secret_key).
        config.pop("SECRET_KEY")
    return config
