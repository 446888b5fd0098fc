"""The checklist_uploads table: every accepted checklist workbook, kept as evidence with what it said."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import sqlalchemy as sa

from hrdd.sqltypes import UTCDateTime
from hrdd.tables import metadata
from hrdd.workspace.util import end_user_key

checklist_uploads = sa.Table(
    "checklist_uploads", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("screening_id", sa.String(40), sa.ForeignKey("screenings.id"), nullable=False, index=True),
    sa.Column("new_screening_id", sa.String(40), sa.ForeignKey("screenings.id"), nullable=False, unique=True),
    sa.Column("transaction_id", sa.String(40), sa.ForeignKey("transactions.id"), nullable=False, index=True),
    sa.Column("template_id", sa.String(64), nullable=False),
    sa.Column("template_version", sa.String(40), nullable=False),
    sa.Column("filename", sa.String(255)),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("content", sa.LargeBinary, nullable=False),
    sa.Column("answers", sa.JSON, nullable=False),
    sa.Column("record", sa.JSON, nullable=False),
    sa.Column("uploaded_by", sa.String(200)),
    sa.Column("uploaded_at", UTCDateTime(), nullable=False),
    # Whom the answers are about (hrdd.workspace.util.end_user_key): later screenings of the deal for that
    # end-user carry them (hrdd.checklists.on_record).
    sa.Column("end_user_key", sa.String(600)),
    sa.Index("ix_checklist_uploads_end_user", "transaction_id", "end_user_key"),
)


def upload_row(upload_id: str, *, screening: dict, new_screening: dict, checked, data: bytes,
               filename: str | None, uploaded_by: str | None) -> dict:
    """The row recording an accepted upload (the workbook bytes and what was read from them)."""
    return dict(
        id=upload_id, screening_id=screening["id"], new_screening_id=new_screening["id"],
        transaction_id=new_screening["transaction_id"], template_id=checked.template_id,
        template_version=checked.template_version, filename=(filename or "")[:255] or None,
        sha256=hashlib.sha256(data).hexdigest(), size=len(data), content=data, answers=checked.answers,
        record=checked.record, uploaded_by=(uploaded_by or "")[:200] or None, uploaded_at=datetime.now(UTC),
        end_user_key=upload_end_user_key(new_screening["transaction"]),
    )


def upload_end_user_key(transaction: dict) -> str:
    """The key of the end-user a checklist's answers are about (the screened transaction's)."""
    end_user = transaction.get("end_user") or {}
    return end_user_key(str(end_user.get("name") or ""), end_user.get("country"))[:600]


def uploads_of(store, screening_id: str) -> list[dict]:
    """Uploads made against a screening (without the workbook bytes), oldest first."""
    cols = [c for c in checklist_uploads.c if c.name != "content"]
    with store.engine.connect() as conn:
        rows = conn.execute(sa.select(*cols).where(checklist_uploads.c.screening_id == screening_id)
                            .order_by(checklist_uploads.c.uploaded_at)).mappings().all()
    return [dict(r) for r in rows]


def upload_of_workbook(store, screening_id: str, data: bytes) -> dict | None:
    """The upload made against a screening with exactly these workbook bytes, if any (without the bytes)."""
    cols = [c for c in checklist_uploads.c if c.name != "content"]
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(*cols).where(checklist_uploads.c.screening_id == screening_id,
                                                  checklist_uploads.c.sha256 == hashlib.sha256(data).hexdigest())
                           .order_by(checklist_uploads.c.uploaded_at).limit(1)).mappings().first()
    return dict(row) if row else None


def upload_content(store, upload_id: str) -> bytes | None:
    """The stored workbook bytes of an upload."""
    with store.engine.connect() as conn:
        return conn.execute(sa.select(checklist_uploads.c.content)
                            .where(checklist_uploads.c.id == upload_id)).scalar()


def count_uploads(store) -> int:
    """How many checklist uploads are stored."""
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(checklist_uploads)).scalar_one()
