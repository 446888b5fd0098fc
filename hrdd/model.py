"""Canonical dataclasses shared by the engine, the store, the plugins and the documents."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STAGES = ("opportunity", "quote", "order", "renewal", "post_sale")
# Order, renewal and post-sale are one stage: the deal is contracted, so the order gate (the contract
# rider, changes since the quote, an undecided escalation) holds each of them alike.
ORDER_STAGES = ("order", "renewal", "post_sale")
# How far a deal has got: a screening at a lower rank than one already stored came late (a retried or
# reordered call) and does not take the deal back. Stages from the order on are one rank (newest governs).
STAGE_RANK = {"opportunity": 0, "quote": 1, **dict.fromkeys(ORDER_STAGES, 2)}
_STAGE_NOUNS = {"post_sale": "post-sale order"}
END_USER_TYPES = ("government", "government_linked", "private", "ngo", "individual", "unknown")
SECURITY_SECTORS = (
    "law_enforcement", "intelligence", "military", "border_control", "prisons", "internal_security",
)
SECTORS = SECURITY_SECTORS + (
    "civil_administration", "telecom_operator", "critical_infrastructure", "commercial", "academic", "other",
)
PARTY_ROLES = ("distributor", "reseller", "integrator", "consignee", "financier", "agent", "other")
ANSWER_VALUES = ("yes", "no", "unknown", "n/a")
SEVERITIES = ("low", "medium", "high", "critical")
DECISIONS = ("proceed", "proceed_with_safeguards", "escalate", "do_not_proceed")
GATES = ("release", "release_with_conditions", "hold", "block")
DECISION_GATE = dict(zip(DECISIONS, GATES, strict=True))
TIERS = ("low", "medium", "high", "critical")
GOVERNMENT_TYPES = ("government", "government_linked")


_SEVERITY_RANKS = {name: rank for rank, name in enumerate(SEVERITIES)}
_TIER_RANKS = {name: rank for rank, name in enumerate(TIERS)}


def is_order_stage(stage: str | None) -> bool:
    """True for order, renewal and post-sale: the stages the order gate holds (ORDER_STAGES)."""
    return stage in ORDER_STAGES


def stage_noun(stage: str | None) -> str:
    """A stage as a sentence names the deal at it: 'order', 'renewal', 'post-sale order'."""
    return _STAGE_NOUNS.get(stage or "", (stage or "deal").replace("_", " "))


def severity_rank(severity: str) -> int:
    """Order severities so that max() finds the worst one; ValueError for an unknown one."""
    try:
        return _SEVERITY_RANKS[severity]
    except (KeyError, TypeError):
        raise ValueError(f"{severity!r} is not a severity ({', '.join(SEVERITIES)})") from None


def tier_rank(tier: str) -> int:
    """Order capability tiers (low < medium < high < critical); ValueError for an unknown one."""
    try:
        return _TIER_RANKS[tier]
    except (KeyError, TypeError):
        raise ValueError(f"{tier!r} is not a capability tier ({', '.join(TIERS)})") from None


@dataclass(frozen=True, slots=True)
class Reference:
    """The business object in the CRM/ERP that a transaction belongs to."""

    system: str
    object_type: str
    object_id: str


@dataclass(frozen=True, slots=True)
class EndUser:
    """The ultimate end-user of the products."""

    name: str
    country: str
    type: str = "unknown"
    sector: str = "other"

    @property
    def is_security_sector(self) -> bool:
        """True for law enforcement, intelligence, military, border, prisons and internal security."""
        return self.sector in SECURITY_SECTORS

    @property
    def is_government(self) -> bool:
        """True for government and government-linked end-users."""
        return self.type in GOVERNMENT_TYPES


@dataclass(frozen=True, slots=True)
class Party:
    """An intermediary or other party to the deal (distributor, consignee, financier, ...)."""

    role: str
    name: str
    country: str | None = None
    government_linked: bool | None = None


def quantity_text(value) -> str:
    """A quantity as people write it: 2 and 400 rather than 2.0 and 400.0, a fraction as it is (2.5)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return "" if value is None else str(value)


@dataclass(frozen=True, slots=True)
class Item:
    """A product line of the deal with the surveillance capabilities it carries."""

    sku: str
    name: str
    capabilities: tuple[str, ...] = ()
    eccn: str | None = None
    quantity: float = 1
    unit_price: float | None = None
    currency: str | None = None
    component_of_surveillance_system: bool = False


@dataclass(frozen=True, slots=True)
class Transaction:
    """The canonical transaction every adapter produces and the engine screens."""

    reference: Reference
    stage: str
    end_user: EndUser
    parties: tuple[Party, ...] = ()
    items: tuple[Item, ...] = ()
    deployment_countries: tuple[str, ...] = ()
    intended_use: str | None = None
    answers: dict[str, str] = field(default_factory=dict)

    def countries(self) -> tuple[str, ...]:
        """Every country the deal touches (end-user, parties, deployment), in first-seen order."""
        seen: dict[str, None] = {}
        for code in (self.end_user.country, *(p.country for p in self.parties), *self.deployment_countries):
            if code:
                seen.setdefault(code, None)
        return tuple(seen)

    def capabilities(self) -> tuple[str, ...]:
        """Every capability id carried by any item, in first-seen order."""
        seen: dict[str, None] = {}
        for item in self.items:
            for cap in item.capabilities:
                seen.setdefault(cap, None)
        return tuple(seen)

    def answer(self, question_id: str) -> str | None:
        """The answer given to a checklist question, or None."""
        return self.answers.get(question_id)

    def to_dict(self) -> dict[str, Any]:
        """The canonical JSON form (as accepted by POST /v1/screenings)."""
        # Written out rather than dataclasses.asdict(): this is on the hot path of every screening.
        r, e = self.reference, self.end_user
        return {
            "reference": {"system": r.system, "object_type": r.object_type, "object_id": r.object_id},
            "stage": self.stage,
            "end_user": {"name": e.name, "country": e.country, "type": e.type, "sector": e.sector},
            "parties": [{"role": p.role, "name": p.name, "country": p.country,
                         "government_linked": p.government_linked} for p in self.parties],
            "items": [{"sku": i.sku, "name": i.name, "capabilities": list(i.capabilities), "eccn": i.eccn,
                       "quantity": i.quantity, "unit_price": i.unit_price, "currency": i.currency,
                       "component_of_surveillance_system": i.component_of_surveillance_system}
                      for i in self.items],
            "deployment_countries": list(self.deployment_countries),
            "intended_use": self.intended_use,
            "answers": dict(self.answers),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Transaction:
        """Build from already-validated canonical JSON (see hrdd.schemas for validation)."""
        return cls(
            reference=Reference(**data["reference"]),
            stage=data["stage"],
            end_user=EndUser(**data["end_user"]),
            parties=tuple(Party(**p) for p in data.get("parties") or ()),
            items=tuple(
                Item(**{**i, "capabilities": tuple(i.get("capabilities") or ())}) for i in data["items"]
            ),
            deployment_countries=tuple(data.get("deployment_countries") or ()),
            intended_use=data.get("intended_use"),
            answers=dict(data.get("answers") or {}),
        )

    def material_facts(self) -> dict[str, Any]:
        """The facts whose change invalidates an earlier review (parties, end-user, items, countries).

        With the intended use and the deal's scale (quantity per SKU, value per currency), which
        ``hrdd.material`` compares under the policy's ``material_changes`` rules rather than for equality.
        """
        quantities: dict[str, float] = {}
        values: dict[str, float] = {}
        for item in self.items:
            quantities[item.sku] = quantities.get(item.sku, 0) + item.quantity
            if item.unit_price is not None:
                values[item.currency or ""] = values.get(item.currency or "", 0) + item.quantity * item.unit_price
        return {
            "end_user": [self.end_user.name.strip().lower(), self.end_user.country],
            "parties": sorted([p.role, p.name.strip().lower(), p.country or ""] for p in self.parties),
            "items": sorted([i.sku, sorted(i.capabilities)] for i in self.items),
            "countries": sorted(self.countries()),
            # Kept apart from "countries": a party's country becoming a deployment country is a change.
            "deployment": sorted(set(self.deployment_countries)),
            "intended_use": (self.intended_use or "").strip(),
            "quantities": sorted([sku, n] for sku, n in quantities.items()),
            "value": sorted([currency, v] for currency, v in values.items()),
        }


@dataclass(slots=True)
class RedFlag:
    """A red flag raised by a step check, with the evidence (figures) it rests on."""

    id: str
    step: int
    severity: str
    title: str
    evidence: str
    source: str
    data: dict[str, Any] = field(default_factory=dict)
    raised_by: str | None = None  # plugin name, filled in by the engine

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the screening response."""
        return {"id": self.id, "step": self.step, "severity": self.severity, "title": self.title,
                "evidence": self.evidence, "source": self.source, "data": self.data, "raised_by": self.raised_by}


@dataclass(slots=True)
class Safeguard:
    """A mitigation the screening calls for: a clause, a technical control or a process step."""

    id: str
    kind: str  # clause | technical | process
    title: str

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the screening response."""
        return {"id": self.id, "kind": self.kind, "title": self.title}


@dataclass(slots=True)
class StepResult:
    """Status of one of the guidance's eight steps for this screening."""

    step: int
    title: str
    status: str  # flagged | clear | required | pending | not_applicable
    flags: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON form for the screening response."""
        return {"step": self.step, "title": self.title, "status": self.status, "flags": list(self.flags)}


@dataclass(slots=True)
class Screening:
    """The engine's result for one transaction at one stage."""

    transaction: Transaction
    decision: str
    gate: str
    risk_score: int
    risk_level: str
    red_flags: list[RedFlag]
    steps: list[StepResult]
    safeguards: list[Safeguard]
    conditions: list[str]
    tailoring: list[dict[str, Any]]
    versions: dict[str, Any]
    party_matches: list[dict[str, Any]] = field(default_factory=list)
    answers_on_record: dict[str, dict[str, Any]] = field(default_factory=dict)
    id: str | None = None
    transaction_id: str | None = None
    created_at: str | None = None

    def flag_ids(self) -> list[str]:
        """The ids of the raised red flags, in order."""
        return [f.id for f in self.red_flags]

    def to_dict(self) -> dict[str, Any]:
        """The screening response body (DESIGN.md), without store-assigned links."""
        out = {
            "id": self.id,
            "transaction_id": self.transaction_id,
            "created_at": self.created_at,
            "stage": self.transaction.stage,
            "decision": self.decision,
            "gate": self.gate,
            "risk": {"score": self.risk_score, "level": self.risk_level},
            "red_flags": [f.to_dict() for f in self.red_flags],
            "steps": [s.to_dict() for s in self.steps],
            "safeguards": [s.to_dict() for s in self.safeguards],
            "conditions": list(self.conditions),
            "tailoring": list(self.tailoring),
            "party_matches": list(self.party_matches),
            "documents": (
                {
                    "rider": f"/v1/screenings/{self.id}/rider.docx",
                    "checklist": f"/v1/screenings/{self.id}/checklist.xlsx",
                }
                if self.id
                else {}
            ),
            "versions": self.versions,
            "transaction": self.transaction.to_dict(),
        }
        if self.answers_on_record:
            out["answers_on_record"] = self.answers_on_record
        return out
