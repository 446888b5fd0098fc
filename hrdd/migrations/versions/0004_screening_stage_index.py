"""Index screenings by (transaction_id, stage, created_at): the deal's governing screening in a few seeks.

The screening that governs a deal is the newest at the most advanced stage it reached (a late quote after
the order does not take the gate back). Ordering a deal's screenings by stage rank read every screening
the deal had, on every new screening's answer; with this index each stage's newest is one index seek.
"""

from alembic import op

revision = "0004_screening_stage_index"
down_revision = "0003_screening_capabilities"
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_screenings_transaction_stage_created", "screenings",
                    ["transaction_id", "stage", "created_at"], if_not_exists=True)


def downgrade():
    op.drop_index("ix_screenings_transaction_stage_created", table_name="screenings", if_exists=True)
