"""Record the intended use and scale a reviewer decided on, so a later change of either lapses the decision.

A reviewer's approval stood while the CRM changed the intended use ("Access control at ministry buildings"
to "City-wide face search") or multiplied the quantity. The decision's material facts now keep the intended
use, each SKU's quantity and the deal's value per currency (``Transaction.material_facts``), compared under
the policy's ``material_changes`` rules. Existing decisions are filled in from the screening each one was
made on; one whose screening is gone keeps lapsing on parties, end-user, items and countries only.
Downgrade removes the keys again: the code before this revision compares the facts whole.
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0710_decision_use_and_scale"
down_revision = "0709_decision_second_approval"
branch_labels = None
depends_on = None

KEYS = ("intended_use", "quantities", "value")
_decisions = sa.table("case_decisions", sa.column("id"), sa.column("screening_id"), sa.column("material_facts"))
_screenings = sa.table("screenings", sa.column("id"), sa.column("result", sa.JSON))


def _use_and_scale(transaction: dict) -> dict:
    """As Transaction.material_facts() makes these keys (written out: a migration keeps its own copy)."""
    quantities: dict = {}
    values: dict = {}
    for item in transaction.get("items") or ():
        quantity = item.get("quantity", 1)
        quantities[item["sku"]] = quantities.get(item["sku"], 0) + quantity
        if item.get("unit_price") is not None:
            currency = item.get("currency") or ""
            values[currency] = values.get(currency, 0) + quantity * item["unit_price"]
    return {"intended_use": (transaction.get("intended_use") or "").strip(),
            "quantities": sorted([sku, n] for sku, n in quantities.items()),
            "value": sorted([currency, v] for currency, v in values.items())}


def _rewrite(conn, change) -> None:
    for decision_id, screening_id, facts_text in conn.execute(
            sa.select(_decisions.c.id, _decisions.c.screening_id, _decisions.c.material_facts)).all():
        facts = json.loads(facts_text or "{}")
        new = change(facts, screening_id)
        if new is not None and new != facts:
            conn.execute(sa.update(_decisions).where(_decisions.c.id == decision_id).values(
                material_facts=json.dumps(new, sort_keys=True, separators=(",", ":"))))


def upgrade():
    conn = op.get_bind()

    def fill(facts: dict, screening_id: str):
        if not facts or all(key in facts for key in KEYS):
            return None
        result = conn.execute(sa.select(_screenings.c.result).where(_screenings.c.id == screening_id)).scalar()
        if isinstance(result, str):
            result = json.loads(result)
        transaction = (result or {}).get("transaction")
        if not transaction:
            return None  # the screening is gone: nothing to say what was decided on
        return {**_use_and_scale(transaction), **facts}

    _rewrite(conn, fill)


def downgrade():
    _rewrite(op.get_bind(), lambda facts, _screening_id: {k: v for k, v in facts.items() if k not in KEYS})
