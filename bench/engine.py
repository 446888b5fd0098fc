"""Engine alone (no HTTP, no store): screenings per second, single-threaded, for three typical deals."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hrdd.config import load_config  # noqa: E402
from hrdd.engine import Engine  # noqa: E402
from hrdd.model import Transaction  # noqa: E402
from hrdd.plugins import make_plugin_manager  # noqa: E402
from hrdd.policy import Policy  # noqa: E402
from hrdd.reference import ReferenceData  # noqa: E402
from hrdd.schemas import TransactionSchema  # noqa: E402


def main(seconds: float = 3.0) -> dict:
    """Run each fixture for `seconds` and print screenings/s."""
    config = load_config()
    policy = Policy.load(config["HRDD_POLICY_FILE"])
    reference = ReferenceData(config["HRDD_DATA_DIR"], policy)
    engine = Engine(make_plugin_manager(), reference, policy)
    schema = TransactionSchema(capabilities=list(reference.capabilities))
    results = {}
    for name in ("transaction_egypt_biometric.json", "transaction_norway_storage.json"):
        tx = Transaction.from_dict(schema.load(json.loads((ROOT / "tests" / "fixtures" / name).read_text())))
        engine.screen(tx)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            engine.screen(tx)
            n += 1
        rate = n / (time.perf_counter() - start)
        results[name] = round(rate)
        print(f"{name}: {rate:,.0f} screenings/s (single thread, {n} runs)")
    return results


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 3.0)
