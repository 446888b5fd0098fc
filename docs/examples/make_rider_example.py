"""Regenerate the sample rider: screen DESIGN.md's example deal through the API and download its rider.

Runs the real service on a throw-away SQLite store: POST /v1/screenings with
tests/fixtures/transaction_egypt_biometric.json, then GET /v1/screenings/{id}/rider.docx with the rider
variables as query arguments, then LibreOffice converts the .docx to PDF. Writes, next to this file:
rider-example-screening.json, rider-example.docx and rider-example.pdf.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(ROOT))

from server import create_app  # noqa: E402

OPTIONS = {
    "seller_name": "Acme Vision Ltd",
    "buyer_name": "Nile Integrated Systems LLC",
    "agreement_reference": "AV-2026-0147",
    "governing_law": "the laws of England and Wales",
    "grievance_contact": "https://acme-vision.example/grievance or humanrights@acme-vision.example",
    "cure_period": "30",
}


def main() -> None:
    """Screen, download the rider and render it to PDF."""
    transaction = json.loads((ROOT / "tests" / "fixtures" / "transaction_egypt_biometric.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"HRDD_DATABASE_URL": f"sqlite:///{tmp}/example.sqlite3", "HRDD_VAR_DIR": tmp})
        store = app.extensions["hrdd"].store
        _, crm = store.create_api_key("example-crm", "crm")
        _, contracts = store.create_api_key("example-contracts", "contracts")
        client = app.test_client()
        response = client.post("/v1/screenings", json=transaction, headers={"Authorization": f"Bearer {crm}"})
        assert response.status_code == 201, response.get_json()
        screening = response.get_json()
        rider = client.get(f"/v1/screenings/{screening['id']}/rider.docx", query_string=OPTIONS,
                           headers={"Authorization": f"Bearer {contracts}"})
        assert rider.status_code == 200, rider.get_json()
        store.engine.dispose()
        (HERE / "rider-example-screening.json").write_text(json.dumps(screening, indent=2, ensure_ascii=False) + "\n")
        docx = HERE / "rider-example.docx"
        docx.write_bytes(rider.data)
        soffice = shutil.which("soffice")
        if not soffice:
            sys.exit("LibreOffice (soffice) is needed for the PDF: apt-get install libreoffice-writer-nogui")
        subprocess.run([soffice, f"-env:UserInstallation=file://{tmp}/lo", "--headless", "--convert-to", "pdf",
                        "--outdir", str(HERE), str(docx)], check=True, capture_output=True, timeout=180)
    print(f"screening {screening['id']}: decision {screening['decision']}, "
          f"{len(screening['red_flags'])} red flags; wrote {docx.name} and rider-example.pdf")


if __name__ == "__main__":
    main()
