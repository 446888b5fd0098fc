"""Record what a reviewer decided on: the engine's decision, each flag's severity, the deployment countries.

A reviewer's decision lapses when the deal gets worse. Before this revision only new flag ids and changed
material facts counted, so a restricted-party match rising from possible (high) to confirmed (critical),
the engine's decision rising to do_not_proceed, or a party's country added as a deployment country left an
approval standing. Existing decisions are filled in from the screening each one was made on.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0702_decision_terms"
down_revision = "0701_workspace"
branch_labels = None
depends_on = None

_SEVERITY = {"low": 0, "medium": 1, "high": 2, "critical": 3}


def _worst_severities(result: dict) -> dict:
    worst: dict = {}
    for flag in result.get("red_flags") or ():
        if _SEVERITY.get(flag.get("severity"), -1) > _SEVERITY.get(worst.get(flag.get("id")), -1):
            worst[flag["id"]] = flag["severity"]
    return worst


def upgrade():
    with op.batch_alter_table("case_decisions") as batch:
        batch.add_column(sa.Column("engine_decision", sa.String(30), nullable=True))
        batch.add_column(sa.Column("flag_severities", sa.Text(), nullable=True))
    conn = op.get_bind()
    decisions = sa.table("case_decisions", sa.column("id"), sa.column("screening_id"), sa.column("material_facts"),
                         sa.column("engine_decision"), sa.column("flag_severities"))
    screenings = sa.table("screenings", sa.column("id"), sa.column("result", sa.JSON))
    rows = conn.execute(sa.select(decisions.c.id, decisions.c.screening_id, decisions.c.material_facts)).all()
    for decision_id, screening_id, facts_text in rows:
        result = conn.execute(sa.select(screenings.c.result).where(screenings.c.id == screening_id)).scalar()
        if isinstance(result, str):
            result = json.loads(result)
        if not result:
            continue  # the screening is gone: the decision keeps lapsing on ids and facts only
        facts = json.loads(facts_text or "{}")
        if facts:
            facts["deployment"] = sorted(set((result.get("transaction") or {}).get("deployment_countries") or ()))
        conn.execute(sa.update(decisions).where(decisions.c.id == decision_id).values(
            engine_decision=result.get("decision"),
            flag_severities=json.dumps(_worst_severities(result), sort_keys=True),
            material_facts=json.dumps(facts, sort_keys=True, separators=(",", ":"))))


def downgrade():
    with op.batch_alter_table("case_decisions") as batch:
        batch.drop_column("flag_severities")
        batch.drop_column("engine_decision")
