"""Reviewer workspace: users, cases and decisions, grievances, false-positive marks, audit log."""

import sqlalchemy as sa
from alembic import op

revision = "0701_workspace"
down_revision = "0001_core"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('audit_log',
    sa.Column('seq', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('at', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=100), nullable=False),
    sa.Column('subject', sa.String(length=200), nullable=False),
    sa.Column('details', sa.Text(), nullable=False),
    sa.Column('prev_hash', sa.String(length=64), nullable=False),
    sa.Column('hash', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq')
    )
    op.create_index(op.f('ix_audit_log_action'), 'audit_log', ['action'], unique=False)
    op.create_index(op.f('ix_audit_log_subject'), 'audit_log', ['subject'], unique=False)
    op.create_table('cases',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('transaction_id', sa.String(length=64), nullable=False),
    sa.Column('screening_id', sa.String(length=64), nullable=False),
    sa.Column('opened_at', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('engine_decision', sa.String(length=30), nullable=False),
    sa.Column('stage', sa.String(length=20), nullable=False),
    sa.Column('end_user_name', sa.String(length=300), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=False),
    sa.Column('capabilities', sa.String(length=1000), nullable=False),
    sa.Column('risk_score', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_cases_country'), 'cases', ['country'], unique=False)
    op.create_index(op.f('ix_cases_opened_at'), 'cases', ['opened_at'], unique=False)
    op.create_index(op.f('ix_cases_status'), 'cases', ['status'], unique=False)
    op.create_index(op.f('ix_cases_transaction_id'), 'cases', ['transaction_id'], unique=False)
    op.create_table('false_positive_marks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('party_name', sa.String(length=300), nullable=False),
    sa.Column('party_country', sa.String(length=2), nullable=True),
    sa.Column('list_name', sa.String(length=100), nullable=False),
    sa.Column('entry_id', sa.String(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.Column('expires_at', sa.String(length=32), nullable=True),
    sa.Column('case_id', sa.String(length=40), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('grievances',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.String(length=32), nullable=False),
    sa.Column('updated_at', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=30), nullable=False),
    sa.Column('credible', sa.Boolean(), nullable=True),
    sa.Column('reporter_name', sa.String(length=200), nullable=True),
    sa.Column('reporter_contact', sa.String(length=300), nullable=True),
    sa.Column('subject_name', sa.String(length=300), nullable=False),
    sa.Column('country', sa.String(length=2), nullable=True),
    sa.Column('location', sa.String(length=300), nullable=True),
    sa.Column('product', sa.String(length=300), nullable=True),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('occurred_on', sa.String(length=100), nullable=True),
    sa.Column('public_note', sa.Text(), nullable=True),
    sa.Column('end_user_key', sa.String(length=320), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('token_hash')
    )
    op.create_index(op.f('ix_grievances_end_user_key'), 'grievances', ['end_user_key'], unique=False)
    op.create_index(op.f('ix_grievances_received_at'), 'grievances', ['received_at'], unique=False)
    op.create_index(op.f('ix_grievances_status'), 'grievances', ['status'], unique=False)
    op.create_table('users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('password_hash', sa.String(length=300), nullable=False),
    sa.Column('created_at', sa.String(length=32), nullable=False),
    sa.Column('disabled', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('workspace_settings',
    sa.Column('key', sa.String(length=100), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('case_decisions',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('transaction_id', sa.String(length=64), nullable=False),
    sa.Column('screening_id', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=40), nullable=False),
    sa.Column('gate', sa.String(length=30), nullable=False),
    sa.Column('rationale', sa.Text(), nullable=False),
    sa.Column('conditions', sa.Text(), nullable=False),
    sa.Column('safeguards', sa.Text(), nullable=False),
    sa.Column('material_facts', sa.Text(), nullable=False),
    sa.Column('flag_ids', sa.Text(), nullable=False),
    sa.Column('decided_by', sa.String(length=200), nullable=False),
    sa.Column('decided_at', sa.String(length=32), nullable=False),
    sa.Column('supersedes', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_case_decisions_case_id'), 'case_decisions', ['case_id'], unique=False)
    op.create_index(op.f('ix_case_decisions_transaction_id'), 'case_decisions', ['transaction_id'], unique=False)
    op.create_table('case_notes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('case_id', sa.String(length=40), nullable=False),
    sa.Column('at', sa.String(length=32), nullable=False),
    sa.Column('author', sa.String(length=200), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['case_id'], ['cases.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_case_notes_case_id'), 'case_notes', ['case_id'], unique=False)
    op.create_table('grievance_actions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('grievance_id', sa.String(length=40), nullable=False),
    sa.Column('at', sa.String(length=32), nullable=False),
    sa.Column('actor', sa.String(length=200), nullable=False),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('outcome', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['grievance_id'], ['grievances.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_grievance_actions_grievance_id'), 'grievance_actions', ['grievance_id'], unique=False)
    op.create_table('grievance_links',
    sa.Column('grievance_id', sa.String(length=40), nullable=False),
    sa.Column('transaction_id', sa.String(length=64), nullable=False),
    sa.Column('linked_at', sa.String(length=32), nullable=False),
    sa.Column('linked_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['grievance_id'], ['grievances.id'], ),
    sa.PrimaryKeyConstraint('grievance_id', 'transaction_id')
    )
    # The audit chain's head starts at the genesis hash so the first writer can lock an existing row.
    op.execute(sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '" + "0" * 64 + "')"))


def downgrade():
    op.drop_table('grievance_links')
    op.drop_index(op.f('ix_grievance_actions_grievance_id'), table_name='grievance_actions')
    op.drop_table('grievance_actions')
    op.drop_index(op.f('ix_case_notes_case_id'), table_name='case_notes')
    op.drop_table('case_notes')
    op.drop_index(op.f('ix_case_decisions_transaction_id'), table_name='case_decisions')
    op.drop_index(op.f('ix_case_decisions_case_id'), table_name='case_decisions')
    op.drop_table('case_decisions')
    op.drop_table('workspace_settings')
    op.drop_table('users')
    op.drop_index(op.f('ix_grievances_status'), table_name='grievances')
    op.drop_index(op.f('ix_grievances_received_at'), table_name='grievances')
    op.drop_index(op.f('ix_grievances_end_user_key'), table_name='grievances')
    op.drop_table('grievances')
    op.drop_table('false_positive_marks')
    op.drop_index(op.f('ix_cases_transaction_id'), table_name='cases')
    op.drop_index(op.f('ix_cases_status'), table_name='cases')
    op.drop_index(op.f('ix_cases_opened_at'), table_name='cases')
    op.drop_index(op.f('ix_cases_country'), table_name='cases')
    op.drop_table('cases')
    op.drop_index(op.f('ix_audit_log_subject'), table_name='audit_log')
    op.drop_index(op.f('ix_audit_log_action'), table_name='audit_log')
    op.drop_table('audit_log')
    op.drop_table('audit_head')
