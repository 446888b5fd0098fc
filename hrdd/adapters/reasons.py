"""Why a vendor record could not be screened, in the vendor's terms: the field and value it came from."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from hrdd.model import STAGES


def _messages(errors: Any, path: str = "") -> Iterator[tuple[str, list[str]]]:
    """(canonical path, messages) of a validation error's nested ``errors``."""
    if isinstance(errors, Mapping):
        for key, value in errors.items():
            yield from _messages(value, f"{path}.{key}" if path else str(key))
    elif isinstance(errors, list) and all(isinstance(m, str) for m in errors):
        yield path, list(errors)
    elif isinstance(errors, list):
        for i, value in enumerate(errors):
            yield from _messages(value, f"{path}.{i}" if path else str(i))
    else:
        yield path, [str(errors)]


def _origin(sources: Mapping[str, tuple[str, Any]], path: str) -> tuple[str, Any] | None:
    """The vendor field of a canonical path, or of the nearest enclosing one ("deployment_countries.0")."""
    while path:
        if path in sources:
            return sources[path]
        path = path.rpartition(".")[0]
    return None


def _shown(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "empty"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def invalid_fields(errors: Any, sources: Mapping[str, tuple[str, Any]], *, label: str, object_type: str) -> list[str]:
    """One line per field the schema refused, naming the vendor field and value a mapped field came from."""
    lines = []
    for path, messages in _messages(errors or {}):
        origin = _origin(sources, path)
        if origin is None:
            lines.append(f"{path}: {' '.join(messages)}")
        elif path == "stage":
            lines.append(f"{label} {origin[0]} {_shown(origin[1])} is not a stage hrdd screens "
                         f"({', '.join(STAGES)}): map it in field_maps.{object_type}.stage")
        else:
            lines.append(f"{path} (vendor field {origin[0]}, {_shown(origin[1])}): {' '.join(messages)}")
    return lines
