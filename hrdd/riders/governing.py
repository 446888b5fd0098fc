"""Which screenings may have a rider: only the one governing its deal, and none while the deal is blocked."""

from __future__ import annotations

from hrdd.errors import ApiError


def rider_link(screening_id: str) -> str:
    """The API address of a screening's rider."""
    return f"/v1/screenings/{screening_id}/rider.docx"


def refuse_unless_governing(screening: dict, services) -> None:
    """ApiError 409 unless the stored screening governs its deal and the deal's gate is not ``block``.

    A rider states the findings it was built from and is signed as the deal's terms: one built from a
    superseded screening would bind the Buyer to out-of-date findings and clauses (a "draft" mark is easily
    lost when the file is edited or printed), so the caller is sent to the governing screening's rider.
    """
    if not screening.get("transaction_id") or services is None:
        # A screening read from a file (hrdd rider --json) belongs to no stored deal: its own gate decides.
        if screening.get("gate") == "block":
            raise ApiError(409, "deal_blocked",
                           f"No rider is issued for a blocked deal: screening {screening.get('id')} states gate "
                           "block. A rider becomes available when a reviewer's decision or a new screening "
                           "lifts the block", {"gate": ["block"]})
        return
    current = services.as_current(screening)
    sid, governing = screening.get("id"), current.get("superseded_by")
    if current["gate"] == "block":
        reasons = list(current.get("hold_reasons") or ())
        of = f" (governed by screening {governing})" if governing else ""
        raise ApiError(409, "deal_blocked",
                       f"No rider is issued for a blocked deal: the deal of screening {sid}{of} is blocked: "
                       f"{'; '.join(reasons) or 'its gate is block'}. A rider becomes available when a "
                       "reviewer's decision or a new screening lifts the block",
                       {"gate": ["block"], "hold_reasons": reasons})
    if governing:
        link = rider_link(governing)
        because = current.get("superseded_because") or f"screening {governing} is the deal's newest"
        raise ApiError(409, "screening_superseded",
                       f"Screening {sid} no longer governs its deal ({because}); a rider is built only from the "
                       f"governing screening {governing}: GET {link}",
                       {"superseded_by": [governing], "rider": [link]})
