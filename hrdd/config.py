"""Configuration: defaults, then environment variables, then the overrides given to create_app()."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Where data/, clauses/, checklists/ and policy/ are: a wheel carries them inside the package
# (pyproject.toml's package-dir); a checkout, installed editable or not at all, has them at its top. The
# package's own copy is asked for first, so an installed hrdd never reads a stray data/ in site-packages.
_INSTALLED_CONTENT = Path(__file__).resolve().parent / "shipped"
CONTENT_ROOT = _INSTALLED_CONTENT if _INSTALLED_CONTENT.is_dir() else PROJECT_ROOT

DEFAULT_DATA_DIR = CONTENT_ROOT / "data"
DEFAULT_CLAUSES_DIR = CONTENT_ROOT / "clauses"
DEFAULT_CHECKLISTS_DIR = CONTENT_ROOT / "checklists"
DEFAULT_POLICY_FILE = CONTENT_ROOT / "policy" / "default.yaml"
_PATH_KEYS = {
    "HRDD_DATA_DIR": DEFAULT_DATA_DIR,
    "HRDD_CLAUSES_DIR": DEFAULT_CLAUSES_DIR,
    "HRDD_CHECKLISTS_DIR": DEFAULT_CHECKLISTS_DIR,
    "HRDD_POLICY_FILE": DEFAULT_POLICY_FILE,
}


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
