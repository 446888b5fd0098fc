"""Open credible grievances about an end-user whose name resembles a deal's (a possible RF-7.1 match)."""

from __future__ import annotations

from rapidfuzz import fuzz
from sqlalchemy import select

from hrdd.workspace.grievances import CLOSED
from hrdd.workspace.tables import grievances
from hrdd.workspace.util import end_user_key, end_user_normal

_OPEN_CREDIBLE_ABOUT_END_USERS = select(
    grievances.c.id, grievances.c.received_at, grievances.c.status, grievances.c.end_user_key,
    grievances.c.end_user_name,
).where(grievances.c.credible.is_(True), grievances.c.status.not_in(CLOSED), grievances.c.end_user_key.is_not(None))


def end_user_words(name: str) -> str:
    """The identifying words of an end-user's name, spaced (the words ``end_user_key`` joins)."""
    normal = end_user_normal(name)
    return " ".join(normal.tokens) or normal.native or " ".join(name.split()).lower()


def similarity(deal_name: str, grievance_name: str | None, grievance_ident: str) -> float:
    """0-100: how alike the deal's end-user and the grievance's are, word order and extra words aside.

    ``token_set_ratio`` scores "Public Security Directorate" and "Egyptian Directorate of Public Security"
    100 against "Directorate of Public Security", and a misspelt word in the 90s. A grievance linked before
    its end-user's name was kept has only the key's joined words, compared letter by letter.
    """
    words = end_user_words(deal_name)
    if grievance_name:
        return fuzz.token_set_ratio(words, end_user_words(grievance_name))
    return fuzz.ratio(words.replace(" ", ""), grievance_ident)


def similar_open_credible(conn, *, name: str, country: str | None, threshold: float) -> list[dict]:
    """Open credible grievances about another end-user key in the same country with a similar name."""
    key = end_user_key(name, country)
    suffix = "|" + (country or "").upper()
    found = []
    for row in conn.execute(_OPEN_CREDIBLE_ABOUT_END_USERS):
        if row.end_user_key == key or not row.end_user_key.endswith(suffix):
            continue
        score = similarity(name, row.end_user_name, row.end_user_key[: -len(suffix)])
        if score >= threshold:
            found.append({"id": row.id, "received_at": row.received_at, "status": row.status,
                          "end_user_name": row.end_user_name or row.end_user_key[: -len(suffix)],
                          "score": round(score)})
    return sorted(found, key=lambda g: (-g["score"], g["received_at"]))
