"""Refuse requests whose URL or headers carry a NUL character, before any view or store sees them.

No identifier, filter or header value of hrdd can contain NUL, and PostgreSQL refuses it in text
parameters, so without this check ``GET /v1/screenings/%00`` was a 500 on the production store.
"""

from __future__ import annotations

from flask import Flask, request
from werkzeug.routing import IntegerConverter

from hrdd.errors import ApiError


def _could_hold_nul(environ: dict) -> bool:
    # A decoded NUL can only come from a raw NUL or "%00"; most requests have neither anywhere, and looking
    # at the raw values spares parsing the query string and title-casing every header name.
    if "\x00" in environ.get("PATH_INFO", "") or "%00" in environ.get("QUERY_STRING", "") \
            or "\x00" in environ.get("QUERY_STRING", ""):
        return True
    return any("\x00" in value for key, value in environ.items()
               if key.startswith(("HTTP_", "CONTENT_")) and isinstance(value, str))


def _nul_in_request() -> str | None:
    if not _could_hold_nul(request.environ):
        return None
    if "\x00" in request.path:
        return "the URL path"
    for key, value in request.args.items(multi=True):
        if "\x00" in key or "\x00" in value:
            return "the query string"
    for key, value in request.headers.items():
        if "\x00" in key or "\x00" in value:
            return f"the {key} header"
    return None


class StoreInteger(IntegerConverter):
    """``<int:...>`` path parts that fit the store's INTEGER columns; larger ones are a 404, not a 500.

    PostgreSQL refuses a parameter beyond 2**31 - 1 for an INTEGER column ("integer out of range").
    """

    def __init__(self, map, fixed_digits=0, min=None, max=2**31 - 1, signed=False):  # noqa: A002 - werkzeug's names
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def install(app: Flask) -> None:
    """Answer 400 (the one JSON error shape) to any request with NUL in its URL or headers; bound int paths.

    Must run before any blueprint is registered, so every ``<int:...>`` rule uses the bounded converter.
    """
    app.url_map.converters["int"] = StoreInteger

    @app.before_request
    def _refuse_nul():
        where = _nul_in_request()
        if where:
            raise ApiError(400, "bad_request", f"The request has a NUL character in {where}; no value may hold one")
