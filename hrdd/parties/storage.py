"""Stored restricted-party lists (every load is a version) and the false-positive decisions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from hrdd import audit
from hrdd.parties.entries import ListEntry
from hrdd.parties.loaders import LoadedList
from hrdd.sqltypes import UTCDateTime
from hrdd.tables import metadata

party_list_versions = sa.Table(
    "party_list_versions", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(100), nullable=False, index=True),
    sa.Column("format", sa.String(20), nullable=False),
    sa.Column("source_file", sa.String(500), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("entry_count", sa.Integer, nullable=False),
    sa.Column("name_count", sa.Integer, nullable=False),
    sa.Column("loaded_at", UTCDateTime(), nullable=False),
    sa.Column("loaded_by", sa.String(200), nullable=False),
)

party_list_entries = sa.Table(
    "party_list_entries", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("party_list_versions.id"), nullable=False),
    sa.Column("entry_id", sa.String(200), nullable=False),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("data", sa.JSON, nullable=False),
    sa.UniqueConstraint("version_id", "entry_id", name="uq_party_list_entries_version_entry"),
)

# A reviewer's decision that a party is not a listed entry. Rows are never deleted: a revocation is
# recorded on the row, and an expired or outdated decision simply stops applying.
party_false_positives = sa.Table(
    "party_false_positives", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("party_key", sa.String(500), nullable=False, index=True),
    sa.Column("party_name", sa.Text, nullable=False),
    sa.Column("list_name", sa.String(100), nullable=False),
    sa.Column("entry_id", sa.String(200), nullable=False),
    sa.Column("entry_name", sa.Text, nullable=False),
    sa.Column("entry_hash", sa.String(64), nullable=False),
    sa.Column("list_version_id", sa.Integer, sa.ForeignKey("party_list_versions.id"), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("author", sa.String(200), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("expires_at", UTCDateTime()),
    sa.Column("revoked_at", UTCDateTime()),
    sa.Column("revoked_by", sa.String(200)),
    sa.Column("revoke_reason", sa.Text),
)


@dataclass(frozen=True)
class ActiveList:
    """The newest version of one named list: what screenings use."""

    version_id: int
    name: str
    sha256: str
    format: str

    @property
    def label(self) -> str:
        """How the version is recorded in screenings, e.g. ``compiled-us-jp-ca@1``."""
        return f"{self.name}@{self.version_id}"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; they were stored as UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def save_version(store, loaded: LoadedList, name: str, loaded_by: str, names: int,
                 actor: str = "system") -> dict[str, Any]:
    """Store a loaded list as a new version in one database transaction (all entries or none), with its
    audit entry (``party_list.load`` by ``actor``)."""
    now = utcnow()
    with store.begin() as conn:
        version_id = conn.execute(party_list_versions.insert().values(
            name=name, format=loaded.format, source_file=loaded.source_file, sha256=loaded.sha256,
            entry_count=len(loaded.entries), name_count=names, loaded_at=now, loaded_by=loaded_by,
        )).inserted_primary_key[0]
        rows = [{"version_id": version_id, "entry_id": e.entry_id, "name": e.name,
                 "content_hash": e.content_hash(), "data": e.to_dict()} for e in loaded.entries]
        for start in range(0, len(rows), 2000):
            conn.execute(party_list_entries.insert(), rows[start:start + 2000])
        previous = conn.execute(sa.select(sa.func.max(party_list_versions.c.id)).where(
            party_list_versions.c.name == name, party_list_versions.c.id != version_id)).scalar()
        audit.record(conn, actor, "party_list.load", f"party-list:{name}", {
            "version_id": version_id, "supersedes_version": previous, "format": loaded.format,
            "source_file": loaded.source_file, "sha256": loaded.sha256, "entries": len(loaded.entries),
            "names": names, "loaded_by": loaded_by})
    return {"id": version_id, "name": name, "format": loaded.format, "entries": len(loaded.entries),
            "names": names, "sha256": loaded.sha256, "loaded_at": now}


def list_versions(store) -> list[dict[str, Any]]:
    """Every stored version, oldest first, each marked active when it is the newest of its name."""
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(party_list_versions).order_by(party_list_versions.c.id)).mappings().all()
    newest = {r["name"]: r["id"] for r in rows}
    return [{**dict(r), "loaded_at": aware(r["loaded_at"]), "active": newest[r["name"]] == r["id"]} for r in rows]


def active_lists(store) -> tuple[ActiveList, ...]:
    """The newest version of each named list, by name."""
    newest = sa.select(sa.func.max(party_list_versions.c.id)).group_by(party_list_versions.c.name)
    stmt = (sa.select(party_list_versions.c.id, party_list_versions.c.name, party_list_versions.c.sha256,
                      party_list_versions.c.format)
            .where(party_list_versions.c.id.in_(newest)).order_by(party_list_versions.c.name))
    with store.engine.connect() as conn:
        return tuple(ActiveList(r.id, r.name, r.sha256, r.format) for r in conn.execute(stmt))


def load_entries(store, version_ids: list[int]) -> tuple[list[ListEntry], list[str], list[int]]:
    """The entries of the given versions with their stored content hashes and version ids."""
    stmt = (sa.select(party_list_entries.c.version_id, party_list_entries.c.content_hash,
                      party_list_entries.c.data)
            .where(party_list_entries.c.version_id.in_(version_ids))
            .order_by(party_list_entries.c.version_id, party_list_entries.c.id))
    entries, hashes, versions = [], [], []
    with store.engine.connect() as conn:
        for row in conn.execute(stmt):
            entries.append(ListEntry.from_dict(row.data))
            hashes.append(row.content_hash)
            versions.append(row.version_id)
    return entries, hashes, versions


def add_false_positive(store, conn=None, **values: Any) -> int:
    """Record a reviewer's false-positive decision; in ``conn``'s transaction when given. Returns its id."""
    statement = party_false_positives.insert().values(**values, created_at=utcnow())
    if conn is not None:
        return conn.execute(statement).inserted_primary_key[0]
    with store.begin() as own:
        return own.execute(statement).inserted_primary_key[0]


def get_false_positive(store, fp_id: int) -> dict[str, Any] | None:
    """One decision by id."""
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(party_false_positives).where(party_false_positives.c.id == fp_id)).mappings().first()
    return _fp_row(row) if row else None


def revoke_false_positive(conn, fp_id: int, by: str, reason: str) -> bool:
    """Mark a decision revoked (it stays on record), in ``conn``'s transaction; False when not revocable."""
    return bool(conn.execute(party_false_positives.update()
                             .where(party_false_positives.c.id == fp_id, party_false_positives.c.revoked_at.is_(None))
                             .values(revoked_at=utcnow(), revoked_by=by, revoke_reason=reason)).rowcount)


def false_positives(store, party_key: str | None = None) -> list[dict[str, Any]]:
    """Every decision (newest first), optionally for one party."""
    stmt = sa.select(party_false_positives).order_by(party_false_positives.c.id.desc())
    if party_key is not None:
        stmt = stmt.where(party_false_positives.c.party_key == party_key)
    with store.engine.connect() as conn:
        return [_fp_row(r) for r in conn.execute(stmt).mappings()]


def standing_false_positives(store) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Decisions not revoked, keyed by (party key, entry id); expiry and entry changes are checked on use."""
    stmt = sa.select(party_false_positives).where(party_false_positives.c.revoked_at.is_(None))
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    with store.engine.connect() as conn:
        for row in conn.execute(stmt).mappings():
            out.setdefault((row["party_key"], row["entry_id"]), []).append(_fp_row(row))
    return out


def _fp_row(row) -> dict[str, Any]:
    data = dict(row)
    for key in ("created_at", "expires_at", "revoked_at"):
        data[key] = aware(data[key])
    return data
