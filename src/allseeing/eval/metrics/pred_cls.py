"""Predicate classification Recall@K and mean Recall@K (PSG), per image, pooled over all its pairs.

For each image, every (pair, option, score) is pooled (no graph constraint: several predicates per pair may
count), sorted by score, and the top K kept. ``official`` reproduces upstream's off-by-one: it keeps the top K and
then drops the last, so its "Recall@K" is Recall@(K-1) (UPSTREAM_SPEC §6.6). Ground truth: (pair, p) for every p
in ``correct_option``. Recall is micro over the dataset; mean recall averages per-predicate recalls over the
predicates present in the ground truth.
"""

from __future__ import annotations

from collections import defaultdict

KS = (20, 50, 100)

Candidate = tuple[float, str, str]  # (score, pair id, predicate)


def recall_at_k(
    images: dict[str, tuple[list[Candidate], set[tuple[str, str]]]], k: int, official: bool
) -> tuple[float | None, float | None, dict[str, float]]:
    """(recall, mean recall, per-predicate recall) in percent over ``images``: id -> (candidates, ground truth)."""
    hits: dict[str, int] = defaultdict(int)
    totals: dict[str, int] = defaultdict(int)
    for candidates, truth in images.values():
        ranked = sorted(candidates, key=lambda c: -c[0])[:k]
        if official:
            ranked = ranked[:-1]
        kept = {(pair, predicate) for _, pair, predicate in ranked}
        for pair, predicate in truth:
            totals[predicate] += 1
            hits[predicate] += (pair, predicate) in kept
    if not totals:
        return None, None, {}
    per_predicate = {p: round(100.0 * hits[p] / totals[p], 2) for p in sorted(totals)}
    recall = round(100.0 * sum(hits.values()) / sum(totals.values()), 2)
    mean = round(sum(per_predicate.values()) / len(per_predicate), 2)
    return recall, mean, per_predicate
