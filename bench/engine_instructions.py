"""Engine alone under valgrind callgrind: instructions per escalated screening, a figure load does not move.

Runs this script's loop (``Engine.screen`` on docs/design.md's Egypt example, every built-in plugin, no
HTTP, no store) under callgrind for 200 and for 1,200 screenings and divides the difference by 1,000, so
start-up (data loading, imports) cancels out. Run it from a checkout's directory (with that checkout first
on PYTHONPATH) to compare two versions. Needs Debian's valgrind.
Usage: python bench/engine_instructions.py            (prints instructions per screening)
       python bench/engine_instructions.py --loop N   (the measured loop itself)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path.cwd()
sys.path.insert(0, str(ROOT))


def loop(count: int) -> None:
    """Screen the example ``count`` times."""
    from hrdd.config import load_config
    from hrdd.engine import Engine
    from hrdd.model import Transaction
    from hrdd.plugins import make_plugin_manager
    from hrdd.policy import Policy
    from hrdd.reference import ReferenceData
    from hrdd.schemas import TransactionSchema
    config = load_config()
    policy = Policy.load(config["HRDD_POLICY_FILE"])
    reference = ReferenceData(config["HRDD_DATA_DIR"], policy)
    engine = Engine(make_plugin_manager(), reference, policy)
    schema = TransactionSchema(capabilities=list(reference.capabilities))
    body = json.loads((ROOT / "tests" / "fixtures" / "transaction_egypt_biometric.json").read_text())
    transaction = Transaction.from_dict(schema.load(body))
    for _ in range(count):
        engine.screen(transaction)


def instructions(count: int) -> int:
    """Total instructions of the loop with ``count`` screenings."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg.out")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                        __file__, "--loop", str(count)], check=True, capture_output=True)
        text = Path(out).read_text(errors="replace")
    return int(re.search(r"^(?:summary|totals): (\d+)", text, re.M).group(1))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--loop"]:
        loop(int(sys.argv[2]))
    else:
        per = (instructions(1200) - instructions(200)) / 1000
        print(f"engine alone, escalated example: {per:,.0f} instructions per screening")
