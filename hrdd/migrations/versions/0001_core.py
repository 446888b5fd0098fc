"""Core tables: API keys, transactions, screenings."""

import sqlalchemy as sa
from alembic import op

revision = "0001_core"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "transactions",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("system", sa.String(64), nullable=False),
        sa.Column("object_type", sa.String(64), nullable=False),
        sa.Column("object_id", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("system", "object_type", "object_id", name="uq_transactions_reference"),
    )
    op.create_table(
        "screenings",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("transaction_id", sa.String(40), sa.ForeignKey("transactions.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
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
    )
    op.create_index("ix_screenings_transaction_id", "screenings", ["transaction_id"])
    op.create_index("ix_screenings_created_at", "screenings", ["created_at"])
    op.create_index("ix_screenings_decision", "screenings", ["decision"])
    op.create_index("ix_screenings_end_user_country", "screenings", ["end_user_country"])


def downgrade():
    op.drop_table("screenings")
    op.drop_table("transactions")
    op.drop_table("api_keys")
