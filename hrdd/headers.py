"""Security headers on every response: no framing, no content sniffing, a Content Security Policy for pages."""

from __future__ import annotations

from flask import Flask, g

# The pages use no scripts, no inline styles and nothing from other sites: only the stylesheet, inline SVG
# charts and forms posting to this site. Anything else a page tried to load (injected markup, say) is refused.
PAGE_POLICY = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
               "frame-ancestors 'none'; base-uri 'none'")
# JSON, documents and the rest are never meant to be rendered as a page, nor framed.
OTHER_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"


def install(app: Flask) -> None:
    """Add the headers to every response the app sends (errors included), keeping any a view set itself."""

    @app.after_request
    def _secure(response):
        headers = response.headers
        page = response.mimetype == "text/html"
        headers.setdefault("Content-Security-Policy", PAGE_POLICY if page else OTHER_POLICY)
        # For browsers that do not read frame-ancestors: a decision form in a hidden frame is a click away
        # from being sent by a reviewer who thinks they are on another site.
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        # Case and grievance ids in page URLs stay on this site when a reviewer follows a link out.
        headers.setdefault("Referrer-Policy", "same-origin")
        if page and g.get("user") is not None and "Cache-Control" not in headers:
            # A signed-in page (cases, grievances) must not be shown from the cache after signing out.
            headers["Cache-Control"] = "no-store"
        return response
