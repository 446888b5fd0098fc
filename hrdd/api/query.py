"""Query arguments an endpoint does not know: refused, so a misspelt one never passes silently."""

from __future__ import annotations

from collections.abc import Iterable

from flask import abort, request

from hrdd.errors import ApiError

# Unknown names quoted in the message and in ``errors`` (each cut to this many characters).
MAX_NAMED, MAX_NAME = 20, 40


def unknown_args(accepted: tuple[str, ...]) -> list[str]:
    """The request's query argument names that are not in ``accepted``, sorted, each cut to MAX_NAME."""
    return _named(name for name in request.args if name not in accepted)


def repeated_args(names: Iterable[str]) -> list[str]:
    """The names among ``names`` given more than once (``?year=2023&year=2024``), sorted, each cut to MAX_NAME."""
    return _named(name for name in names if len(request.args.getlist(name)) > 1)


def unknown_args_message(unknown: list[str], accepted: tuple[str, ...]) -> str:
    """'Unknown query parameter 'yaer'; accepted: format, year' (for an API error or a page)."""
    named = ", ".join(repr(n) for n in unknown[:MAX_NAMED])
    if len(unknown) > MAX_NAMED:
        named += f" and {len(unknown) - MAX_NAMED} more"
    return (f"Unknown query parameter{'s' if len(unknown) > 1 else ''} {named}; "
            f"accepted: {', '.join(sorted(accepted)) or 'none'}")


def unknown_args_error(unknown: Iterable[str], accepted: tuple[str, ...]) -> ApiError:
    """The 400 (``bad_request``) naming each unknown argument and listing the accepted ones."""
    unknown = _named(unknown)
    hint = f"unknown query parameter; accepted: {', '.join(sorted(accepted)) or 'none'}"
    return ApiError(400, "bad_request", unknown_args_message(unknown, accepted),
                    {name: [hint] for name in unknown[:MAX_NAMED]})


def _named(names: Iterable[str]) -> list[str]:
    return sorted({name[:MAX_NAME] for name in names})


def _problem(accepted: tuple[str, ...] | None) -> ApiError | None:
    """The 400 for an unknown argument (unless ``accepted`` is None: any name) or for an accepted one given
    twice (which value would count is a guess); None when the query is fine."""
    if not request.query_string:
        return None  # the usual case: nothing to check, and parsing the arguments costs on every request
    unknown = unknown_args(accepted) if accepted is not None else []
    if unknown:
        return unknown_args_error(unknown, accepted)
    repeated = repeated_args(request.args if accepted is None else accepted)[:MAX_NAMED]
    if repeated:
        return ApiError(400, "bad_request", f"Query parameter{'s' if len(repeated) > 1 else ''} "
                        f"{', '.join(map(repr, repeated))} given more than once; give each once",
                        {name: ["given more than once"] for name in repeated})
    return None


def refuse_unknown_args(accepted: tuple[str, ...] | None) -> None:
    """A 400 (``bad_request``) naming every query argument not in ``accepted`` and listing the accepted ones,
    or every accepted one given twice. ``accepted`` None: any name, but none twice."""
    problem = _problem(accepted)
    if problem:
        raise problem


def refuse_unknown_page_args(accepted: tuple[str, ...]) -> None:
    """For an HTML page: the 400 error page naming an unknown or repeated query argument (a hand-typed
    ``?stauts=all`` would otherwise show the default filter as if it had been applied)."""
    problem = _problem(accepted)
    if problem:
        abort(400, problem.message)
