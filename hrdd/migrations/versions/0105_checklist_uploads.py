"""Checklist uploads: accepted workbooks kept as evidence, linked to the screening they produced."""

import sqlalchemy as sa
from alembic import op

revision = "0105_checklist_uploads"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "checklist_uploads",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("screening_id", sa.String(40), sa.ForeignKey("screenings.id"), nullable=False),
        sa.Column("new_screening_id", sa.String(40), sa.ForeignKey("screenings.id"), nullable=False, unique=True),
        sa.Column("transaction_id", sa.String(40), sa.ForeignKey("transactions.id"), nullable=False),
        sa.Column("template_id", sa.String(64), nullable=False),
        sa.Column("template_version", sa.String(40), nullable=False),
        sa.Column("filename", sa.String(255)),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.Column("answers", sa.JSON, nullable=False),
        sa.Column("record", sa.JSON, nullable=False),
        sa.Column("uploaded_by", sa.String(200)),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_checklist_uploads_screening_id", "checklist_uploads", ["screening_id"])
    op.create_index("ix_checklist_uploads_transaction_id", "checklist_uploads", ["transaction_id"])


def downgrade():
    op.drop_table("checklist_uploads")
