"""Recompute grievances' end-user keys with the restricted-party normaliser's identifying words.

Keys were the lower-cased name with runs of whitespace collapsed, so a trailing full stop, a leading "The",
a hyphen or an acronym in brackets made RF-7.1 miss an open credible grievance about the same end-user.
The stored key keeps everything the new key reads (case and whitespace aside), so it is recomputed from it.
"""

import sqlalchemy as sa
from alembic import op

from hrdd.workspace.util import end_user_key

revision = "0703_end_user_keys"
down_revision = "0702_decision_terms"
branch_labels = None
depends_on = None

_grievances = sa.table("grievances", sa.column("id"), sa.column("end_user_key"))


def upgrade():
    conn = op.get_bind()
    for grievance_id, key in conn.execute(sa.select(_grievances.c.id, _grievances.c.end_user_key)
                                          .where(_grievances.c.end_user_key.is_not(None))).all():
        name, _, country = key.rpartition("|")
        new = end_user_key(name, country)
        if new != key:
            conn.execute(sa.update(_grievances).where(_grievances.c.id == grievance_id).values(end_user_key=new))


def downgrade():
    pass  # the older keys cannot be rebuilt from the new ones; the older code reads these keys as unmatched
