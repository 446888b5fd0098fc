"""The name score: weighted agreement of words (rapidfuzz similarity), shared by index and brute force."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Alignment:
    """Which query words agreed with which listed words, and the 0-100 name score that follows."""

    score: float
    pairs: tuple[tuple[int, int, float], ...]  # (query position, listed position, similarity 0-100)


def align(q_sims: list[dict[int, float]], q_weights: list[float], q_weak: list[bool],
          c_tokens: tuple[int, ...], c_weights: list[float], c_weak: list[bool], floor: float = 40.0,
          is_place: Callable[[int], bool] = lambda _: False) -> Alignment | None:
    """Score a listed name (word ids) against a query whose words' similar list words are known.

    ``q_sims[i]`` maps list-word ids to their rapidfuzz similarity (>= the policy minimum) with query
    word ``i``. Words pair one-to-one, best similarity first. The score is a weighted Dice coefficient:
    each pair contributes its agreement times the two words' weights, over the weight of all words on
    both sides, so extra or missing words lower it in proportion to how much identity they carry. A
    pair's agreement is (similarity - floor) / (100 - floor): identical words count fully, a word two
    letters off ("Microelectronics" / "Ruselectronics", similarity 80) only two-thirds with floor 40.
    Returns None when the names share no word that identifies anything (only sector words or places),
    unless the listed name consists only of such words and every word on both sides pairs up, but for
    places of the listed name (``is_place`` of a list-word id) when at least one of them pairs.
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
        if not all(c_weak) or len(pairs) != len(q_sims):
            return None
        if len(pairs) != len(c_tokens):
            # A listed name made of sector words and places ("Ministry of Defense of the Republic of
            # Belarus", "Beijing Institute of Technology") is identified by its places, and only its places
            # are left out at will: given with at least one of them, every one of its sector words and
            # nothing it lacks ("Ministry of Defense of Belarus"), it is scored; "Institute of Technology"
            # or "Beijing Institute" is not.
            missing = [c_tokens[j] for j in range(len(c_tokens)) if j not in used_c]
            if not all(map(is_place, missing)) or not any(is_place(c_tokens[j]) for j in used_c):
                return None
    denominator = sum(q_weights) + sum(c_weights)
    return Alignment(100.0 * numerator / denominator, tuple(pairs))
