"""The JSON body of an API request: 415 for another content type, 400 for malformed JSON or a non-object."""

from __future__ import annotations

from typing import Any

from flask import request

from hrdd import safejson
from hrdd.errors import ApiError


def json_body(what: str = "the body") -> Any:
    """The request's JSON value; 415 for another content type, 400 for malformed JSON."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type",
                       f"Send {what} as application/json (got {request.mimetype or 'no content type'!r})")
    try:
        return safejson.loads(request.get_data(cache=True))
    except safejson.JsonRejected as exc:
        raise ApiError(400, "malformed_json", f"The body is not acceptable JSON: {exc}") from None


def json_object(shape: str = "") -> dict:
    """The request's JSON object (``shape`` says what it holds, for the error); as ``json_body`` otherwise."""
    body = json_body()
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", "The body must be a JSON object" + (f": {shape}" if shape else ""))
    return body
