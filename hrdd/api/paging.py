"""The ``limit`` and ``offset`` query arguments of list endpoints, checked the same way everywhere."""

from __future__ import annotations

from flask import request

from hrdd.errors import ApiError

MAX_OFFSET = 10**9


def page_args(default: int, maximum: int) -> tuple[int, int]:
    """``(limit, offset)`` from the query; a 400 naming the argument and its range for anything else."""
    out = []
    for name, fallback, low, high in (("limit", default, 1, maximum), ("offset", 0, 0, MAX_OFFSET)):
        raw = request.args.get(name)
        try:
            value = fallback if raw is None else int(raw)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise ApiError(400, "bad_request", f"{name} must be a whole number from {low} to {high}",
                           {name: [f"expected {low} to {high}, got {(raw or '')[:40]!r}"]})
        out.append(value)
    return out[0], out[1]


def page_parameters(default: int, maximum: int) -> list[dict]:
    """OpenAPI parameters for ``limit`` and ``offset``."""
    return [{"name": "limit", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 1, "maximum": maximum, "default": default}},
            {"name": "offset", "in": "query", "required": False,
             "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0}}]
