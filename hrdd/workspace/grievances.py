"""The grievance channel: public reports of suspected misuse, tracking tokens, triage and actions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets

from sqlalchemy import func, insert, select, update

from hrdd import audit
from hrdd.reference.countries import shipped_codes
from hrdd.reference.country_locales import code_for_translated_name
from hrdd.tables import screenings
from hrdd.workspace.tables import grievance_actions, grievance_links, grievances
from hrdd.workspace.util import end_user_key, new_id, now_iso

STATUSES = {
    "received": "Received: waiting to be reviewed",
    "under_review": "Under review: a reviewer is assessing the report",
    "investigating": "Investigating: the company is looking into the matter with the customer",
    "resolved": "Resolved: the company has finished its response",
    "closed": "Closed: no further action",
}
CLOSED = ("resolved", "closed")
ACTIONS = {
    "engage": "Engage the customer",
    "request_corrective_action": "Request corrective action",
    "suspend_support": "Suspend support and updates",
    "terminate": "Terminate the contract",
    "note": "Note",
}
# Field -> (required, maximum length); the public form and the API accept exactly these.
FIELDS = {
    "subject_name": (True, 300),
    "country": (False, 100),
    "location": (False, 300),
    "product": (False, 300),
    "description": (True, 10000),
    "occurred_on": (False, 100),
    "reporter_name": (False, 200),
    "reporter_contact": (False, 300),
}
MIN_DESCRIPTION = 20
# What the public form calls each field: its messages use these, never the internal names.
LABELS = {
    "subject_name": "Who used the product",
    "country": "Country",
    "location": "Place",
    "product": "Product",
    "description": "What happened",
    "occurred_on": "When",
    "reporter_name": "Your name",
    "reporter_contact": "Email or other contact",
}


def limits_text() -> str:
    """'"What happened" up to 10,000 characters, …': every field's limit, in the form's words."""
    ordered = sorted(FIELDS.items(), key=lambda item: -item[1][1])
    return ", ".join(f'"{LABELS[key]}" up to {limit:,} characters' for key, (_, limit) in ordered)


class GrievanceError(ValueError):
    """A report or triage step was refused; ``errors`` maps field names to messages."""

    def __init__(self, message: str, errors: dict | None = None):
        super().__init__(message)
        self.errors = errors or {}


def token_hash(token: str) -> str:
    # Tokens carry 192 random bits, so an unsalted digest is enough to keep them out of the database.
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def normalise_country(value: str | None) -> str | None:
    """An ISO 3166-1 alpha-2 code for a code or a country name; None when empty; ValueError if unknown."""
    value = (value or "").strip()
    return shipped_codes().normalise(value) if value else None


def reported_country(text: str | None) -> str | None:
    """The code of the country a reporter named, in English or another language; None when it does not resolve.

    Never refuses: a reporter may name a region, a city or nothing they know, and the report still counts.
    """
    try:
        return normalise_country(text)
    except ValueError:
        return code_for_translated_name(text or "")


def validate_report(data: dict) -> dict:
    """Check a report against FIELDS and return the cleaned values; raise GrievanceError naming fields."""
    if not isinstance(data, dict):
        raise GrievanceError("The report must be a JSON object", {"body": "expected an object"})
    errors: dict[str, str] = {}
    unknown = sorted(set(data) - set(FIELDS))
    for key in unknown:
        errors[key] = "unknown field"
    clean: dict[str, str | None] = {}
    for key, (required, limit) in FIELDS.items():
        value = data.get(key)
        if value is not None and not isinstance(value, str):
            errors[key] = "must be text"
            continue
        value = (value or "").strip()
        if required and not value:
            errors[key] = "is required"
        elif len(value) > limit:
            errors[key] = f"is longer than {limit:,} characters (it has {len(value):,})"
        clean[key] = value or None
    if clean.get("description") and len(clean["description"]) < MIN_DESCRIPTION and "description" not in errors:
        errors["description"] = (f"needs at least {MIN_DESCRIPTION} characters: describe what happened and who "
                                 "was affected")
    if "country" not in errors:
        clean["country_text"] = clean.get("country")
        clean["country"] = reported_country(clean["country_text"])
    if errors:
        raise GrievanceError("The report was not accepted: " + "; ".join(f"{k} {v}" for k, v in errors.items()),
                             errors)
    return clean


def _submission_token(submission: str | None, secret: str | bytes | None, clean: dict) -> str | None:
    """The tracking token a browser session's submission mark gives this report, or None without a mark.

    An HMAC under the app's secret key of the mark and the report's content: the same report sent again from
    the same browser (Send pressed twice, Back and Send, a reload resending the form) gets the same token and
    finds the report already stored; another report gets another token. Only the server can derive it.
    """
    if not secret or not isinstance(submission, str) or not 16 <= len(submission) <= 100:
        return None
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    content = json.dumps(clean, sort_keys=True, ensure_ascii=False)
    message = f"grievance-submission:{submission}\n{content}".encode()
    return "trk_" + base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()[:24]).decode("ascii")


def submit(conn, data: dict, *, submission: str | None = None, secret: str | bytes | None = None) -> dict:
    """Store a public report; return its reference and the tracking token (shown to the reporter once).

    With the browser session's ``submission`` mark (and the app's ``secret``), the same report sent again
    (a slow connection, Send pressed twice, Back and Send) is not stored twice: the receipt of the one
    stored comes back, with its token and ``"duplicate": True``. Two such sends at the same moment both
    miss it and the second insert breaks the unique token: the caller retries (``IntegrityError``).
    """
    clean = validate_report(data)
    token = _submission_token(submission, secret, clean)
    stored = stored_receipt(conn, token) if token is not None else None
    if stored is not None:
        return stored
    token = token or "trk_" + secrets.token_urlsafe(24)
    grievance_id = new_id("grv")
    at = now_iso()
    conn.execute(insert(grievances).values(
        id=grievance_id, token_hash=token_hash(token), received_at=at, updated_at=at, status="received",
        credible=None, **clean))
    audit.record(conn, "public", "grievance.received", grievance_id,
                 {"anonymous": not (clean["reporter_name"] or clean["reporter_contact"]),
                  "country": clean["country"]})
    return {"reference": grievance_id, "token": token, "status": "received",
            "status_text": STATUSES["received"], "received_at": at, "duplicate": False}


def stored_receipt(conn, token: str) -> dict | None:
    """The receipt of the report already stored with ``token`` (``"duplicate": True``), or None."""
    row = conn.execute(select(grievances).where(grievances.c.token_hash == token_hash(token))).first()
    if row is None:
        return None
    return {"reference": row.id, "token": token, "status": row.status,
            "status_text": STATUSES.get(row.status, row.status), "received_at": row.received_at, "duplicate": True}


def new_submission_mark() -> str:
    """A fresh random mark for one browser session's reports (see ``submit``)."""
    return secrets.token_urlsafe(18)


def status_by_token(conn, token: str) -> dict | None:
    """What the holder of a tracking token may see: status, dates and the public note; None if unknown."""
    if not token or not isinstance(token, str) or len(token) > 100:
        return None
    row = conn.execute(select(grievances).where(grievances.c.token_hash == token_hash(token.strip()))).first()
    if row is None:
        return None
    return {"reference": row.id, "status": row.status, "status_text": STATUSES.get(row.status, row.status),
            "received_at": row.received_at, "updated_at": row.updated_at, "note": row.public_note or ""}


REPORTER_UPDATE = "reporter_update"  # information a reporter added with the token: not an action the company took
ACTION_LABELS = {**ACTIONS, REPORTER_UPDATE: "Information added by the reporter"}
MAX_UPDATE = FIELDS["description"][1]


def get(conn, grievance_id: str) -> dict | None:
    """One grievance with its linked transactions and actions (for reviewers)."""
    row = conn.execute(select(grievances).where(grievances.c.id == grievance_id)).first()
    if row is None:
        return None
    data = dict(row._mapping)
    data.pop("token_hash")
    data["links"] = [dict(r._mapping) for r in conn.execute(
        select(grievance_links).where(grievance_links.c.grievance_id == grievance_id)
        .order_by(grievance_links.c.linked_at))]
    data["actions"] = [dict(r._mapping) for r in conn.execute(
        select(grievance_actions).where(grievance_actions.c.grievance_id == grievance_id)
        .order_by(grievance_actions.c.id))]
    data["open_credible"] = bool(data["credible"]) and data["status"] not in CLOSED
    return data


FILTERS = ("open", "all", *STATUSES)  # what the list filters by: "open" is every status not resolved or closed


def bad_filter_message(status: str) -> str:
    """The 400 message for a status filter the list does not know, naming the accepted ones."""
    return f"Unknown status {status[:40]!r}; use one of: {', '.join(FILTERS)}"


def listing(conn, *, status: str = "open", limit: int = 50, offset: int = 0) -> tuple[list[dict], int]:
    """One page of grievances for the triage list, oldest first, and how many match in all.

    ``status`` is one of FILTERS; ValueError for anything else (it would match nothing, which reads as
    "no grievances").
    """
    if status not in FILTERS:
        raise ValueError(bad_filter_message(status))
    updates = (select(func.count()).select_from(grievance_actions)
               .where(grievance_actions.c.grievance_id == grievances.c.id,
                      grievance_actions.c.action == REPORTER_UPDATE)
               .correlate(grievances).scalar_subquery().label("reporter_updates"))
    query = select(grievances.c.id, grievances.c.received_at, grievances.c.status, grievances.c.credible,
                   grievances.c.subject_name, grievances.c.country, grievances.c.country_text,
                   grievances.c.end_user_key, grievances.c.end_user_name, updates)
    if status == "open":
        query = query.where(grievances.c.status.not_in(CLOSED))
    elif status != "all":
        query = query.where(grievances.c.status == status)
    total = conn.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = conn.execute(query.order_by(grievances.c.received_at, grievances.c.id).limit(limit).offset(offset))
    return [dict(r._mapping) for r in rows], total


KEEP = object()  # a triage field left out: its stored value stays


def triage(conn, grievance_id: str, actor: str, *, status=KEEP, credible=KEEP, end_user_name=KEEP,
           end_user_country=KEEP, public_note=KEEP, country=KEEP) -> None:
    """Change the status, credibility, end-user concerned, reporter's note or report's country code; a field
    left KEEP stays as stored.

    None clears credibility (not assessed), the end-user link (an empty name too), the note and the country
    code (the reporter's own text stays); the end-user's name and country go together.
    """
    errors = {}
    values: dict = {}
    if country is not KEEP:
        try:
            values["country"] = normalise_country(country)
        except ValueError as exc:
            errors["country"] = (f"needs the two-letter ISO code of the country, such as EG for Egypt, or a country "
                                 f"name in English ({exc}); the reporter's own words stay on the report")
    if status is not KEEP:
        if status not in STATUSES:
            errors["status"] = f"must be one of {', '.join(STATUSES)}"
        values["status"] = status
    if credible is not KEEP:
        values["credible"] = credible
    if end_user_name is not KEEP:
        values["end_user_key"] = values["end_user_name"] = None
        if end_user_name and len(end_user_name) > 300:
            errors["end_user_name"] = "is longer than 300 characters"
        elif end_user_name and end_user_name.strip():
            # The key matches deals; the name as typed is what people read.
            values["end_user_name"] = " ".join(end_user_name.split())
            try:
                country = normalise_country(None if end_user_country is KEEP else end_user_country)
            except ValueError as exc:
                errors["end_user_country"] = str(exc)
                country = None
            if not country and "end_user_country" not in errors:
                errors["end_user_country"] = "is required to link an end-user"
            values["end_user_key"] = end_user_key(end_user_name, country)
    if public_note is not KEEP:
        if public_note and len(public_note) > 2000:
            errors["public_note"] = "is longer than 2000 characters"
        values["public_note"] = (public_note or "").strip() or None
    if errors:
        raise GrievanceError("Triage not saved: " + "; ".join(f"{k} {v}" for k, v in errors.items()), errors)
    before = get(conn, grievance_id)
    if before is None:
        raise LookupError(grievance_id)
    stamp = now_iso()
    if "status" in values:
        # Yearly figures count closings by this date; moving between resolved and closed keeps the first.
        values["closed_at"] = (before["closed_at"] or stamp) if values["status"] in CLOSED else None
    conn.execute(update(grievances).where(grievances.c.id == grievance_id).values(**values, updated_at=stamp))
    after = {**before, **values}
    audit.record(conn, actor, "grievance.triage", grievance_id,
                 {"status": after["status"], "credible": after["credible"], "end_user": after["end_user_key"],
                  "public_note": after["public_note"], "country": after["country"],
                  "changed": sorted(k for k in values if k != "closed_at" or values[k] != before["closed_at"])})


def proposed_key(end_user_name: str | None, end_user_country: str | None) -> str | None:
    """The end-user key a triage with this name and country would record, or None (none, or invalid)."""
    if not end_user_name or not end_user_name.strip():
        return None
    try:
        country = normalise_country(end_user_country)
    except ValueError:
        return None
    return end_user_key(end_user_name, country) if country else None


def deals_concerned(conn, grievance_id: str, also_keys: tuple[str | None, ...] = ()) -> set[str]:
    """The stored deals whose gate this grievance can hold: those linked to it, and those whose newest
    screening names its end-user (the one on record, and ``also_keys``, e.g. one a triage is about to set).
    """
    row = conn.execute(select(grievances.c.end_user_key).where(grievances.c.id == grievance_id)).first()
    if row is None:
        return set()
    found = {r.transaction_id for r in conn.execute(
        select(grievance_links.c.transaction_id).where(grievance_links.c.grievance_id == grievance_id))}
    keys = {k for k in (row.end_user_key, *also_keys) if k}
    for key in keys:
        found |= deals_of_end_user(conn, key)
    return found


def deals_of_end_user(conn, key: str) -> set[str]:
    """The stored deals whose newest screening's end-user has this key (``end_user_key``)."""
    country = key.rpartition("|")[2]
    if not country:
        return set()
    newest = func.row_number().over(partition_by=screenings.c.transaction_id,
                                    order_by=(screenings.c.created_at.desc(), screenings.c.id.desc()))
    in_country = select(screenings.c.transaction_id).where(screenings.c.end_user_country == country)
    ranked = (select(screenings.c.transaction_id, screenings.c.result, newest.label("newest"))
              .where(screenings.c.transaction_id.in_(in_country)).subquery())
    found = set()
    for row in conn.execute(select(ranked.c.transaction_id, ranked.c.result).where(ranked.c.newest == 1)):
        end_user = ((row.result or {}).get("transaction") or {}).get("end_user") or {}
        if end_user.get("name") and end_user_key(str(end_user["name"]), end_user.get("country")) == key:
            found.add(row.transaction_id)
    return found


def link_transaction(conn, grievance_id: str, transaction_id: str, actor: str) -> None:
    """Link a grievance to a stored transaction (idempotent)."""
    exists = conn.execute(select(grievance_links).where(grievance_links.c.grievance_id == grievance_id,
                                                        grievance_links.c.transaction_id == transaction_id)).first()
    if exists:
        return
    conn.execute(insert(grievance_links).values(grievance_id=grievance_id, transaction_id=transaction_id,
                                                linked_at=now_iso(), linked_by=actor))
    conn.execute(update(grievances).where(grievances.c.id == grievance_id).values(updated_at=now_iso()))
    audit.record(conn, actor, "grievance.link", grievance_id, {"transaction_id": transaction_id})


def add_action(conn, grievance_id: str, actor: str, action: str, outcome: str) -> None:
    """Record an action taken on a grievance (engage, corrective action, suspend, terminate) and its outcome."""
    errors = {}
    if action not in ACTIONS:
        errors["action"] = f"must be one of {', '.join(ACTIONS)}"
    outcome = (outcome or "").strip()
    if not outcome:
        errors["outcome"] = "describe what was done and its outcome"
    elif len(outcome) > 5000:
        errors["outcome"] = "is longer than 5000 characters"
    if errors:
        raise GrievanceError("Action not recorded: " + "; ".join(f"{k} {v}" for k, v in errors.items()), errors)
    if get(conn, grievance_id) is None:
        raise LookupError(grievance_id)
    conn.execute(insert(grievance_actions).values(grievance_id=grievance_id, at=now_iso(), actor=actor,
                                                  action=action, outcome=outcome))
    conn.execute(update(grievances).where(grievances.c.id == grievance_id).values(updated_at=now_iso()))
    audit.record(conn, actor, "grievance.action", grievance_id, {"action": action, "outcome": outcome})


# Built once: this runs on every screening and gate read, where building the statement costs more than
# running it.
_ANY_OPEN_CREDIBLE = select(grievances.c.id).where(
    grievances.c.credible.is_(True), *(grievances.c.status != s for s in CLOSED)).limit(1)


def any_open_credible(conn) -> bool:
    """True when at least one grievance is open and credible (lets screenings skip further look-ups)."""
    return conn.execute(_ANY_OPEN_CREDIBLE).first() is not None


def open_credible(conn, *, end_user: tuple[str, str] | None = None,
                  transaction_id: str | None = None) -> list[dict]:
    """Open credible grievances about this end-user (name, country) or linked to this transaction."""
    base = (grievances.c.credible.is_(True)) & (grievances.c.status.not_in(CLOSED))
    found: dict[str, dict] = {}
    if end_user:
        key = end_user_key(*end_user)
        for row in conn.execute(select(grievances.c.id, grievances.c.received_at, grievances.c.status)
                                .where(base, grievances.c.end_user_key == key)):
            found[row.id] = dict(row._mapping)
    if transaction_id:
        query = (select(grievances.c.id, grievances.c.received_at, grievances.c.status)
                 .join(grievance_links, grievance_links.c.grievance_id == grievances.c.id)
                 .where(base, grievance_links.c.transaction_id == transaction_id))
        for row in conn.execute(query):
            found[row.id] = dict(row._mapping)
    return sorted(found.values(), key=lambda g: g["received_at"])

