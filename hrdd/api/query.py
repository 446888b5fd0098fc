"""Query arguments an endpoint does not know: refused, so a misspelt one never passes silently."""

from __future__ import annotations

from flask import abort, request

from hrdd.errors import ApiError

# Unknown names quoted in the message and in ``errors`` (each cut to this many characters).
MAX_NAMED, MAX_NAME = 20, 40


def unknown_args(accepted: tuple[str, ...]) -> list[str]:
    """The request's query argument names that are not in ``accepted``, sorted, each cut to MAX_NAME."""
    return sorted({name[:MAX_NAME] for name in request.args if name not in accepted})


def unknown_args_message(unknown: list[str], accepted: tuple[str, ...]) -> str:
    """'Unknown query parameter 'yaer'; accepted: format, year' (for an API error or a page)."""
    named = ", ".join(repr(n) for n in unknown[:MAX_NAMED])
    if len(unknown) > MAX_NAMED:
        named += f" and {len(unknown) - MAX_NAMED} more"
    return (f"Unknown query parameter{'s' if len(unknown) > 1 else ''} {named}; "
            f"accepted: {', '.join(sorted(accepted)) or 'none'}")


def repeated_args(accepted: tuple[str, ...]) -> list[str]:
    """The names among ``accepted`` given more than once (``?year=2023&year=2024``), sorted."""
    return sorted({name for name in accepted if len(request.args.getlist(name)) > 1})


def refuse_unknown_args(accepted: tuple[str, ...]) -> None:
    """A 400 (``bad_request``) naming every query argument not in ``accepted`` and listing the accepted ones.

    An accepted argument given twice is refused too: which value would count is a guess.
    """
    unknown = unknown_args(accepted)
    if unknown:
        hint = f"unknown query parameter; accepted: {', '.join(sorted(accepted)) or 'none'}"
        raise ApiError(400, "bad_request", unknown_args_message(unknown, accepted),
                       {name: [hint] for name in unknown[:MAX_NAMED]})
    refuse_repeated_args(accepted)


def refuse_repeated_args(names: tuple[str, ...] | None = None) -> None:
    """A 400 (``bad_request``) naming every query argument given more than once (any, when ``names`` is None)."""
    repeated = repeated_args(tuple(request.args) if names is None else names)
    if repeated:
        repeated = [name[:MAX_NAME] for name in repeated[:MAX_NAMED]]
        raise ApiError(400, "bad_request", f"Query parameter{'s' if len(repeated) > 1 else ''} "
                       f"{', '.join(map(repr, repeated))} given more than once; give each once",
                       {name: ["given more than once"] for name in repeated})


def refuse_unknown_page_args(accepted: tuple[str, ...]) -> None:
    """For an HTML page: the 400 error page naming an unknown or repeated query argument (a hand-typed
    ``?stauts=all`` would otherwise show the default filter as if it had been applied)."""
    unknown = unknown_args(accepted)
    if unknown:
        abort(400, unknown_args_message(unknown, accepted))
    repeated = [name[:MAX_NAME] for name in repeated_args(accepted)[:MAX_NAMED]]
    if repeated:
        abort(400, f"Query parameter{'s' if len(repeated) > 1 else ''} {', '.join(map(repr, repeated))} "
                   "given more than once; give each once")
