"""Field maps checked when the configuration loads: every entry, key, type and canonical field name.

A map that cannot work must stop start-up naming the setting, not fail each delivery later (a 500 that
leaves the delivery unscreened) or be laid over the default without effect (a misspelt key).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hrdd.adapters.config import ConfigError
from hrdd.schemas import _ANSWER_ID, EndUserSchema, ItemSchema, PartySchema

SPEC_KEYS = ("field", "const", "values", "default", "split", "type", "lower", "slug")
TYPES = ("str", "int", "float", "bool")
TOP = ("stage", "end_user", "parties", "items", "deployment_countries", "intended_use", "answers")
END_USER = tuple(EndUserSchema().fields)
PARTY = tuple(PartySchema().fields)
ITEM = tuple(ItemSchema().fields)


def _accepted(values) -> str:
    return ", ".join(values)


def check_spec(spec: Any, where: str) -> None:
    """Raise ConfigError unless ``spec`` is a field name, null, or a mapping of the accepted keys."""
    if spec is None:
        return
    if isinstance(spec, str):
        if not spec.strip():
            raise ConfigError(f"{where}: an empty field name")
        return
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected a vendor field name or a mapping with {_accepted(SPEC_KEYS)}, "
                          f"got {type(spec).__name__}")
    unknown = [str(k) for k in spec if k not in SPEC_KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))} "
                          f"(accepted: {_accepted(SPEC_KEYS)})")
    if "field" not in spec and "const" not in spec:
        raise ConfigError(f"{where}: needs field (a vendor field name) or const (a fixed value)")
    if "field" in spec and not (isinstance(spec["field"], str) and spec["field"].strip()):
        raise ConfigError(f"{where}.field: expected a vendor field name, got {spec['field']!r}")
    if spec.get("type") is not None and spec["type"] not in TYPES:
        raise ConfigError(f"{where}.type: unknown type {spec['type']!r} (accepted: {_accepted(TYPES)})")
    if "values" in spec and not isinstance(spec["values"], Mapping | None):
        raise ConfigError(f"{where}.values: expected a mapping of vendor value to canonical value")
    if "split" in spec and not (isinstance(spec["split"], str) and spec["split"]):
        raise ConfigError(f"{where}.split: expected the separator text, e.g. ';'")
    for flag in ("lower", "slug"):
        if flag in spec and not isinstance(spec[flag], bool):
            raise ConfigError(f"{where}.{flag}: expected true or false, got {spec[flag]!r}")


def _check_object(specs: Any, where: str, keys: tuple[str, ...], extra: tuple[str, ...] = ()) -> None:
    if specs is None:
        return
    if not isinstance(specs, Mapping):
        raise ConfigError(f"{where}: expected a mapping of canonical field to vendor field, "
                          f"got {type(specs).__name__}")
    for key, spec in specs.items():
        if key in extra:
            continue
        if key not in keys:
            raise ConfigError(f"{where}: {key!r} is not a canonical field (accepted: {_accepted(keys + extra)})")
        check_spec(spec, f"{where}.{key}")


def _check_items(items: Any, where: str) -> None:
    if isinstance(items, list):
        for i, spec in enumerate(items):
            _check_object(spec, f"{where}[{i}]", ITEM)
        return
    if isinstance(items, Mapping) and items.get("from_lines"):
        _check_object(items, where, ITEM, ("from_lines", "fallback"))
        _check_object(items.get("fallback"), f"{where}.fallback", ITEM)
        return
    _check_object(items, where, ITEM)


def check_map(field_map: Any, where: str) -> None:
    """Raise ConfigError naming the first entry of a (merged) field map that cannot work."""
    if not isinstance(field_map, Mapping):
        raise ConfigError(f"{where}: expected a mapping of canonical field to vendor field")
    for key, spec in field_map.items():
        entry = f"{where}.{key}"
        if key not in TOP:
            raise ConfigError(f"{where}: {key!r} is not a canonical field (accepted: {_accepted(TOP)})")
        if key == "end_user":
            _check_object(spec, entry, END_USER)
        elif key == "parties":
            if spec is not None and not isinstance(spec, list):
                raise ConfigError(f"{entry}: expected a list of parties, each a mapping of {_accepted(PARTY)}")
            for i, party in enumerate(spec or []):
                _check_object(party, f"{entry}[{i}]", PARTY)
        elif key == "items":
            _check_items(spec, entry)
        elif key == "answers":
            if spec is not None and not isinstance(spec, Mapping):
                raise ConfigError(f"{entry}: expected a mapping of checklist question id to vendor field")
            for question, answer in (spec or {}).items():
                if not isinstance(question, str) or not _ANSWER_ID.match(question):
                    raise ConfigError(f"{entry}: {question!r} is not a checklist question id (lowercase letters, "
                                      "digits and _, e.g. past_misuse)")
                check_spec(answer, f"{entry}.{question}")
        else:
            check_spec(spec, entry)


def check_adapter(adapter, vendor_settings: Mapping[str, Any], where: str) -> None:
    """Check every configured field map of one adapter, as laid over the adapter's default."""
    configured = vendor_settings.get("field_maps")
    if configured is None:
        return
    if not isinstance(configured, Mapping):
        raise ConfigError(f"{where}.field_maps: expected a mapping of object type to field map")
    for object_type, field_map in configured.items():
        if not isinstance(field_map, Mapping | None):
            raise ConfigError(f"{where}.field_maps.{object_type}: expected a mapping of canonical field to "
                              f"vendor field, got {type(field_map).__name__}")
        check_map(adapter.field_map(str(object_type), dict(vendor_settings)), f"{where}.field_maps.{object_type}")


def check_settings(settings: Mapping[str, Any], resolve, source: str | None = None) -> None:
    """Check the field maps of every configured adapter; ``resolve(vendor)`` gives its adapter object.

    ``source`` (the adapters file) starts the message, so the operator knows which file to open.
    """
    for vendor, mine in (settings.get("adapters") or {}).items():
        if not isinstance(mine, Mapping) or mine.get("field_maps") is None:
            continue
        adapter = resolve(vendor)
        if adapter is None:
            continue
        try:
            check_adapter(adapter, mine, f"adapters.{vendor}")
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}" if source else str(exc)) from None
