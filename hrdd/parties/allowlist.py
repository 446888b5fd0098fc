"""Recording reviewers' false-positive decisions: resolve the list entry, store, audit; workspace hand-off."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hrdd import audit
from hrdd.parties import service, storage
from hrdd.parties.normalize import default_normaliser


class DecisionError(ValueError):
    """A decision that cannot be recorded; ``field`` names the request field, ``status`` the HTTP status."""

    def __init__(self, message: str, field: str | None = None, status: int = 422):
        super().__init__(message)
        self.field = field
        self.status = status


def record(conn, store, data_dir, policy, *, party_name: str, entry_id: str, list_name: str | None,
           reason: str, author: str, expires_at: datetime | None, actor: str | None) -> int:
    """Store that ``party_name`` is not list entry ``entry_id`` (in ``conn``'s transaction); returns its id.

    ``list_name`` may be the loaded list's name ("csl") or the entry's own list ("U.S. BIS – Entity
    List"); it is needed only when several active lists carry the same entry id. With ``actor`` the
    decision also goes into the audit log.
    """
    party_key = default_normaliser().normalise(party_name).key
    if not party_key:
        raise DecisionError("The name has no identifying words (only legal forms).", "party_name")
    index = service.matcher_for(store, data_dir, policy).index
    found = [e for e in index.find(entry_id)
             if list_name is None or list_name in (_loaded_name(index, e), index.entries[e].list)]
    if not found:
        raise DecisionError(f"list entry {entry_id!r} is not on the active lists", "entry_id", 404)
    if len(found) > 1:
        names = ", ".join(sorted(_loaded_name(index, e) for e in found))
        raise DecisionError(f"Entry {entry_id!r} is on several lists; name one of: {names}", "list")
    e = found[0]
    source = index.source(e) or "@0"
    values: dict[str, Any] = dict(
        party_key=party_key, party_name=party_name, list_name=source.rsplit("@", 1)[0], entry_id=entry_id,
        entry_name=index.entries[e].name, entry_hash=index.entry_hash(e),
        list_version_id=int(source.rsplit("@", 1)[1]), reason=reason, author=author, expires_at=expires_at)
    new_id = storage.add_false_positive(store, conn, **values)
    if actor:
        audit.record(conn, actor, "party.false_positive", f"party:{party_name}",
                     {**{k: v for k, v in values.items() if k != "expires_at"}, "id": new_id,
                      "expires_at": expires_at.isoformat() if expires_at else None})
    service.invalidate(store)
    return new_id


def revoke(conn, store, fp_id: int, *, by: str, reason: str, actor: str) -> bool:
    """Withdraw a decision (kept on record) and audit it; False when it does not exist or is revoked."""
    if not storage.revoke_false_positive(conn, fp_id, by, reason):
        return False
    audit.record(conn, actor, "party.false_positive_revoked", f"party-false-positive:{fp_id}", {"reason": reason})
    service.invalidate(store)
    return True


def _loaded_name(index, e: int) -> str:
    return (index.source(e) or "").rsplit("@", 1)[0]


class WorkspaceAllowlist:
    """The object the reviewer workspace calls when a reviewer marks a match as a false positive.

    Registered as ``app.extensions["hrdd_party_allowlist"]``; the workspace records the mark and its
    audit entry itself and calls ``add`` in the same database transaction.
    """

    def __init__(self, app):
        self.app = app

    def add(self, connection, *, party_name: str, party_country: str | None, list_name: str, entry_id: str,
            reason: str, author: str, expires_at: str | None) -> int | None:
        """Store the mark as a false-positive decision keyed to the party, list entry and entry content.

        A mark on a match that is not from these lists (another matcher plugin's) is left to the
        workspace's own record: returns None.
        """
        services = self.app.extensions["hrdd"]
        expiry = datetime.fromisoformat(expires_at.replace("Z", "+00:00")) if expires_at else None
        try:
            return record(connection, services.store, self.app.config["HRDD_DATA_DIR"], services.policy,
                          party_name=party_name, entry_id=entry_id, list_name=list_name, reason=reason,
                          author=author, expires_at=expiry, actor=None)
        except DecisionError:
            return None
