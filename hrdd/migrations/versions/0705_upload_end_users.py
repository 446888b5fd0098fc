"""Checklist uploads record whom their answers are about (end_user_key), so later screenings can find them.

The answers on record were found by reading every upload's screening request to learn its end-user, and only
the newest 50 uploads were read: slow for large deals, and an older upload's Yes could be missed. The key is
filled in from each upload's screening. Also adds adapter_record_versions.source where a database took an
earlier form of 0704_record_versions without it.
"""

import sqlalchemy as sa
from alembic import op

from hrdd.workspace.util import end_user_key

revision = "0705_upload_end_users"
# A merge: it changes checklist_uploads (the checklists branch) beside the workspace branch's 0704.
down_revision = ("0704_record_versions", "0105_checklist_uploads")
branch_labels = None
depends_on = None

_uploads = sa.table("checklist_uploads", sa.column("id"), sa.column("new_screening_id"), sa.column("end_user_key"))
_screenings = sa.table("screenings", sa.column("id"), sa.column("request", sa.JSON))


def upgrade():
    conn = op.get_bind()
    with op.batch_alter_table("checklist_uploads") as batch:
        batch.add_column(sa.Column("end_user_key", sa.String(600)))
    op.create_index("ix_checklist_uploads_end_user", "checklist_uploads", ["transaction_id", "end_user_key"])
    rows = conn.execute(sa.select(_uploads.c.id, _screenings.c.request)
                        .join(_screenings, _screenings.c.id == _uploads.c.new_screening_id)).all()
    for upload_id, request in rows:
        end_user = (request or {}).get("end_user") or {}
        key = end_user_key(str(end_user.get("name") or ""), end_user.get("country"))[:600]
        conn.execute(sa.update(_uploads).where(_uploads.c.id == upload_id).values(end_user_key=key))
    columns = {c["name"] for c in sa.inspect(conn).get_columns("adapter_record_versions")}
    if "source" not in columns:
        with op.batch_alter_table("adapter_record_versions") as batch:
            batch.add_column(sa.Column("source", sa.String(80), nullable=False, server_default="event"))


def downgrade():
    op.drop_index("ix_checklist_uploads_end_user", "checklist_uploads")
    with op.batch_alter_table("checklist_uploads") as batch:
        batch.drop_column("end_user_key")
