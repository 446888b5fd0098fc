"""Restricted-party lists (one version per load, with their entries) and false-positive decisions."""

import sqlalchemy as sa
from alembic import op

revision = "0101_parties"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "party_list_versions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("format", sa.String(20), nullable=False),
        sa.Column("source_file", sa.String(500), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("entry_count", sa.Integer, nullable=False),
        sa.Column("name_count", sa.Integer, nullable=False),
        sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("loaded_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_party_list_versions_name", "party_list_versions", ["name"])
    op.create_table(
        "party_list_entries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("party_list_versions.id"), nullable=False),
        sa.Column("entry_id", sa.String(200), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.UniqueConstraint("version_id", "entry_id", name="uq_party_list_entries_version_entry"),
    )
    op.create_table(
        "party_false_positives",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("party_key", sa.String(500), nullable=False),
        sa.Column("party_name", sa.Text, nullable=False),
        sa.Column("list_name", sa.String(100), nullable=False),
        sa.Column("entry_id", sa.String(200), nullable=False),
        sa.Column("entry_name", sa.Text, nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Column("list_version_id", sa.Integer, sa.ForeignKey("party_list_versions.id"), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("revoked_by", sa.String(200)),
        sa.Column("revoke_reason", sa.Text),
    )
    op.create_index("ix_party_false_positives_party_key", "party_false_positives", ["party_key"])


def downgrade():
    op.drop_table("party_false_positives")
    op.drop_table("party_list_entries")
    op.drop_table("party_list_versions")
