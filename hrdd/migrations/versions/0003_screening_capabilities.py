"""Screenings record their request's distinct capability ids (screenings.capabilities), filled in for older rows.

The dashboard and the transparency report counted capabilities by reading and parsing the request of every
screening in the period (several KB to hundreds of KB each); with the ids in a small column of their own
they count them in SQL. Existing rows are filled in a batch at a time, so memory holds one batch of
requests, not all of them.

On SQLite the created_at index also carries decision, end-user country and capabilities, so the dashboard's
counts read the index alone: a SQLite row is one record with the request and result before capabilities, and
reading capabilities from the row walks all of the row's overflow pages (200 of the 330 ms a 20,000-screening
dashboard took without it). It replaces the created_at index, so a screening still writes one index entry
there. PostgreSQL keeps large values out of line and its created_at index is left as it is (a B-tree entry
must stay under 2.7 KB, which a long capability list could pass).
"""

import sqlalchemy as sa
from alembic import op

from hrdd.store import request_capabilities

revision = "0003_screening_capabilities"
down_revision = "0002_screening_indexes"
branch_labels = None
depends_on = None

FIGURES_INDEX = "ix_screenings_created_at_figures"
BATCH = 200  # requests read per statement: a few MB typically, under 100 MB for the largest deals

_screenings = sa.table("screenings", sa.column("id", sa.String), sa.column("request", sa.JSON),
                       sa.column("capabilities", sa.Text))


def upgrade():
    """Add screenings.capabilities, fill it in from each stored request, and (SQLite) widen the created_at index."""
    with op.batch_alter_table("screenings") as batch:
        # Adding a column never copies the table, on SQLite either.
        batch.add_column(sa.Column("capabilities", sa.Text))
    conn = op.get_bind()
    read = (sa.select(_screenings.c.id, _screenings.c.request).where(_screenings.c.id > sa.bindparam("after"))
            .order_by(_screenings.c.id).limit(BATCH))
    write = (sa.update(_screenings).where(_screenings.c.id == sa.bindparam("sid"))
             .values(capabilities=sa.bindparam("caps")))
    after = ""
    while True:
        rows = [{"sid": sid, "caps": request_capabilities(request)}
                for sid, request in conn.execute(read, {"after": after})]
        if not rows:
            break
        conn.execute(write, rows)
        after = rows[-1]["sid"]
    if conn.dialect.name == "sqlite":
        # Built once the column is filled in, not updated row by row.
        op.drop_index("ix_screenings_created_at", "screenings")
        op.create_index(FIGURES_INDEX, "screenings", ["created_at", "decision", "end_user_country", "capabilities"])


def downgrade():
    """Drop screenings.capabilities and (SQLite) restore the plain created_at index."""
    if op.get_bind().dialect.name == "sqlite":
        op.drop_index(FIGURES_INDEX, "screenings")
        op.create_index("ix_screenings_created_at", "screenings", ["created_at"])
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35 or later): a batch copy of screenings would fail on SQLite
    # while rows of other tables refer to it.
    op.drop_column("screenings", "capabilities")
