"""Adapters: webhook deliveries (dedup and event record), the write-back outbox, rider executions."""

import sqlalchemy as sa
from alembic import op

revision = "0601_adapters"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "adapter_deliveries",
        sa.Column("vendor", sa.String(40), primary_key=True),
        sa.Column("delivery_id", sa.String(255), primary_key=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(128), nullable=False),
        sa.Column("stage", sa.String(20)),
        sa.Column("screening_id", sa.String(40)),
        sa.Column("transaction_id", sa.String(40)),
        sa.Column("reason", sa.Text),
        sa.Column("event", sa.JSON, nullable=False),
        sa.Column("outcome", sa.JSON, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_adapter_deliveries_reference", "adapter_deliveries", ["system", "object_type", "object_id"])
    op.create_index("ix_adapter_deliveries_due", "adapter_deliveries", ["status", "next_attempt_at"])
    op.create_table(
        "outbox",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(128), nullable=False),
        sa.Column("transaction_id", sa.String(40)),
        sa.Column("screening_id", sa.String(40)),
        sa.Column("gate", sa.String(30)),
        sa.Column("reason", sa.Text),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("last_status", sa.Integer),
        sa.Column("sent", sa.JSON),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_outbox_due", "outbox", ["status", "next_attempt_at"])
    op.create_table(
        "rider_executions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("transaction_id", sa.String(40), sa.ForeignKey("transactions.id"), nullable=False),
        sa.Column("screening_id", sa.String(40)),
        sa.Column("executed_by", sa.String(200), nullable=False),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("document_ref", sa.String(500)),
        sa.Column("recorded_by", sa.String(200), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_rider_executions_transaction_id", "rider_executions", ["transaction_id"])


def downgrade():
    op.drop_table("rider_executions")
    op.drop_table("outbox")
    op.drop_table("adapter_deliveries")
