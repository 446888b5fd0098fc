"""Field maps from configuration: turn a vendor record (flat or nested dict) into a canonical transaction.

A value spec is either a field path (``"End_User_Country__c"``, dots reach into nested values, e.g.
``"parentaccountid.name"``) or a mapping with any of:
``field`` (path), ``const`` (fixed value), ``values`` (lookup table applied to the field's value, matched
case-insensitively), ``default`` (when empty), ``split`` (separator turning text into a list),
``type`` (``str``, ``int``, ``float``, ``bool``), ``lower`` (lowercase text) and ``slug`` (lowercase with
underscores, turning picklist labels such as "Law enforcement" into ids).

``items`` is a list of item specs read from the record, or ``{from_lines: true, <item spec>}`` read from
each line item, with an optional ``fallback`` item spec used on the record when there are no lines.

A field the map reads that is absent from a record (the key not there at all) is reported as missing when
the record is complete (its vendor sends every field asked for, empty ones as null): a misspelt name or a
field the CRM was not told to send must hold the deal, not read as "no distributor".
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

REQUIRED = ("stage", "end_user.name", "end_user.country")
_TRUE = {"true", "yes", "1", "y", "x"}
_FALSE = {"false", "no", "0", "n", ""}


class FieldMapError(ValueError):
    """A field map in configuration that cannot work; the message names the setting."""


@dataclass
class Mapped:
    """The result of applying a field map: the canonical body, what could not be filled, and sources.

    ``sources`` maps a canonical path ("stage", "items.0.capabilities") to the vendor field it was read
    from and that field's value, so a later validation error can name the vendor's field.
    """

    body: dict[str, Any]
    missing: list[str] = field(default_factory=list)
    sources: dict[str, tuple[str, Any]] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when every required canonical field has a value."""
        return not self.missing


def present(record: Mapping[str, Any], path: str) -> bool:
    """True when a dotted path's steps are keys of the record (a null on the way counts as present)."""
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False
        value = value[part]
        if value is None:
            return True
    return True


def lookup(record: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path of a record (None when any step is absent)."""
    value: Any = record
    for part in path.split("."):
        if isinstance(value, Mapping):
            value = value.get(part)
        else:
            return None
        if value is None:
            return None
    return value


# "250,000" or "-1,234,567.89": commas as thousands separators only.
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(,\d{3})+(\.\d*)?$")
# "1.000" or "12.500.000": points between groups of three digits, a thousands point in German, Dutch or
# Spanish, but three decimals in SAP's quantities or in English: for a whole-number field hrdd cannot tell
# 1 from 1,000. A field mapped as float reads it as decimals, as SAP's defaults do.
_THOUSANDS_POINT = re.compile(r"^[+-]?\d{1,3}(\.\d{3})+$")


def _empty(value: Any) -> bool:
    return value is None or value == "" or value == []


def _convert(value: Any, kind: str | None, where: str) -> Any:
    if kind is None or value is None:
        return value
    if kind == "str":
        return str(value)
    if kind in ("int", "float"):
        if isinstance(value, bool):
            raise ValueError(f"{where}: {value!r} is not a number")
        if isinstance(value, str) and "," in value and not _THOUSANDS.match(value.strip()):
            # "1.000,50" or "1,5": a decimal comma, which read as a thousands separator would be 1.0005 or 15.
            raise ValueError(f"{where}: {value!r} is not a number hrdd can read unambiguously (commas only "
                             "between groups of three digits; a point before the decimals)")
        if kind == "int" and isinstance(value, str) and _THOUSANDS_POINT.match(value.strip()):
            raise ValueError(f"{where}: {value!r} is not a number hrdd can read unambiguously (a thousand in "
                             "German or Spanish, one with three decimals in SAP or English; map the field with "
                             "type float if the CRM sends decimals)")
        try:
            number = float(value.replace(",", "")) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{where}: {value!r} is not a number") from None
        if not math.isfinite(number):
            # "1e400", "inf" and "nan" parse as floats but no deal has such a quantity or value.
            raise ValueError(f"{where}: {value!r} is not a finite number")
        if kind == "int" and not number.is_integer():
            # A quantity of "1,000.5" is not 1000: the CRM holds something hrdd must not guess at.
            raise ValueError(f"{where}: {value!r} is not a whole number")
        return int(number) if kind == "int" else number
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"{where}: {value!r} is not true/false")
    raise FieldMapError(f"{where}: unknown type {kind!r} (use str, int, float or bool)")


@dataclass
class Trace:
    """What reading a record noticed: mapped fields absent from it, and where each value came from."""

    check_absent: bool = True
    absent: list[str] = field(default_factory=list)
    absent_fields: set[str] = field(default_factory=set)
    origins: dict[str, tuple[str, Any]] = field(default_factory=dict)


def resolve(record: Mapping[str, Any], spec: Any, where: str, trace: Trace | None = None) -> Any:
    """The value a spec selects from a record (see the module docstring for the forms)."""
    if spec is None:
        return None
    if not isinstance(spec, str | Mapping):
        raise FieldMapError(f"{where}: expected a field name or a mapping, got {type(spec).__name__}")
    if isinstance(spec, Mapping) and "const" in spec:
        value = spec["const"]
    elif isinstance(spec, str) or "field" in spec:
        name = spec if isinstance(spec, str) else str(spec["field"])
        value = lookup(record, name)
        if trace is not None:
            trace.origins[where] = (name, value)
            if trace.check_absent and not present(record, name) and name not in trace.absent_fields:
                trace.absent_fields.add(name)
                trace.absent.append(f"vendor field {name} is not in the record (field map entry {where}; "
                                    "check its spelling and that the CRM sends it)")
        # Conversion errors name the vendor field the value came from.
        where = f"{where} (vendor field {name})"
        if isinstance(spec, str):
            return value
    else:
        raise FieldMapError(f"{where}: needs 'field' or 'const'")
    if isinstance(value, str):
        value = value.strip()
    if not _empty(value) and spec.get("split") and isinstance(value, str):
        value = [part.strip() for part in value.split(spec["split"]) if part.strip()]
    if not _empty(value) and "values" in spec:
        table = {str(k).lower(): v for k, v in (spec["values"] or {}).items()}
        if isinstance(value, list):
            value = [table.get(str(v).lower(), v) for v in value]
        else:
            value = table.get(str(value).lower(), value)
    if isinstance(value, str) and spec.get("lower"):
        value = value.lower()
    if isinstance(value, str) and spec.get("slug"):
        # "Law enforcement" / "law-enforcement" -> "law_enforcement" (picklist labels to canonical ids)
        value = "_".join(value.lower().replace("-", " ").split())
    if _empty(value):
        value = spec.get("default")
    if isinstance(value, list):
        return [_convert(v, spec.get("type"), where) for v in value]
    return _convert(value, spec.get("type"), where)


def source_name(spec: Any) -> str | None:
    """The vendor field a spec reads (for messages naming what is missing)."""
    if isinstance(spec, str):
        return spec
    if isinstance(spec, Mapping) and "field" in spec:
        return str(spec["field"])
    return None


def _as_list(value: Any) -> list:
    if _empty(value):
        return []
    return value if isinstance(value, list) else [value]


def _object(record: Mapping, specs: Mapping, where: str, problems: list[str], trace: Trace,
            path: str, sources: dict) -> dict[str, Any]:
    """Read an object's fields; ``sources`` learns the vendor field of each under ``path``."""
    out: dict[str, Any] = {}
    for key, spec in specs.items():
        try:
            value = resolve(record, spec, f"{where}.{key}", trace)
        except ValueError as exc:
            if isinstance(exc, FieldMapError):
                raise
            problems.append(str(exc))
            continue
        if f"{where}.{key}" in trace.origins:
            sources[f"{path}.{key}" if path else key] = trace.origins[f"{where}.{key}"]
        if not _empty(value):
            out[key] = value
    return out


def _renumber(sources: dict, old: str, new: str) -> None:
    """Move the sources of a party or item kept at another index than the one it was read at."""
    if old != new:
        for key in [k for k in sources if k.startswith(old + ".")]:
            sources[new + key[len(old):]] = sources.pop(key)


def apply(field_map: Mapping[str, Any], record: Mapping[str, Any], lines: list[Mapping] | None = None, *,
          name: str = "field_map", check_absent: bool = True) -> Mapped:
    """Build the canonical body (without ``reference``) from a record and its line items.

    ``name`` prefixes the field map entries named in messages (``field_maps.Opportunity``);
    ``check_absent`` reports mapped fields absent from a complete record (see the module docstring).
    """
    if not isinstance(field_map, Mapping):
        raise FieldMapError(f"{name}: expected a mapping")
    problems: list[str] = []
    trace = Trace(check_absent=check_absent)
    sources: dict[str, tuple[str, Any]] = {}
    body: dict[str, Any] = {}
    top = _object(record, {key: field_map.get(key) for key in ("stage", "deployment_countries", "intended_use")},
                  name, problems, trace, "", sources)
    if "stage" in top:
        body["stage"] = top["stage"]
    end_user = _object(record, field_map.get("end_user") or {}, f"{name}.end_user", problems, trace, "end_user",
                       sources)
    body["end_user"] = end_user
    parties = []
    for i, spec in enumerate(field_map.get("parties") or []):
        party = _object(record, spec, f"{name}.parties[{i}]", problems, trace, f"party{i}", sources)
        if party.get("name"):
            party.setdefault("role", "other")
            _renumber(sources, f"party{i}", f"parties.{len(parties)}")
            parties.append(party)
    body["parties"] = parties
    items_spec = field_map.get("items") or {}
    items: list[dict[str, Any]] = []
    if isinstance(items_spec, Mapping) and items_spec.get("from_lines") and not lines and items_spec.get("fallback"):
        # No line items came with the record: read one item from the record's own fields.
        items_spec = items_spec["fallback"]
    if isinstance(items_spec, Mapping) and items_spec.get("from_lines"):
        line_spec = {k: v for k, v in items_spec.items() if k not in ("from_lines", "fallback")}
        for i, line in enumerate(lines or []):
            item = _object(line, line_spec, f"{name}.items(line {i + 1})", problems, trace, f"item{i}", sources)
            if item.get("sku") or item.get("name"):
                _renumber(sources, f"item{i}", f"items.{len(items)}")
                items.append(item)
    else:
        for i, spec in enumerate(items_spec if isinstance(items_spec, list) else [items_spec]):
            if not spec:
                continue
            item = _object(record, spec, f"{name}.items[{i}]", problems, trace, f"item{i}", sources)
            if item.get("sku") or item.get("name"):
                _renumber(sources, f"item{i}", f"items.{len(items)}")
                items.append(item)
    for item in items:
        item.setdefault("name", item.get("sku"))
        item.setdefault("sku", item.get("name"))
        item["capabilities"] = _as_list(item.get("capabilities"))
        if "sku" in item:
            item["sku"] = str(item["sku"])
    body["items"] = items
    body["deployment_countries"] = _as_list(top.get("deployment_countries"))
    if "intended_use" in top:
        body["intended_use"] = str(top["intended_use"])
    answers = _object(record, field_map.get("answers") or {}, f"{name}.answers", problems, trace, "answers", sources)
    body["answers"] = {question: str(value).strip().lower() for question, value in answers.items()}
    missing = list(problems) + trace.absent
    for required in REQUIRED:
        if _empty(lookup(body, required)):
            spec = lookup(field_map, required) if "." in required else field_map.get(required)
            origin = source_name(spec)
            if origin in trace.absent_fields:
                continue  # already reported as absent, with its field map entry
            missing.append(f"{required} (vendor field {origin})" if origin else required)
    if not items:
        missing.append("items (no line item or product field had a value)")
    return Mapped(body=body, missing=missing, sources=sources)


def fields_used(field_map: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """The vendor fields a map reads: (record fields, line item fields), for enrichment requests."""
    record: list[str] = []
    line: list[str] = []

    def walk(spec: Any, into: list[str]) -> None:
        name = source_name(spec)
        if name and "." not in name and name not in into:
            into.append(name)
        elif isinstance(spec, Mapping) and "field" not in spec and "const" not in spec:
            for key, value in spec.items():
                if key == "fallback":
                    walk(value, record)
                elif key != "from_lines":
                    walk(value, into)
        elif isinstance(spec, list):
            for value in spec:
                walk(value, into)

    for key, spec in field_map.items():
        if key == "items" and isinstance(spec, Mapping) and spec.get("from_lines"):
            walk(spec, line)
        else:
            walk(spec, record)
    return record, line
