"""The name score: weighted agreement of words (rapidfuzz similarity), shared by index and brute force."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Alignment:
    """Which query words agreed with which listed words, and the 0-100 name score that follows."""

    score: float
    pairs: tuple[tuple[int, int, float], ...]  # (query position, listed position, similarity 0-100)


def align(q_sims: list[dict[int, float]], q_weights: list[float], q_weak: list[bool],
          c_tokens: tuple[int, ...], c_weights: list[float], c_weak: list[bool], floor: float = 40.0
          ) -> Alignment | None:
    """Score a listed name (word ids) against a query whose words' similar list words are known.

    ``q_sims[i]`` maps list-word ids to their rapidfuzz similarity (>= the policy minimum) with query
    word ``i``. Words pair one-to-one, best similarity first. The score is a weighted Dice coefficient:
    each pair contributes its agreement times the two words' weights, over the weight of all words on
    both sides, so extra or missing words lower it in proportion to how much identity they carry. A
    pair's agreement is (similarity - floor) / (100 - floor): identical words count fully, a word two
    letters off ("Microelectronics" / "Ruselectronics", similarity 80) only two-thirds with floor 40.
    Returns None when the names share no word that identifies anything (only sector words or places),
    unless the listed name consists only of such words and every word on both sides pairs up.
    """
    candidates = []
    for i, sims in enumerate(q_sims):
        if not sims:
            continue
        for j, token in enumerate(c_tokens):
            sim = sims.get(token)
            if sim is not None:
                candidates.append((sim, i, j))
    if not candidates:
        return None
    candidates.sort(key=lambda p: (-p[0], p[1], p[2]))
    used_q: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    numerator = 0.0
    identifying = False
    span = 100.0 - floor
    for sim, i, j in candidates:
        if i in used_q or j in used_c:
            continue
        used_q.add(i)
        used_c.add(j)
        pairs.append((i, j, sim))
        numerator += (sim - floor) / span * (q_weights[i] + c_weights[j])
        identifying = identifying or not (q_weak[i] or c_weak[j])
    if not identifying:
        if not (all(c_weak) and len(pairs) == len(q_sims) == len(c_tokens)):
            return None
    denominator = sum(q_weights) + sum(c_weights)
    return Alignment(100.0 * numerator / denominator, tuple(pairs))
