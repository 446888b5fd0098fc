"""What ties a checklist workbook to its screening: sheet names, metadata keys and the digest."""

from __future__ import annotations

import hashlib
import json

from hrdd.checklists.templates import Template

SUMMARY_SHEET = "Summary"
QUESTIONS_SHEET = "Questions"
RED_FLAGS_SHEET = "Red flags"
PARTIES_SHEET = "Parties"
SOURCES_SHEET = "Sources"
META_SHEET = "hrdd_meta"
META_KEYS = ("format", "screening_id", "transaction_id", "template_id", "template_version", "digest",
             "generated_at")
FORMAT = "hrdd-checklist/1"

# Header names of the Questions sheet; the upload finds its columns by these names, never by position.
Q_ID, Q_ANSWER, Q_NOTES, Q_OWNER, Q_DUE, Q_STATUS = "ID", "Answer", "Evidence notes", "Owner", "Due date", "Status"
# The header rows the workbook writes; an upload's header row must be exactly this (no extra or repeated column).
QUESTION_HEADERS = (Q_ID, "Step", "Topic", "Question", "Evidence guidance", Q_ANSWER, Q_NOTES, "Red flag", "Source",
                    Q_OWNER, Q_DUE, Q_STATUS)
RED_FLAG_HEADERS = ("ID", "Step", "Severity", "Title", "Evidence", "Source", "Mitigation", "Resolution",
                    "Resolution notes")
# The Parties sheet: a row per party and restricted-party result; the upload reads the review notes back by
# the identifying columns (role, name, country, result, entry, list), never by row position.
P_ROLE, P_NAME, P_COUNTRY, P_RESULT, P_ENTRY, P_LIST, P_NOTES = (
    "Role", "Name", "Country", "Restricted-party result", "Matched list entry", "List", "Review notes")
PARTY_HEADERS = (P_ROLE, P_NAME, P_COUNTRY, "Government-linked", P_RESULT, P_ENTRY, P_LIST, "Score", P_NOTES)
STATUSES = ("Open", "In progress", "Done")
RESOLUTIONS = ("Open", "Mitigated", "Accepted by approver", "Transaction declined", "Not applicable")


def checklist_digest(screening: dict, template: Template) -> str:
    """SHA-256 over the screening's identity and the template's identity and questions.

    An upload whose metadata does not reproduce this digest was made for another screening, another
    template version, or had its metadata edited.
    """
    basis = {
        "screening": screening.get("id"),
        "transaction": screening.get("transaction_id"),
        "created_at": screening.get("created_at"),
        "decision": screening.get("decision"),
        "template": template.id,
        "version": template.version,
        "questions": list(template.question_ids),
    }
    return hashlib.sha256(json.dumps(basis, sort_keys=True).encode()).hexdigest()
