"""One JSON error shape for every failure: ``{"code", "status", "message", "errors"}``."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error that becomes a JSON response with the given HTTP status."""

    def __init__(self, status: int, code: str, message: str, errors: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or {}
        self.headers = headers or {}

    def to_dict(self) -> dict[str, Any]:
        """The response body."""
        return {"code": self.code, "status": self.status, "message": self.message, "errors": self.errors}


class StartupError(Exception):
    """Data the service needs is broken; the one-line message names the file and the problem."""


def not_found(what: str, ident: str) -> ApiError:
    """A 404 naming what was looked for."""
    return ApiError(404, "not_found", f"{what} {ident!r} does not exist")


# Field paths named in a 422's message; "errors" names them all.
MESSAGE_FIELDS = 20


def validation_error(errors: dict[str, Any], message: str | None = None) -> ApiError:
    """A 422 whose message names every bad field."""
    paths = sorted(_flatten(errors))
    fields = ", ".join(paths[:MESSAGE_FIELDS]) or "body"
    if len(paths) > MESSAGE_FIELDS:
        fields += f" and {len(paths) - MESSAGE_FIELDS} more (see errors)"
    return ApiError(422, "validation_error", message or f"Invalid fields: {fields}", errors)


def _flatten(errors: Any, prefix: str = "") -> list[str]:
    if isinstance(errors, dict):
        out: list[str] = []
        for key, value in errors.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            nested = _flatten(value, path)
            out.extend(nested or [path])
        return out
    return []
