"""What a form sent without a live session or a valid token gets: nothing done, and what was typed back."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import current_app, g, render_template, request

from hrdd.workspace.security import CSRF_FIELD, safe_next

RESEND_PREFIX = "resend:"  # the sign-in form's copies of what a signed-out form held


def _same_site_path(url: str | None) -> str | None:
    """The path and query of ``url`` when it points at this site, else None."""
    parts = urlsplit(url or "")
    if parts.netloc != request.host:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def from_this_site() -> bool:
    """Whether the browser says the form was on one of this site's pages (Origin, else Referer).

    Only then is what it held offered back to send again: a form another site made a browser send must
    not come back to the reviewer as their own, one click from being recorded.
    """
    origin = request.headers.get("Origin")
    if origin:
        return urlsplit(origin).netloc == request.host
    return _same_site_path(request.referrer) is not None


def _typed() -> list[tuple[str, str]]:
    return [(key, value) for key, value in request.form.items(multi=True)
            if key not in (CSRF_FIELD, "password") and value.strip()]


def refused():
    """The page for an unsafe request without a valid CSRF token.

    Signed out (the session ended or expired while the form was filled in) on a signed-in page: say to sign
    in again (401), show what was typed, and carry it through the sign-in form (``resend_page``). Signed in
    with an old token (signed in again in another tab since the page was loaded): the form back filled in.
    Otherwise, "Form expired".
    """
    view = current_app.view_functions.get(request.endpoint)
    needs_session = getattr(view, "auth", None) == "session"
    typed = _typed() if needs_session and from_this_site() else []
    back = safe_next(_same_site_path(request.referrer))
    if needs_session and g.get("user") is None:
        return render_template("workspace/signed_out.html", typed=typed, next=back,
                               resend_to=request.path if typed else ""), 401
    if typed:
        return render_template("workspace/resend.html", action=request.path, fields=typed, back=back,
                               signed_in_again=False), 400
    return render_template("workspace/error.html", title="Form expired",
                           message="This form was out of date or did not come from this site. "
                                   "Go back, reload the page and try again."), 400


def resend_page():
    """After signing in from the signed-out page: the form that was not sent, filled in, to send again; else None."""
    target = request.form.get("resend_to", "")
    fields = [(key[len(RESEND_PREFIX):], value) for key, value in request.form.items(multi=True)
              if key.startswith(RESEND_PREFIX)]
    if not fields or safe_next(target) != target:
        return None
    return render_template("workspace/resend.html", action=target, fields=fields,
                           back=safe_next(request.form.get("next")), signed_in_again=True)
