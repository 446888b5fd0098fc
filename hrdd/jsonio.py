"""Fast JSON (orjson) for the store's JSON columns and the API's responses: screenings are large dicts."""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider

from hrdd.safejson import StrictJSONProvider

_OPTIONS = orjson.OPT_NON_STR_KEYS


def dumps(obj: Any) -> str:
    """Serialise to a JSON string (dates as ISO 8601, like Flask's provider)."""
    try:
        return orjson.dumps(obj, default=DefaultJSONProvider.default, option=_OPTIONS).decode()
    except orjson.JSONEncodeError:
        # orjson refuses what the standard library writes, e.g. integers beyond 64 bits echoed in an error.
        return json.dumps(obj, default=DefaultJSONProvider.default, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """Parse JSON text."""
    return orjson.loads(text)


class FastJSONProvider(StrictJSONProvider):
    """Strict parsing of request bodies; orjson for responses (same output for the types the API returns)."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        # Flask asks for compact separators on every response; indentation (debug) goes the slow way.
        if kwargs.get("indent") is None and set(kwargs) <= {"separators", "indent"}:
            return dumps(obj)
        return super().dumps(obj, **kwargs)
