"""Adapter configuration from a YAML file, ``create_app`` overrides and ``HRDD_ADAPTER_*`` variables."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from hrdd.yamltext import load_yaml

SECRET_WORDS = ("secret", "token", "password", "passwd", "key", "authorization", "credential", "cookie")
# The last word of a setting's name that says it names where or who, not a credential: ``token_url``,
# ``client_id``, ``auth_header`` (a header's name) are sent or shown as they are, never masked.
NOT_SECRET_ENDINGS = ("url", "urls", "uri", "endpoint", "host", "id", "ids", "name", "header", "type", "path",
                      "file")
# Sections whose keys are vendor field names, object types or templates, not settings: never masked.
DATA_SECTIONS = ("field_maps", "body", "line_item_queries", "entity_sets", "urls", "modified_fields",
                 "watched_properties")
_WORD_EDGE = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_ENV_REF = re.compile(r"\$\{([A-Z0-9_]+)\}")
ADAPTER_ENV = "HRDD_ADAPTER_"
WRITEBACK_ENV = "HRDD_WRITEBACK_"
LIST_KEYS = {"organization_ids", "action_ids", "allowed_origins", "bearer_tokens", "watched_properties",
             "event_types", "models", "modified_fields", "signing_secrets", "tokens", "auth_keys"}


class Secret(str):
    """A string that never shows its value when printed, logged or put in a repr."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def reveal(self) -> str:
        """The secret value itself, for signature checks and outgoing authentication only."""
        return str.__str__(self)


class ConfigError(ValueError):
    """Adapter configuration that cannot be used; the message names the setting."""


def is_secret_name(name: str) -> bool:
    """True for setting names that hold credentials (client_secret, token, api_key, Authorization, ...).

    A name with a secret word whose last word says it is a place or an identity (``token_url``,
    ``client_id``, ``key_id``, ``auth_header``) is not a credential: its value is used as it is.
    """
    words = [w for w in re.split(r"[^a-z0-9]+", _WORD_EDGE.sub("_", str(name)).lower()) if w]
    if not words or words[-1] in NOT_SECRET_ENDINGS:
        return False
    lowered = "_".join(words)
    return any(word in lowered for word in SECRET_WORDS)


def reveal(value: Any) -> str:
    """The plain text of a setting, whether or not it is a Secret."""
    if isinstance(value, Secret):
        return value.reveal()
    return "" if value is None else str(value)


def _interpolate(value: Any, env: Mapping[str, str], where: str) -> Any:
    if isinstance(value, str):
        def sub(match: re.Match) -> str:
            name = match.group(1)
            if name not in env:
                raise ConfigError(f"{where or '(top level)'}: environment variable {name} is not set")
            return env[name]
        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: _interpolate(v, env, f"{where}.{k}" if where else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v, env, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _protect(value: Any, name: str = "") -> Any:
    """Wrap the values of credential settings in ``Secret``; everything else (URLs, ids) stays as it is."""
    if isinstance(value, dict):
        return {k: v if str(k) in DATA_SECTIONS else _protect(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_protect(v, name) for v in value]
    if isinstance(value, str) and is_secret_name(name):
        return Secret(value)
    return value


def url_problem(value: Any) -> str | None:
    """Why a URL setting cannot be called (without showing it if it is a Secret), or None when it can."""
    if isinstance(value, Secret):
        return "is stored as a secret (***), not as a URL"
    text = "" if value is None else str(value).strip()
    if not text:
        return "is not set"
    if not text.lower().startswith(("http://", "https://")):
        return f"is not an http(s) URL: {shown_url(text)!r}"
    return None


def shown_url(url: str) -> str:
    """A URL as it may be printed: without its query string or user:password (either may hold credentials)."""
    text = str(url).split("?", 1)[0].split("#", 1)[0]
    scheme, sep, rest = text.partition("://")
    if sep:
        host, slash, path = rest.partition("/")
        text = f"{scheme}://{host.rpartition('@')[2]}{slash}{path}"
    return text


def public_view(value: Any, name: str = "") -> Any:
    """Settings as they may be recorded (the audit log): a secret as ``"(set)"``, never its value or a
    digest of it; a URL without its query string or user:password; everything else (field maps, stage
    values, allowlists, retry policy) as it is."""
    if isinstance(value, Mapping):
        return {str(k): public_view(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [public_view(v, name) for v in value]
    if isinstance(value, Secret):
        return "(set)"
    if isinstance(value, str) and name.lower().endswith(("url", "endpoint")):
        return shown_url(value)
    return value


def _merge(base: dict, extra: Mapping) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _from_env(config: Mapping[str, Any], prefix: str) -> dict:
    """``HRDD_ADAPTER_HUBSPOT_CLIENT_SECRET=x`` -> ``{"hubspot": {"client_secret": "x"}}``."""
    out: dict[str, dict] = {}
    for key, value in config.items():
        if not key.startswith(prefix) or value is None:
            continue
        vendor, _, setting = key[len(prefix):].lower().partition("_")
        if not setting:
            continue
        if setting in LIST_KEYS:
            value = [part.strip() for part in str(value).split(",") if part.strip()]
        out.setdefault(vendor, {})[setting] = value
    return out


def load_settings(app_config: Mapping[str, Any]) -> dict[str, Any]:
    """Read every adapter and write-back setting; secrets come back wrapped in ``Secret``.

    Order (later wins): the YAML file named by ``HRDD_ADAPTERS_FILE``, the ``HRDD_ADAPTERS`` mapping given
    to ``create_app``, then ``HRDD_ADAPTER_<VENDOR>_<SETTING>`` and ``HRDD_WRITEBACK_<SYSTEM>_<SETTING>``.
    ``${VAR}`` inside the file is replaced by that environment variable so secrets need not sit in it.
    """
    env = {**os.environ, **{k: str(v) for k, v in app_config.items() if isinstance(v, str)}}
    settings: dict[str, Any] = {"adapters": {}, "writeback": {}, "worker": {}}
    path = app_config.get("HRDD_ADAPTERS_FILE")
    if path:
        file = Path(path)
        try:
            loaded = load_yaml(file.read_text(encoding="utf-8")) or {}
        except FileNotFoundError as exc:
            raise ConfigError(f"HRDD_ADAPTERS_FILE: {file} does not exist") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{file}: not valid YAML ({exc})") from exc
        if not isinstance(loaded, dict):
            raise ConfigError(f"{file}: expected a mapping with adapters/writeback/worker sections")
        unknown = set(loaded) - set(settings)
        if unknown:
            raise ConfigError(f"{file}: unknown top-level section(s) {sorted(unknown)}")
        try:
            interpolated = _interpolate(loaded, env, "")
        except ConfigError as exc:
            # "adapters.yaml: adapters.salesforce.token: ...": the file, then the setting's path inside it.
            raise ConfigError(f"{file}: {exc}") from None
        settings = _merge(settings, interpolated)
    overrides = app_config.get("HRDD_ADAPTERS")
    if isinstance(overrides, Mapping):
        settings = _merge(settings, overrides)
    settings["adapters"] = _merge(settings["adapters"], _from_env(app_config, ADAPTER_ENV))
    settings["writeback"] = _merge(settings["writeback"], _from_env(app_config, WRITEBACK_ENV))
    return _protect(settings)


def _url_settings(section: str, value: Any, where: str):
    """(setting path, value) of every URL setting below ``where``: names ending in url, and ``urls.*``."""
    if not isinstance(value, Mapping):
        return
    for key, item in value.items():
        path = f"{where}.{key}"
        if key == "urls" and isinstance(item, Mapping):
            yield from ((f"{path}.{k}", v) for k, v in item.items())
        elif key in DATA_SECTIONS or key == "headers":
            continue
        elif isinstance(item, Mapping):
            yield from _url_settings(section, item, path)
        elif str(key).lower().endswith("url"):
            yield path, item


def check_urls(settings: Mapping[str, Any]) -> None:
    """Raise ConfigError naming the first URL setting that is not an http(s) URL (``{...}`` templates pass)."""
    for section in ("adapters", "writeback"):
        for name, mine in (settings.get(section) or {}).items():
            for path, value in _url_settings(section, mine, f"{section}.{name}"):
                if value is None or (isinstance(value, str) and not isinstance(value, Secret)
                                     and (not value.strip() or value.strip().startswith("{"))):
                    continue  # not set (each use says so, naming it), or a template filled in when sending
                problem = url_problem(value)
                if problem:
                    raise ConfigError(f"{path} {problem}")


def adapter_settings(settings: Mapping[str, Any], vendor: str) -> dict[str, Any]:
    """One adapter's settings (an empty dict when it is not configured)."""
    return dict((settings.get("adapters") or {}).get(vendor) or {})


def settings_for(app) -> dict[str, Any]:
    """The settings of a Flask app, loaded once and kept in ``app.extensions``."""
    cached = app.extensions.get("hrdd_adapters")
    if cached is None:
        cached = load_settings(app.config)
        app.extensions["hrdd_adapters"] = cached
    return cached
