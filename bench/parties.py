"""Benchmark restricted-party matching: blocking index vs brute force over every entry, same scorer.

Run: python bench/parties.py [--queries N] [--synthetic-size N] [--synthetic-queries N] [--seed S]

For the shipped compiled list and for a synthetic list of 100,000 names it reports: index build time and
memory, median milliseconds per name (index search and the whole screening call), the brute-force median
(the identical rapidfuzz-based score evaluated on every listed name and alias), the speed-up, and recall
(share of the brute-force matches the index also finds, at the same threshold). Prints Markdown.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import string
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rapidfuzz import fuzz, process  # noqa: E402

from hrdd.parties.entries import ListEntry  # noqa: E402
from hrdd.parties.index import PartyIndex  # noqa: E402
from hrdd.parties.loaders import load_file  # noqa: E402
from hrdd.parties.matcher import Matcher, MatchPolicy  # noqa: E402

SHIPPED = ROOT / "data" / "restricted_parties_compiled_us_jp_ca.csv"
SYLLABLES = [a + b for a in "bcdfghjklmnprstvwxyz" for b in ("a", "e", "i", "o", "u", "ai", "ei", "ou")]
SECTOR = ["Technology", "Electronics", "Trading", "Industrial", "Engineering", "Systems", "Solutions",
          "International", "Logistics", "Research Institute", "Digital", "Machinery", "Import Export",
          "Aviation", "Security", "Communication", "Scientific", "Holdings", "Group", "Development"]
PLACES = ["Beijing", "Shanghai", "Shenzhen", "Moscow", "Tehran", "Dubai", "Hong Kong", "Harbin", "Wuhan"]
LEGAL = ["Co., Ltd.", "LLC", "JSC", "GmbH", "S.A.", "FZE", "Ltd", "Inc.", "OOO", "Limited", "Corporation", ""]
COUNTRIES = ["CN", "RU", "IR", "AE", "HK", "TR", "PK", "KP", "BY", "SY", "MY", "IN"]


def pseudo_word(rng: random.Random) -> str:
    """A pronounceable made-up word (2-4 syllables) such as 'Kovelira'."""
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))).capitalize()


def synthetic_name(rng: random.Random) -> str:
    """A made-up company or person name in the style of restricted-party lists."""
    if rng.random() < 0.2:
        return f"{pseudo_word(rng)} {pseudo_word(rng)}"
    parts = []
    if rng.random() < 0.35:
        parts.append(rng.choice(PLACES))
    parts.extend(pseudo_word(rng) for _ in range(rng.choice((1, 1, 1, 2))))
    parts.extend(rng.sample(SECTOR, rng.choice((0, 1, 1, 2))))
    parts.append(rng.choice(LEGAL))
    return " ".join(p for p in parts if p)


def synthetic_list(size: int, rng: random.Random) -> list[ListEntry]:
    """``size`` entries; a third carry one or two aliases."""
    entries = []
    for i in range(size):
        name = synthetic_name(rng)
        aliases = tuple(synthetic_name(rng) for _ in range(rng.choice((0, 0, 1, 2))))
        entries.append(ListEntry(entry_id=f"syn-{i}", list="Synthetic list", name=name, aliases=aliases,
                                 countries=(rng.choice(COUNTRIES),)))
    return entries


def typo(word: str, rng: random.Random) -> str:
    """One substitution, deletion, insertion or transposition."""
    if len(word) < 5:
        return word
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("sub", "del", "ins", "swap"))
    letter = rng.choice(string.ascii_lowercase)
    if kind == "sub":
        return word[:i] + letter + word[i + 1:]
    if kind == "del":
        return word[:i] + word[i + 1:]
    if kind == "ins":
        return word[:i] + letter + word[i:]
    return word[: i - 1] + word[i] + word[i - 1] + word[i + 1:]


def variant_of(name: str, rng: random.Random) -> str:
    """A realistic re-spelling of a listed name: legal form, word order, a typo, case, abbreviation."""
    words = [w for w in name.replace(",", " ").split() if w]
    legal = {w.strip(".").lower() for form in LEGAL for w in form.split()}
    core = [w for w in words if w.strip(".").lower() not in legal] or words
    change = rng.choice(("legal", "order", "typo", "case", "abbrev", "drop", "typo"))
    if change == "order" and len(core) > 1:
        rng.shuffle(core)
    elif change == "typo":
        longest = max(range(len(core)), key=lambda k: len(core[k]))
        core[longest] = typo(core[longest], rng)
    elif change == "case":
        core = [w.upper() for w in core]
    elif change == "abbrev":
        core = [{"Technology": "Tech", "International": "Intl", "Engineering": "Eng"}.get(w, w) for w in core]
    elif change == "drop" and len(core) > 2:
        core.pop(rng.randrange(len(core)))
    return " ".join([*core, rng.choice(LEGAL)]).strip()


def queries_for(entries: list[ListEntry], count: int, rng: random.Random) -> list[str]:
    """Half re-spelled listed names, half names that are not on the list (fresh made-up words)."""
    out = []
    for i in range(count):
        if i % 2 == 0:
            entry = rng.choice(entries)
            out.append(variant_of(rng.choice(entry.names()), rng))
        else:
            out.append(synthetic_name(rng))
    return out


def measure(label: str, entries: list[ListEntry], queries: list[str], policy: MatchPolicy) -> dict:
    """Build the index (time, memory), then time index and brute force on every query."""
    gc.collect()
    started = time.perf_counter()
    index = PartyIndex(entries)
    build_s = time.perf_counter() - started
    del index
    gc.collect()
    tracemalloc.start()
    index = PartyIndex(entries)
    memory_mb = tracemalloc.get_traced_memory()[0] / 1e6
    tracemalloc.stop()
    matcher = Matcher(index, policy)
    threshold = policy.possible
    normals = [index.normaliser.normalise(q) for q in queries]
    idx_ms, brute_ms, screen_ms, scan_ms = [], [], [], []
    plain = [" ".join(index.variant_words(v)) for v in range(len(index.var_entry))]
    found = expected = 0
    for normal in normals:
        t0 = time.perf_counter()
        hits = index.search(normal, threshold)
        t1 = time.perf_counter()
        reference = index.brute_force(normal, threshold)
        t2 = time.perf_counter()
        # For scale only: rapidfuzz's own C loop over every normalised name with a stock scorer.
        process.extract(" ".join(normal.tokens), plain, scorer=fuzz.token_sort_ratio, score_cutoff=threshold,
                        limit=None)
        t3 = time.perf_counter()
        idx_ms.append((t1 - t0) * 1000)
        brute_ms.append((t2 - t1) * 1000)
        scan_ms.append((t3 - t2) * 1000)
        got = {h.entry for h in hits}
        want = {h.entry for h in reference}
        expected += len(want)
        found += len(want & got)
    index._sims_cache.clear()
    for query in queries:
        t0 = time.perf_counter()
        matcher.screen(query)
        screen_ms.append((time.perf_counter() - t0) * 1000)
    stats = index.stats()
    return {
        "label": label, "entries": stats["entries"], "names": stats["names"], "words": stats["words"],
        "build_s": build_s, "memory_mb": memory_mb, "queries": len(queries),
        "index_median_ms": statistics.median(idx_ms), "index_p95_ms": _p95(idx_ms),
        "screen_median_ms": statistics.median(screen_ms), "screen_p95_ms": _p95(screen_ms),
        "brute_median_ms": statistics.median(brute_ms), "scan_median_ms": statistics.median(scan_ms),
        "speedup_median": statistics.median(brute_ms) / statistics.median(idx_ms),
        "speedup_total": sum(brute_ms) / sum(idx_ms),
        "brute_matches": expected, "index_matches": found,
        "recall": found / expected if expected else 1.0,
    }


def engine_overhead(seconds: float = 1.5, rounds: int = 3) -> list[dict]:
    """Engine screenings/s (no HTTP, no store) with and without this plugin, interleaved rounds."""
    import copy
    import json

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
    with_parties = make_plugin_manager(entry_points=False)
    without = make_plugin_manager(entry_points=False)
    without.unregister(name="step4_restricted_parties")
    schema = TransactionSchema(capabilities=list(reference.capabilities))
    norway = json.loads((ROOT / "tests" / "fixtures" / "transaction_norway_storage.json").read_text())
    three = copy.deepcopy(norway)
    three["parties"] = [{"role": "distributor", "name": "Nordic Storage Partners AS", "country": "NO"},
                        {"role": "integrator", "name": "Kovelira Data Systems GmbH", "country": "DE"}]
    rows = []
    for label, body in (("Norway storage deal, end-user only", norway),
                        ("same deal with two more parties", three)):
        tx = Transaction.from_dict(schema.load(body))
        rates: dict[str, list[float]] = {"with": [], "without": []}
        for _ in range(rounds):
            for key, pm in (("with", with_parties), ("without", without)):
                engine = Engine(pm, reference, policy)
                engine.screen(tx)
                n, start = 0, time.perf_counter()
                while time.perf_counter() - start < seconds:
                    engine.screen(tx)
                    n += 1
                rates[key].append(n / (time.perf_counter() - start))
        rows.append({"label": label, "with": statistics.median(rates["with"]),
                     "without": statistics.median(rates["without"])})
    return rows


def _p95(values: list[float]) -> float:
    return sorted(values)[int(0.95 * (len(values) - 1))]


def main(argv: list[str] | None = None) -> None:
    """Run both benchmarks and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1000, help="queries against the shipped list")
    parser.add_argument("--synthetic-size", type=int, default=100_000)
    parser.add_argument("--synthetic-queries", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20201030)
    parser.add_argument("--no-engine", action="store_true", help="skip the engine throughput comparison")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    policy = MatchPolicy()
    shipped = list(load_file(SHIPPED).entries)
    synthetic = synthetic_list(args.synthetic_size, rng)
    rows = [
        measure("shipped compiled list", shipped, queries_for(shipped, args.queries, rng), policy),
        measure(f"synthetic {args.synthetic_size:,} names", synthetic,
                queries_for(synthetic, args.synthetic_queries, rng), policy),
    ]
    print(f"Python {sys.version.split()[0]}; threshold {policy.possible:g} (possible match), no country; "
          f"seed {args.seed}\n")
    print("| list | entries | names+aliases | build s | index MB | queries | index median ms (p95) | "
          "screen median ms (p95) | brute-force median ms | speed-up (median / total) | recall | "
          "plain rapidfuzz scan median ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['label']} | {r['entries']:,} | {r['names']:,} | {r['build_s']:.2f} | {r['memory_mb']:.0f} | "
              f"{r['queries']} | {r['index_median_ms']:.3f} ({r['index_p95_ms']:.2f}) | "
              f"{r['screen_median_ms']:.3f} ({r['screen_p95_ms']:.2f}) | {r['brute_median_ms']:.2f} | "
              f"{r['speedup_median']:.0f}x / {r['speedup_total']:.0f}x | "
              f"{r['recall']:.2%} ({r['index_matches']}/{r['brute_matches']}) | {r['scan_median_ms']:.2f} |")
    if not args.no_engine:
        print("\n| engine, no HTTP, no store (median of 3 interleaved rounds) | with parties plugin | without | "
              "ratio |\n|---|---|---|---|")
        for r in engine_overhead():
            print(f"| {r['label']} | {r['with']:,.0f} /s | {r['without']:,.0f} /s | {r['with'] / r['without']:.2f} |")


if __name__ == "__main__":
    main()
