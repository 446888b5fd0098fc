"""The newest vendor modification time processed per CRM or ERP record (adapter_record_versions).

Deliveries were screened in the order they arrived, so a Salesforce notification retried hours later, or
a Dynamics asynchronous step finishing after a later one, governed the deal with the record's older facts.
"""

import sqlalchemy as sa
from alembic import op

revision = "0704_record_versions"
down_revision = "0703_end_user_keys"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "adapter_record_versions",
        sa.Column("vendor", sa.String(40), primary_key=True),
        sa.Column("system", sa.String(64), primary_key=True),
        sa.Column("object_type", sa.String(64), primary_key=True),
        sa.Column("object_id", sa.String(128), primary_key=True),
        sa.Column("modified_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(80), nullable=False),
        sa.Column("delivery_id", sa.String(255), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade():
    # The older code does not know "stale": recorded as invalid, a vendor's retry is still answered from the
    # record rather than screened on the record's older state.
    op.execute("UPDATE adapter_deliveries SET status = 'invalid' WHERE status = 'stale'")
    op.drop_table("adapter_record_versions")
