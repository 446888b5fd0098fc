"""Benchmark restricted-party matching: blocking index vs brute force over every entry, same scorer.

Run: python bench/parties.py [--queries N] [--synthetic-size N] [--synthetic-queries N] [--seed S]

For the shipped compiled list and for a synthetic list of 100,000 names it reports: index build time and
memory, median milliseconds per name (index search and the whole screening call), the brute-force median
(the identical rapidfuzz-based score evaluated on every listed name and alias), the speed-up, recall
(share of the brute-force matches the index also finds, at the same threshold), and how many re-spelt
listed names find the entry they were made from. Then it screens place-only names (countries, ISO 3166-2
subdivisions, cities, "X City", "Government of X") against the shipped list, which are no party, and
counts those that match. Prints Markdown.
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
# Cities in English with their country, for place-only names (ISO 3166-2 spells its cities locally).
CITIES = {
    "Mexico City": "MX", "Moscow": "RU", "Saint Petersburg": "RU", "Novosibirsk": "RU", "Yekaterinburg": "RU",
    "Kazan": "RU", "Beijing": "CN", "Shanghai": "CN", "Shenzhen": "CN", "Guangzhou": "CN", "Chengdu": "CN",
    "Wuhan": "CN", "Urumqi": "CN", "Hong Kong": "HK", "Dubai": "AE", "Abu Dhabi": "AE", "Sharjah": "AE",
    "Tehran": "IR", "Isfahan": "IR", "Tabriz": "IR", "Istanbul": "TR", "Ankara": "TR", "Minsk": "BY",
    "Damascus": "SY", "Aleppo": "SY", "Pyongyang": "KP", "Karachi": "PK", "Lahore": "PK", "Islamabad": "PK",
    "New Delhi": "IN", "Mumbai": "IN", "Bangalore": "IN", "Kuala Lumpur": "MY", "Singapore": "SG",
    "Bangkok": "TH", "Yangon": "MM", "Hanoi": "VN", "Ho Chi Minh City": "VN", "Jakarta": "ID",
    "Manila": "PH", "Tokyo": "JP", "Seoul": "KR", "Taipei": "TW", "Cairo": "EG", "Johannesburg": "ZA",
    "Lagos": "NG", "Nairobi": "KE", "Riyadh": "SA", "Doha": "QA", "Muscat": "OM", "Baghdad": "IQ",
    "Beirut": "LB", "Amman": "JO", "Baku": "AZ", "Tashkent": "UZ", "Almaty": "KZ", "Caracas": "VE",
    "Havana": "CU", "Managua": "NI", "Paris": "FR", "Munich": "DE", "Berlin": "DE", "Milan": "IT",
    "London": "GB", "Sao Paulo": "BR", "Buenos Aires": "AR", "Santiago": "CL", "Lima": "PE", "Bogota": "CO",
}


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


def queries_for(entries: list[ListEntry], count: int, rng: random.Random) -> list[tuple[str, str | None]]:
    """Half re-spelled listed names (with the entry id they came from), half made-up names (no entry)."""
    out: list[tuple[str, str | None]] = []
    for i in range(count):
        if i % 2 == 0:
            entry = rng.choice(entries)
            out.append((variant_of(rng.choice(entry.names()), rng), entry.entry_id))
        else:
            out.append((synthetic_name(rng), None))
    return out


def place_names() -> list[tuple[str, str]]:
    """Names that are only a place, each with its country: countries, subdivisions, cities and forms of them."""
    # Countries, ISO 3166-2 subdivisions and cities as given, "Government of X" for countries and cities,
    # and "X City", "X Province", "City of X" for cities and one-word countries (not "Syrian Arab Republic
    # City").
    import pycountry

    out: dict[str, str] = {}
    countries = {}
    for c in pycountry.countries:
        for name in {c.name, getattr(c, "common_name", c.name)}:
            countries[name] = c.alpha_2
    for sub in pycountry.subdivisions:
        out.setdefault(sub.name, sub.country_code)
    for name, code in [*countries.items(), *CITIES.items()]:
        out.setdefault(name, code)
        out.setdefault(f"Government of {name}", code)
        if name in CITIES or " " not in name:
            for form in ("{} City", "{} Province", "City of {}"):
                out.setdefault(form.format(name), code)
    return sorted(out.items())


def place_false_positives(entries: list[ListEntry], policy: MatchPolicy) -> dict:
    """Screen every place-only name against ``entries``, without a country and with the place's own."""
    matcher = Matcher(PartyIndex(entries), policy)
    names = place_names()
    matched = {"none": [], "own": []}
    for name, code in names:
        for key, country in (("none", None), ("own", code)):
            found = matcher.screen(name, country)
            if found:
                matched[key].append((name, country, found[0]))
    either = {n for key in matched for n, _, _ in matched[key]}
    return {"names": len(names), "none": matched["none"], "own": matched["own"], "either": len(either)}


def measure(label: str, entries: list[ListEntry], queries: list[tuple[str, str | None]],
            policy: MatchPolicy) -> dict:
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
    normals = [index.normaliser.normalise(q) for q, _ in queries]
    idx_ms, brute_ms, screen_ms, scan_ms = [], [], [], []
    plain = [" ".join(index.variant_words(v)) for v in range(len(index.var_entry))]
    found = expected = sourced = source_found = 0
    for normal, (_, source) in zip(normals, queries, strict=True):
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
        if source is not None:
            # Not a recall target: a re-spelling that drops the one identifying word should not match.
            sourced += 1
            source_found += any(index.entries[e].entry_id == source for e in got)
    index._sims_cache.clear()
    for query, _ in queries:
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
        "sourced": sourced, "source_found": source_found,
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
    parser.add_argument("--show-places", type=int, default=40, help="how many matched place-only names to list (0: none)")
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
          "re-spellings finding their entry | plain rapidfuzz scan median ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['label']} | {r['entries']:,} | {r['names']:,} | {r['build_s']:.2f} | {r['memory_mb']:.0f} | "
              f"{r['queries']} | {r['index_median_ms']:.3f} ({r['index_p95_ms']:.2f}) | "
              f"{r['screen_median_ms']:.3f} ({r['screen_p95_ms']:.2f}) | {r['brute_median_ms']:.2f} | "
              f"{r['speedup_median']:.0f}x / {r['speedup_total']:.0f}x | "
              f"{r['recall']:.2%} ({r['index_matches']}/{r['brute_matches']}) | "
              f"{r['source_found'] / max(1, r['sourced']):.2%} ({r['source_found']}/{r['sourced']}) | "
              f"{r['scan_median_ms']:.2f} |")
    places = place_false_positives(shipped, policy)
    print(f"\nPlace-only names screened against the shipped list: {places['names']:,}; matched without a "
          f"country {len(places['none'])}, with the place's own country {len(places['own'])}, "
          f"either {places['either']}.\n")
    if args.show_places and (places["own"] or places["none"]):
        print("| place-only name | country | best match | score |\n|---|---|---|---|")
        for name, country, match in [*places["none"], *places["own"]][: args.show_places]:
            print(f"| {name} | {country or '–'} | {match['name']} | {match['score']} {match['status']} |")
    if not args.no_engine:
        print("\n| engine, no HTTP, no store (median of 3 interleaved rounds) | with parties plugin | without | "
              "ratio |\n|---|---|---|---|")
        for r in engine_overhead():
            print(f"| {r['label']} | {r['with']:,.0f} /s | {r['without']:,.0f} /s | {r['with'] / r['without']:.2f} |")


if __name__ == "__main__":
    main()
