"""SQLAlchemy Core tables of the core store; plugins add theirs to the same metadata."""

from __future__ import annotations

import sqlalchemy as sa

from hrdd.sqltypes import UTCDateTime

metadata = sa.MetaData()

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("prefix", sa.String(16), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("revoked_at", UTCDateTime()),
)

transactions = sa.Table(
    "transactions", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("system", sa.String(64), nullable=False),
    sa.Column("object_type", sa.String(64), nullable=False),
    sa.Column("object_id", sa.String(128), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("system", "object_type", "object_id", name="uq_transactions_reference"),
)

screenings = sa.Table(
    "screenings", metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("transaction_id", sa.String(40), sa.ForeignKey("transactions.id"), nullable=False, index=True),
    # On SQLite the created_at index also carries decision, end_user_country and capabilities (migration 0003).
    sa.Column("created_at", UTCDateTime(), nullable=False, index=True),
    sa.Column("stage", sa.String(20), nullable=False),
    sa.Column("decision", sa.String(30), nullable=False),
    sa.Column("gate", sa.String(30), nullable=False),
    sa.Column("risk_score", sa.Integer, nullable=False),
    sa.Column("end_user_country", sa.String(2), nullable=False),
    sa.Column("request", sa.JSON, nullable=False),
    sa.Column("result", sa.JSON, nullable=False),
    sa.Column("idempotency_key", sa.String(255), unique=True),
    sa.Column("request_hash", sa.String(64), nullable=False),
    sa.Column("source", sa.String(40), nullable=False),
    # The request's distinct capability ids (hrdd.store.request_capabilities), so the dashboard and the
    # transparency report count them in SQL without reading requests; NULL on rows an older hrdd wrote.
    sa.Column("capabilities", sa.Text),
    # A deal's governing screening: the newest at each stage, one seek each (hrdd.store.latest_screening).
    sa.Index("ix_screenings_transaction_stage_created", "transaction_id", "stage", "created_at"),
)
