"""Schedule 1 of the rider: the screening's summary and every red flag with its evidence."""

from __future__ import annotations

from typing import Any

from hrdd.model import SEVERITIES
from hrdd.riders import ooxml
from hrdd.riders.variables import SCREENING_VALUES, clean_text, country_name, party_label

NONE = "—"
# Column widths in twentieths of a point (567 = 1 cm).
SUMMARY_WIDTHS = (2835, 6237)
# Each column's share of the red-flag table's width (twips when all five are printed: 9,072 in all).
FLAG_WIDTHS = {"flag": 964, "step": 624, "severity": 964, "finding": 4536, "source": 1984}


def _humanise(value: str | None) -> str:
    return clean_text(value or "").replace("_", " ")


def capability_name(capability: str, titles: dict[str, str]) -> str:
    """A capability as a sentence names it: its Schedule 2 Part title ("IT infrastructure", "location
    tracking"), else its id in words."""
    title = titles.get(capability)
    if not title:
        return _humanise(capability)
    # "Location tracking" -> "location tracking"; an acronym ("IT infrastructure") keeps its capitals.
    return title if title[1:2].isupper() else title[:1].lower() + title[1:]


def summary_rows(screening: dict[str, Any], frame, values,
                 capability_titles: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """(label, value) rows describing the screening: those of the frame's ``findings.summary_rows``;
    capabilities are named by ``capability_titles`` (capability id -> Schedule 2 Part title)."""
    transaction = screening.get("transaction") or {}
    end_user = transaction.get("end_user") or {}
    risk = screening.get("risk") or {}
    titles = capability_titles or {}
    items = []
    for item in transaction.get("items") or ():
        capabilities = ", ".join(capability_name(c, titles) for c in item.get("capabilities") or ()) or NONE
        eccn = f"; ECCN {clean_text(item['eccn'])}" if item.get("eccn") else ""
        items.append(f"{clean_text(item.get('name') or '')} ({clean_text(item.get('sku') or '')}): "
                     f"{capabilities}{eccn}")
    versions = screening.get("versions") or {}
    data = versions.get("data") or {}
    data_text = "; ".join(f"{clean_text(k)} {clean_text(v)}" for k, v in data.items())
    if versions.get("ruleset"):
        data_text = f"ruleset {clean_text(versions['ruleset'])}" + (f"; {data_text}" if data_text else "")
    decision = screening.get("decision") or ""
    eu_parts = [clean_text(end_user.get("name") or ""), country_name(end_user.get("country")),
                _humanise(end_user.get("type")), _humanise(end_user.get("sector"))]
    labels = frame.summary_labels
    rows = {
        "screening": clean_text(screening.get("id") or ""),
        "date": values.get("screening_date") or _date_of(screening),
        "stage": _humanise(screening.get("stage")),
        "decision": frame.decision_labels.get(decision, _humanise(decision)),
        "risk": f"{risk.get('score', NONE)}/100 ({_humanise(risk.get('level'))})" if risk else NONE,
        "end_user": "; ".join(p for p in eu_parts if p),
        # One line each: a rider covers only the parties it names (hrdd.rider_coverage).
        "parties": "\n".join(party_label(p) for p in transaction.get("parties") or ()),
        "countries": ", ".join(country_name(c) for c in transaction.get("deployment_countries") or ())
        or country_name(end_user.get("country")),
        "products": "\n".join(items),
        "intended_use": clean_text(transaction.get("intended_use") or ""),
        "data": data_text,
    }
    return [(labels[key], rows[key] or NONE) for key in frame.summary_rows]


def _date_of(screening: dict[str, Any]) -> str:
    return SCREENING_VALUES["screening_date"](screening)


def ordered_flags(screening: dict[str, Any]) -> list[dict[str, Any]]:
    """Red flags, worst first, then by step and id."""
    def key(flag):
        severity = flag.get("severity")
        rank = SEVERITIES.index(severity) if severity in SEVERITIES else -1
        return (-rank, flag.get("step") if isinstance(flag.get("step"), int) else 99, str(flag.get("id")))
    return sorted(screening.get("red_flags") or (), key=key)


def _buyer_facing(flag: dict[str, Any], frame) -> tuple[str, str]:
    """A flag's title and evidence as the Buyer may read them.

    A flag in the frame's ``findings.withheld`` (RF-7.1: the grievance channel, whose reporters must stay
    unidentifiable) or ``findings.restated`` (evidence that is a checklist answer or a match score) prints
    the frame's wording instead, for screenings stored before this too. Other evidence (the public-source
    figures) is quoted with what ``findings.evidence_omit`` matches cut out: the Seller's own grading.
    """
    if flag.get("id") in frame.withheld:
        return frame.withheld[flag["id"]]
    evidence = clean_text(flag.get("evidence") or "")
    for pattern in frame.evidence_omit:
        evidence = pattern.sub("", evidence)
    return clean_text(flag.get("title") or ""), " ".join(evidence.split()) or NONE


def write_findings(writer, heading) -> None:
    """Write the findings schedule after its heading: the summary table, then one row per red flag."""
    frame, screening = writer.frame, writer.screening
    writer.para("Normal", frame.texts["findings.intro"])
    style_id = writer.style_ids["Table Grid"]
    titles = {part.capability: part.title for part in writer.library.technical}
    rows = [[[[(label, True)]], [[(value, False)]]]
            for label, value in summary_rows(screening, frame, writer.values, titles)]
    writer.add_block(ooxml.table(rows, SUMMARY_WIDTHS, style_id, space_after_twips=40))
    flags = ordered_flags(screening)
    writer.para("Normal")
    if not flags:
        writer.para("Normal", frame.texts["findings.no_flags"])
        return
    keys = [key for key, _ in frame.flag_columns]
    rows = [[[[(heading, True)]] for _, heading in frame.flag_columns]]
    for flag in flags:
        title, evidence = _buyer_facing(flag, frame)
        cells = {
            "flag": [[(clean_text(flag.get("id") or ""), True)]],
            "step": [[(clean_text(flag.get("step", "")), False)]],
            "severity": [[(_humanise(flag.get("severity")), False)]],
            "finding": [[(title, True)], [(evidence, False)]],
            "source": [[(clean_text(flag.get("source") or NONE), False)]],
        }
        rows.append([cells[key] for key in keys])
    writer.add_block(ooxml.table(rows, _widths(keys), style_id, header=True, size_half_points=18,
                                 space_after_twips=40))


def _widths(keys: list[str]) -> tuple[int, ...]:
    """The printed columns' widths, stretched to the full table width when some are left out."""
    full, shares = sum(FLAG_WIDTHS.values()), [FLAG_WIDTHS[key] for key in keys]
    return tuple(round(share * full / sum(shares)) for share in shares)
