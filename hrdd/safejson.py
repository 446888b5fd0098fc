"""Strict JSON for request bodies: what Python's json accepts but no store or client should ever see.

Python's ``json.loads`` takes ``NaN`` and ``Infinity``, turns ``1e400`` into infinity, keeps the last of
two equal keys, lets strings hold NUL characters and lone surrogates, and recurses without bound on nested
arrays. PostgreSQL refuses NUL in text and non-finite numbers in JSON, UTF-8 cannot encode a lone
surrogate, deep nesting ends in RecursionError (each of these was a 500), and a body with a key twice
means different things to different parsers. ``loads`` turns them all into a ``JsonRejected`` (a
ValueError) whose message names the problem and where it is, so callers answer 400.
"""

from __future__ import annotations

import json
import math
from typing import Any

from flask.json.provider import DefaultJSONProvider

MAX_DEPTH = 64


class JsonRejected(ValueError):
    """The body is not JSON hrdd accepts; the message says why and where."""


def _constant(name: str):
    raise JsonRejected(f"{name} is not a JSON number; send a finite number or null")


def _bad_text(text: str) -> str | None:
    if "\x00" in text:
        return "contains a NUL character (\\u0000)"
    if text.isascii():  # no surrogate can hide in ASCII, and encoding a copy costs more than this look
        return None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "contains a lone UTF-16 surrogate (an invalid \\ud800-\\udfff escape)"
    return None


def check(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """Raise JsonRejected for non-finite numbers, NUL or surrogate text, or nesting over ``max_depth``."""
    # Each entry carries its parent's entry and its own key; the "$.a[0].b" path is spelled out only for
    # an error, not for every node of every accepted body.
    stack: list[tuple[Any, tuple | None, Any, int]] = [(value, None, None, 0)]
    while stack:
        entry = stack.pop()
        node, _, _, depth = entry
        if isinstance(node, str):
            problem = _bad_text(node)
            if problem:
                raise JsonRejected(f"the string at {_where(entry)} {problem}")
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise JsonRejected(f"the number at {_where(entry)} is too large to represent")
        elif isinstance(node, dict | list):
            if depth >= max_depth:
                raise JsonRejected(f"the JSON is nested more than {max_depth} levels deep (at {_where(entry)})")
            if isinstance(node, dict):
                for key, child in node.items():
                    problem = _bad_text(key)
                    if problem:
                        raise JsonRejected(f"a key in {_where(entry)} {problem}")
                    stack.append((child, entry, key, depth + 1))
            else:
                stack.extend((child, entry, i, depth + 1) for i, child in enumerate(node))


def _where(entry: tuple) -> str:
    keys = []
    while entry[1] is not None:
        keys.append(entry[2])
        entry = entry[1]
    where = "$"
    for key in reversed(keys):
        where = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}"
    return where[:200]


def _object(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        # Parsers disagree on which of two equal keys wins, so a body that says both is refused.
        seen: set[str] = set()
        twice = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise JsonRejected(f"the key {twice[:100]!r} appears twice in one object; send each key once")
    return obj


def loads(data: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON text or UTF-8/16/32 bytes strictly; JsonRejected (a ValueError) names any problem."""
    overflowed: list[str] = []

    def parse_float(text: str) -> float:
        number = float(text)
        if math.isinf(number):
            overflowed.append(text)
        return number

    try:
        value = json.loads(data, parse_constant=_constant, object_pairs_hook=_object, parse_float=parse_float)
    except RecursionError:
        raise JsonRejected(f"the JSON is nested more than {max_depth} levels deep") from None
    except JsonRejected:
        raise
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise JsonRejected(str(exc)) from None
    if overflowed or not _plainly_safe(data, max_depth):
        check(value, max_depth)
    return value


def _plainly_safe(data: str | bytes, max_depth: int) -> bool:
    """True when the text itself shows ``check`` could find nothing (it then need not walk every node).

    The parser refuses raw control characters, so a NUL can only come from a ``\\u`` escape; a lone
    surrogate from such an escape or, in bytes (which ``json`` decodes with ``surrogatepass``), from a
    sequence led by 0xED. Nesting cannot reach ``max_depth`` with fewer brackets than that in all.
    """
    if isinstance(data, bytes | bytearray):
        if json.detect_encoding(data) not in ("utf-8", "utf-8-sig") or b"\xed" in data:
            return False
        escape, brackets = b"\\u", data.count(b"[") + data.count(b"{")
    else:
        if not data.isascii():
            return False
        escape, brackets = "\\u", data.count("[") + data.count("{")
    return escape not in data and brackets < max_depth


class StrictJSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with strict parsing, so every ``request.get_json()`` is protected."""

    sort_keys = False

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        """Parse like ``loads`` above (keyword arguments are not supported)."""
        return loads(s)
