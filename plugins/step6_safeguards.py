"""Step 6: the buyer's acceptance of human rights, audit and cut-off terms (RF-6.1)."""

from __future__ import annotations

from hrdd.flags import make_flag
from hrdd.hookspecs import hookimpl


@hookimpl
def hrdd_answer_ids():
    """The checklist answer this check reads."""
    return ("accepts_safeguards",)


@hookimpl
def hrdd_check(transaction, context):
    """RF-6.1 when the buyer refuses the contractual safeguards."""
    if transaction.answer("accepts_safeguards") == "no":
        return [make_flag(context, "RF-6.1",
                          f"Checklist answer accepts_safeguards = no: {transaction.end_user.name} or its "
                          "intermediaries refuse human rights, audit or cut-off terms.",
                          answer="accepts_safeguards")]
    return []
