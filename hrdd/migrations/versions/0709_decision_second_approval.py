"""Reviewer decisions record a licence reference and two-person approval (dual control).

Approving a screening the policy puts under dual control (``reviewer_decisions.dual_control``: by default
an embargoed destination, a confirmed restricted-party match or the engine's do_not_proceed) takes two
people: the first approval records why two are needed (``dual_control``, a JSON list of reasons) and the
licence or authorisation reference (``licence_reference``); a different reviewer's later row names it in
``second_approval_of``. Rows stay immutable. Existing decisions needed one person and keep standing.
"""

import sqlalchemy as sa
from alembic import op

revision = "0709_decision_second_approval"
down_revision = "0708_grievance_closed_at"
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMNs (nullable, no default): no table copy on SQLite, no rewrite on PostgreSQL.
    op.add_column("case_decisions", sa.Column("licence_reference", sa.Text(), nullable=True))
    op.add_column("case_decisions", sa.Column("dual_control", sa.Text(), nullable=True))
    op.add_column("case_decisions", sa.Column("second_approval_of", sa.String(40), nullable=True))


def downgrade():
    # SQLite 3.35+ and PostgreSQL both drop a plain column in place (no batch: the table's foreign key stays).
    op.drop_column("case_decisions", "second_approval_of")
    op.drop_column("case_decisions", "dual_control")
    op.drop_column("case_decisions", "licence_reference")
