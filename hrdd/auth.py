"""API-key authentication and role checks for machine callers (Authorization: Bearer <key>)."""

from __future__ import annotations

import functools

from flask import g, request

from hrdd.errors import ApiError
from hrdd.services import current_services

ROLES = ("crm", "contracts", "export", "reviewer", "admin")


def authenticate() -> dict | None:
    """The principal behind the request's bearer key (or a signed-in person), or None."""
    if "principal" in g:
        return g.principal
    principal = None
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        key = current_services().store.lookup_api_key(token.strip())
        if key:
            principal = {"name": key["name"], "role": key["role"], "kind": "api_key", "id": key["id"]}
    if principal is None:
        loader = getattr(current_services(), "session_principal", None)
        principal = loader() if loader else None
    g.principal = principal
    return principal


def forbidden(principal: dict, allowed) -> ApiError:
    """The 403 for a valid key (or person) whose role may not do this, naming the roles that may."""
    return ApiError(403, "forbidden",
                    f"Role {principal['role']!r} may not do this; it needs one of: {', '.join(sorted(allowed))}")


def require_role(*roles: str):
    """Decorator: 401 without a valid key, 403 unless the key's role is one of ``roles`` (or admin)."""
    allowed = set(roles) | {"admin"}

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            principal = authenticate()
            if principal is None:
                # A loader that recognised the caller but refused it says why in g.auth_refused.
                message = g.get("auth_refused") or "A valid API key is required: Authorization: Bearer <key>"
                raise ApiError(401, "unauthorized", message, headers={"WWW-Authenticate": 'Bearer realm="hrdd"'})
            if roles and principal["role"] not in allowed:
                raise forbidden(principal, allowed)
            return view(*args, **kwargs)

        wrapper.required_roles = tuple(sorted(allowed)) if roles else ("any",)
        wrapper.auth = "api_key"
        return wrapper

    return decorator


def public(reason: str):
    """Mark a view as deliberately open to anyone, saying why (docs/security.md lists every route's access)."""
    def decorator(view):
        view.auth = "public"
        view.public_reason = reason
        return view

    return decorator


def vendor_authenticated(how: str):
    """Mark a webhook view whose caller is authenticated the vendor's way (signature, token), saying how."""
    def decorator(view):
        view.auth = "vendor"
        view.public_reason = how
        return view

    return decorator
