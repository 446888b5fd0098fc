"""Workspace sign-ins are kept server-side (workspace_sessions), so signing out really ends them.

The signed cookie alone could not be taken back: after signing out, or after the password was changed, a
copy of the cookie still worked until it expired. Sessions signed in before this migration carry no
session id and end; their people sign in again.
"""

import sqlalchemy as sa
from alembic import op

revision = "0711_workspace_sessions"
down_revision = "0710_decision_use_and_scale"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "workspace_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("user_name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("seen_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("id_hash"),
    )
    op.create_index(op.f("ix_workspace_sessions_user_name"), "workspace_sessions", ["user_name"], unique=False)
    op.create_index(op.f("ix_workspace_sessions_seen_at"), "workspace_sessions", ["seen_at"], unique=False)


def downgrade():
    op.drop_index(op.f("ix_workspace_sessions_seen_at"), table_name="workspace_sessions")
    op.drop_index(op.f("ix_workspace_sessions_user_name"), table_name="workspace_sessions")
    op.drop_table("workspace_sessions")
