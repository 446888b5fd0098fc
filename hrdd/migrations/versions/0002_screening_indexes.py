"""Drop the screenings indexes on decision and end-user country: no query filters by them.

Reports read screenings by date (created_at, still indexed) and count decisions and countries in Python;
the two indexes were written on every screening (about 14% of the bytes a screening writes on SQLite)
and never read.
"""

from alembic import op

revision = "0002_screening_indexes"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade():
    # if_exists: an administrator may have dropped them by hand already.
    op.drop_index("ix_screenings_decision", table_name="screenings", if_exists=True)
    op.drop_index("ix_screenings_end_user_country", table_name="screenings", if_exists=True)


def downgrade():
    op.create_index("ix_screenings_decision", "screenings", ["decision"], if_not_exists=True)
    op.create_index("ix_screenings_end_user_country", "screenings", ["end_user_country"], if_not_exists=True)
