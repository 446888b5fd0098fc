"""Tables of the reviewer workspace (users, cases, decisions, grievances, false-positive marks)."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Integer, String, Table, Text

from hrdd.tables import metadata

users = Table(
    "users", metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(20), nullable=False),
    Column("password_hash", String(300), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("disabled", Boolean, nullable=False, default=False),
)

workspace_settings = Table(
    "workspace_settings", metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

cases = Table(
    "cases", metadata,
    Column("id", String(40), primary_key=True),
    Column("transaction_id", String(64), nullable=False, index=True),
    Column("screening_id", String(64), nullable=False),
    Column("opened_at", String(32), nullable=False, index=True),
    Column("status", String(30), nullable=False, index=True),  # open | information_requested | awaiting_second_approval | decided
    Column("reason", Text, nullable=False),
    Column("engine_decision", String(30), nullable=False),
    Column("stage", String(20), nullable=False),
    Column("end_user_name", String(300), nullable=False),
    Column("country", String(2), nullable=False, index=True),
    Column("capabilities", String(1000), nullable=False),  # "|cap|cap|" so a LIKE finds one id
    Column("risk_score", Integer, nullable=False),
)

# Immutable: rows are only ever inserted; a later row for the same transaction supersedes earlier ones.
case_decisions = Table(
    "case_decisions", metadata,
    Column("id", String(40), primary_key=True),
    Column("case_id", String(40), ForeignKey("cases.id"), nullable=False, index=True),
    Column("transaction_id", String(64), nullable=False, index=True),
    Column("screening_id", String(64), nullable=False),
    Column("outcome", String(40), nullable=False),
    Column("gate", String(30), nullable=False),
    Column("rationale", Text, nullable=False),
    Column("conditions", Text, nullable=False, default=""),
    Column("safeguards", Text, nullable=False, default="[]"),
    Column("material_facts", Text, nullable=False),
    Column("flag_ids", Text, nullable=False),
    # The engine's decision and each flag's worst severity when decided (null: decided before 0702 on a
    # screening since deleted); a rise in either makes the decision lapse.
    Column("engine_decision", String(30), nullable=True),
    Column("flag_severities", Text, nullable=True),
    Column("decided_by", String(200), nullable=False),
    Column("decided_at", String(32), nullable=False),
    Column("supersedes", String(40), nullable=True),
    # Two-person approval (0709): why the approval needs a second approver (a JSON list of reasons, null
    # when one suffices), the licence or authorisation reference recorded with it, and on the second
    # approver's row the id of the first approval it confirms.
    Column("licence_reference", Text, nullable=True),
    Column("dual_control", Text, nullable=True),
    Column("second_approval_of", String(40), nullable=True),
)

case_notes = Table(
    "case_notes", metadata,
    Column("id", Integer, primary_key=True),
    Column("case_id", String(40), ForeignKey("cases.id"), nullable=False, index=True),
    Column("at", String(32), nullable=False),
    Column("author", String(200), nullable=False),
    Column("text", Text, nullable=False),
)

# The workspace's record of reviewers' false-positive marks; the parties plugin may own the allowlist
# itself (see hrdd.workspace.falsepositives), in which case these rows are the reviewer-side history.
false_positive_marks = Table(
    "false_positive_marks", metadata,
    Column("id", Integer, primary_key=True),
    Column("party_name", String(300), nullable=False),
    Column("party_country", String(2), nullable=True),
    Column("list_name", String(100), nullable=False),
    Column("entry_id", String(200), nullable=False),
    Column("reason", Text, nullable=False),
    Column("author", String(200), nullable=False),
    Column("created_at", String(32), nullable=False),
    Column("expires_at", String(32), nullable=True),
    Column("case_id", String(40), nullable=True),
)

grievances = Table(
    "grievances", metadata,
    Column("id", String(40), primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("received_at", String(32), nullable=False, index=True),
    Column("updated_at", String(32), nullable=False),
    Column("status", String(30), nullable=False, index=True),
    Column("credible", Boolean, nullable=True),
    Column("reporter_name", String(200), nullable=True),
    Column("reporter_contact", String(300), nullable=True),
    Column("subject_name", String(300), nullable=False),  # who: the organisation or unit reported
    Column("country", String(2), nullable=True),
    Column("location", String(300), nullable=True),
    Column("product", String(300), nullable=True),
    Column("description", Text, nullable=False),
    Column("occurred_on", String(100), nullable=True),
    Column("public_note", Text, nullable=True),  # what the reporter sees when following the token
    Column("end_user_key", String(320), nullable=True, index=True),  # normalised "name|CC" once linked
    Column("country_text", String(100), nullable=True),  # the country as the reporter wrote it
    Column("end_user_name", String(300), nullable=True),  # the end-user's name as the reviewer typed it
    Column("closed_at", String(32), nullable=True),  # when last resolved or closed; cleared on reopening
)

grievance_links = Table(
    "grievance_links", metadata,
    Column("grievance_id", String(40), ForeignKey("grievances.id"), primary_key=True),
    Column("transaction_id", String(64), primary_key=True),
    Column("linked_at", String(32), nullable=False),
    Column("linked_by", String(200), nullable=False),
)

grievance_actions = Table(
    "grievance_actions", metadata,
    Column("id", Integer, primary_key=True),
    Column("grievance_id", String(40), ForeignKey("grievances.id"), nullable=False, index=True),
    Column("at", String(32), nullable=False),
    Column("actor", String(200), nullable=False),
    Column("action", String(40), nullable=False),
    Column("outcome", Text, nullable=False),
)

# One row per signed-in browser: the cookie carries a random id, the table only its SHA-256, so a session
# can be ended here (sign-out, password change, disabling) and a copied cookie stops working at once.
workspace_sessions = Table(
    "workspace_sessions", metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("user_name", String(100), nullable=False, index=True),
    Column("created_at", String(32), nullable=False),
    Column("seen_at", String(32), nullable=False, index=True),  # last use, written at most every few minutes
)
