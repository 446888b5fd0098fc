"""The documented checklist example (docs/checklists.md): screen the Egypt deal, download its checklist,
answer it, upload it back. Writes the two sample workbooks next to this file.

Usage: python docs/examples/checklist_example.py
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from openpyxl import load_workbook  # noqa: E402

from server import create_app  # noqa: E402

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ANSWERS = {  # what the export-control analyst found, by question id
    "surveillance_capable": ("Yes", "FaceFind matches faces against watch lists; data sheet v4.2."),
    "past_misuse": ("Yes", "Amnesty International and UN Special Rapporteur reports (2023) document facial "
                           "recognition used by the Directorate to identify protesters."),
    "exports_to_abusers": ("Unknown", "No information found yet; asked the distributor."),
    "end_user_disclosed": ("Yes", "End-user certificate signed 2026-11-20."),
    "accepts_safeguards": ("No", "Buyer struck the audit and termination clauses from the rider."),
}


def main() -> None:
    """Run the example against a throw-away SQLite store and save the sample workbooks."""
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"HRDD_DATABASE_URL": f"sqlite:///{tmp}/example.sqlite3"})
        store = app.extensions["hrdd"].store
        crm = {"Authorization": f"Bearer {store.create_api_key('crm', 'crm')[1]}"}
        export = {"Authorization": f"Bearer {store.create_api_key('export-team', 'export')[1]}"}
        client = app.test_client()
        deal = json.loads((ROOT / "tests" / "fixtures" / "transaction_egypt_biometric.json").read_text())
        first = client.post("/v1/screenings", json=deal, headers=crm).get_json()
        print(f"1. screened {first['id']}: {first['decision']} / {first['gate']}, "
              f"flags {[f['id'] for f in first['red_flags']]}")

        workbook = client.get(f"/v1/screenings/{first['id']}/checklist.xlsx", headers=export).data
        (HERE / "checklist-egypt-biometric.xlsx").write_bytes(workbook)
        print(f"2. downloaded the checklist ({len(workbook)} bytes) -> checklist-egypt-biometric.xlsx")

        wb = load_workbook(io.BytesIO(workbook))
        ws = wb["Questions"]
        header = [c.value for c in ws[1]]
        id_col, answer_col, notes_col = header.index("ID"), header.index("Answer"), header.index("Evidence notes")
        for row in ws.iter_rows(min_row=2):
            if row[id_col].value in ANSWERS:
                row[answer_col].value, row[notes_col].value = ANSWERS[row[id_col].value]
        summary = wb["Summary"]
        for row in summary.iter_rows():
            if row[0].value == "Preparer":
                row[1].value, row[2].value = "A. Analyst (Export Control)", "Answers as of 2026-11-29"
        out = io.BytesIO()
        wb.save(out)
        filled = out.getvalue()
        (HERE / "checklist-egypt-biometric-filled.xlsx").write_bytes(filled)
        print("3. answered it -> checklist-egypt-biometric-filled.xlsx")

        response = client.post(f"/v1/screenings/{first['id']}/checklist", data=filled,
                               headers={**export, "Content-Type": XLSX})
        second = response.get_json()
        print(f"4. uploaded: HTTP {response.status_code}, new screening {second['id']}: "
              f"{second['decision']} / {second['gate']}, flags {[f['id'] for f in second['red_flags']]}")
        print(f"   answers now {second['transaction']['answers']}")
        store.engine.dispose()


if __name__ == "__main__":
    main()
