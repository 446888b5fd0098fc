"""Grievances keep the country as the reporter wrote it and the end-user's name as the reviewer typed it.

A public report naming its country as 'مصر', 'Crimea' or 'I don't know' was refused; it is now accepted
with that text kept (``country_text``) and the code set where it resolves, or later by a reviewer. The
end-user link kept only its matching key (``ministryinterior|EG``), which the pages showed; the name as
typed is kept beside it (``end_user_name``). Existing rows keep their key; their text columns stay empty.
"""

import sqlalchemy as sa
from alembic import op

revision = "0706_grievance_texts"
down_revision = "0705_upload_end_users"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("grievances") as batch:
        batch.add_column(sa.Column("country_text", sa.String(100), nullable=True))
        batch.add_column(sa.Column("end_user_name", sa.String(300), nullable=True))


def downgrade():
    # Not in batch mode: on SQLite that copies the table and drops the old one, which grievance_links'
    # foreign key refuses once a grievance is linked. DROP COLUMN is native since SQLite 3.35.
    op.drop_column("grievances", "end_user_name")
    op.drop_column("grievances", "country_text")
