"""API keys: created for machines with a role, stored as digests only, looked up with a short cache."""

from __future__ import annotations

import hashlib
import secrets
import time

import sqlalchemy as sa

from hrdd import audit
from hrdd.ids import iso, new_id, utcnow
from hrdd.tables import api_keys

ROLES = ("crm", "contracts", "export", "reviewer", "admin")
KEY_CACHE_SECONDS = 10.0


def hash_key(plaintext: str) -> str:
    """API keys are stored as SHA-256 digests (they are long random strings, so no salt is needed)."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


class ApiKeyStore:
    """The store's API-key methods (mixed into ``hrdd.store.Store``: they use its ``begin`` and ``engine``)."""

    _key_cache: dict[str, tuple[float, dict | None]]

    def create_api_key(self, name: str, role: str, actor: str = "system") -> tuple[str, str]:
        """Create a key for a machine; returns (key id, plaintext). Only the digest is stored.

        ``actor`` (who created it) goes into the audit log with the key's id, name and role, never the key.
        """
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        key_id = new_id("key")
        plaintext = "hrdd_" + secrets.token_urlsafe(32)
        with self.begin() as conn:
            conn.execute(api_keys.insert().values(id=key_id, name=name, role=role, key_hash=hash_key(plaintext),
                                                  prefix=plaintext[:12], created_at=utcnow()))
            audit.record(conn, actor, "api_key.create", key_id, {"name": name, "role": role})
        return key_id, plaintext

    def lookup_api_key(self, plaintext: str) -> dict | None:
        """The key's name and role if it exists and is not revoked (cached for KEY_CACHE_SECONDS).

        A key revoked through this process stops working at once; other processes notice within the TTL.
        """
        digest = hash_key(plaintext)
        cached = self._key_cache.get(digest)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        found = self._lookup_api_key(digest)
        if len(self._key_cache) > 10_000:
            self._key_cache.clear()
        self._key_cache[digest] = (time.monotonic() + KEY_CACHE_SECONDS, found)
        return found

    def _lookup_api_key(self, digest: str) -> dict | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(api_keys.c.id, api_keys.c.name, api_keys.c.role).where(
                api_keys.c.key_hash == digest, api_keys.c.revoked_at.is_(None))).first()
        return None if row is None else {"id": row.id, "name": row.name, "role": row.role}

    def list_api_keys(self) -> list[dict]:
        """Every key (never the plaintext)."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at)).all()
        return [{"id": r.id, "name": r.name, "role": r.role, "prefix": r.prefix,
                 "created_at": iso(r.created_at), "revoked": r.revoked_at is not None} for r in rows]

    def revoke_api_key(self, key_id: str, actor: str = "system") -> bool:
        """Revoke a key (an audit entry by ``actor``); returns False when there is no such active key."""
        with self.begin() as conn:
            done = bool(conn.execute(api_keys.update().where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                                     .values(revoked_at=utcnow())).rowcount)
            if done:
                key = conn.execute(sa.select(api_keys.c.name, api_keys.c.role).where(api_keys.c.id == key_id)).one()
                audit.record(conn, actor, "api_key.revoke", key_id, {"name": key.name, "role": key.role})
        self._key_cache.clear()
        return done
