"""A small JSON-over-HTTP client (standard library) for enrichment calls and write-back deliveries."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

MAX_RESPONSE = 5 * 1024 * 1024


class HttpError(Exception):
    """A call that failed: no answer, or a status outside 2xx. ``status`` is None without an answer."""

    def __init__(self, message: str, status: int | None = None, retryable: bool = True):
        super().__init__(message)
        self.status = status
        self.retryable = retryable


@dataclass
class HttpResponse:
    """Status, headers and decoded body of a 2xx answer."""

    status: int
    headers: dict[str, str]
    body: Any


def call(method: str, url: str, *, headers: dict[str, str] | None = None, json_body: Any = None,
         data: bytes | None = None, timeout: float = 10.0, setting: str | None = None) -> HttpResponse:
    """Send one request; return the 2xx answer (JSON decoded when it is JSON) or raise HttpError.

    ``setting`` names the configuration the URL comes from (``writeback.salesforce.oauth.token_url``),
    so a URL that cannot be called is reported by the setting to fix.
    """
    from hrdd.adapters.config import url_problem

    problem = url_problem(url)
    if problem:
        where = setting or "the URL"
        raise HttpError(f"refusing to call {method.upper()} {where}: it {problem}", retryable=False)
    request_headers = {"Accept": "application/json", **(headers or {})}
    if json_body is not None:
        data = json.dumps(json_body).encode()
        request_headers.setdefault("Content-Type", "application/json")
    request = urllib.request.Request(url, data=data, method=method.upper(), headers=request_headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
            raw = response.read(MAX_RESPONSE)
            status = response.status
            response_headers = {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as exc:
        detail = exc.read(2000).decode("utf-8", "replace").strip()
        # 4xx other than 408/429 will not heal by retrying the same request.
        retryable = exc.code >= 500 or exc.code in (408, 425, 429)
        raise HttpError(f"{method.upper()} {_safe(url)} answered {exc.code}: {detail[:300]}", exc.code,
                        retryable) from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HttpError(f"{method.upper()} {_safe(url)} failed: {reason}") from None
    body: Any = raw
    if raw and "json" in response_headers.get("content-type", ""):
        try:
            body = json.loads(raw)
        except ValueError:
            raise HttpError(f"{method.upper()} {_safe(url)} returned invalid JSON", status) from None
    return HttpResponse(status=status, headers=response_headers, body=body)


def _safe(url: str) -> str:
    """The URL without its query string or user:password, which may carry credentials (e.g. ``code=``)."""
    from hrdd.adapters.config import shown_url

    return shown_url(url)


class TokenSource:
    """Authorization headers from settings: a static ``access_token`` or OAuth 2.0 client credentials.

    ``oauth: {token_url, client_id, client_secret, scope?}`` fetches a token (cached until shortly before
    it expires); Salesforce, Entra ID (Dynamics) and SAP BTP all issue tokens this way.
    """

    def __init__(self):
        self._cache: dict[str, tuple[str, float]] = {}

    def headers(self, settings: dict, *, timeout: float = 10.0, where: str = "") -> dict[str, str]:
        """The Authorization header for these settings (empty when none is configured).

        ``where`` is the settings' place in the configuration (``writeback.salesforce``), named in errors.
        """
        from hrdd.adapters.config import reveal

        if settings.get("access_token"):
            return {"Authorization": f"Bearer {reveal(settings['access_token'])}"}
        oauth = settings.get("oauth")
        if not oauth:
            return {}
        import time
        from urllib.parse import urlencode

        prefix = f"{where}.oauth" if where else "oauth"
        if not isinstance(oauth, dict):
            raise HttpError(f"{prefix} must be a mapping with token_url, client_id and client_secret",
                            retryable=False)
        missing = [k for k in ("token_url", "client_id", "client_secret") if not reveal(oauth.get(k)).strip()]
        if missing:
            raise HttpError(f"{prefix}: {', '.join(missing)} not set", retryable=False)
        token_url, client_id = reveal(oauth["token_url"]).strip(), reveal(oauth["client_id"]).strip()
        scope = reveal(oauth.get("scope")).strip()
        key = f"{token_url}|{client_id}|{scope}"
        token, expires = self._cache.get(key, ("", 0.0))
        if token and time.monotonic() < expires:
            return {"Authorization": f"Bearer {token}"}
        form = {"grant_type": "client_credentials", "client_id": client_id,
                "client_secret": reveal(oauth.get("client_secret"))}
        if scope:
            form["scope"] = scope
        try:
            answer = call("POST", token_url, data=urlencode(form).encode(), timeout=timeout,
                          headers={"Content-Type": "application/x-www-form-urlencoded"},
                          setting=f"{prefix}.token_url")
        except HttpError as exc:
            message = str(exc) if str(exc).startswith("refusing") else f"OAuth token request ({prefix}) failed: {exc}"
            raise HttpError(message, exc.status, exc.retryable) from None
        if not isinstance(answer.body, dict) or not answer.body.get("access_token"):
            raise HttpError(f"the OAuth token endpoint ({prefix}.token_url) answered without an access_token",
                            answer.status)
        token = answer.body["access_token"]
        lifetime = float(answer.body.get("expires_in") or 3600)
        self._cache[key] = (token, time.monotonic() + max(lifetime - 60, 30))
        return {"Authorization": f"Bearer {token}"}


tokens = TokenSource()
