"""Constant-time checks of webhook credentials: HMAC signatures, shared tokens, bearer and basic auth."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import unquote

from hrdd.adapters.config import reveal


class AuthError(Exception):
    """The sender could not be authenticated; the message says why without echoing any secret."""


def same(a: str | bytes, b: str | bytes) -> bool:
    """Compare two credentials in constant time (False when either is empty)."""
    if not a or not b:
        return False
    a_bytes = a.encode() if isinstance(a, str) else a
    b_bytes = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(a_bytes, b_bytes)


def matches_any(given: str | None, secrets: Iterable) -> bool:
    """True when ``given`` equals one of the configured secrets; every candidate is compared."""
    found = False
    for secret in secrets:
        # No early exit, so timing does not reveal which entry matched.
        found = same(given or "", reveal(secret)) or found
    return found


def configured(settings: dict, single: str, plural: str) -> list:
    """The secrets a sender may use: ``<plural>`` (a list, for rotation: the new one and the old one until
    every sender has the new one) and ``<single>``, without empty entries."""
    many = settings.get(plural) or []
    if not isinstance(many, list):
        many = [many]
    return [s for s in [*many, settings.get(single)] if reveal(s).strip()]


def hmac_sha256(secret, message: bytes) -> bytes:
    """The raw HMAC-SHA256 of ``message`` under ``secret``."""
    return hmac.new(reveal(secret).encode(), message, hashlib.sha256).digest()


def hmac_sha256_hex(secret, message: bytes) -> str:
    """HMAC-SHA256 as lowercase hex (the generic adapter's ``X-HRDD-Signature: sha256=<hex>``)."""
    return hmac_sha256(secret, message).hex()


def hrdd_signature(secret, timestamp: str, body: bytes) -> str:
    """``X-HRDD-Signature`` in and out: ``sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">``."""
    return "sha256=" + hmac_sha256_hex(secret, timestamp.encode() + b"." + body)


# HubSpot decodes exactly these percent-escapes in the URI before signing (v3).
_HUBSPOT_DECODE = ("%3A", "%2F", "%3F", "%40", "%21", "%24", "%27", "%28", "%29", "%2A", "%2C", "%3B")


def hubspot_uri(uri: str) -> str:
    """The request URI as HubSpot signs it: the listed percent-escapes decoded, others kept."""
    out = uri
    for escape in _HUBSPOT_DECODE:
        out = out.replace(escape, unquote(escape)).replace(escape.lower(), unquote(escape))
    return out


def hubspot_v3(secret, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """Expected ``X-HubSpot-Signature-v3``: base64 HMAC-SHA256 of method + URI + body + timestamp."""
    message = method.upper().encode() + hubspot_uri(uri).encode() + body + timestamp.encode()
    return base64.b64encode(hmac_sha256(secret, message)).decode()


def hubspot_v2(secret, method: str, uri: str, body: bytes) -> str:
    """Expected v2 ``X-HubSpot-Signature``: hex SHA-256 of client secret + method + URI + body."""
    return hashlib.sha256(reveal(secret).encode() + method.upper().encode() + uri.encode() + body).hexdigest()


def hubspot_v1(secret, body: bytes) -> str:
    """Expected v1 ``X-HubSpot-Signature``: hex SHA-256 of client secret + body."""
    return hashlib.sha256(reveal(secret).encode() + body).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def basic_credentials(authorization: str | None) -> tuple[str, str] | None:
    """(user, password) of an ``Authorization: Basic ...`` header, or None."""
    if not authorization:
        return None
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return (user, password) if sep else None
