"""Predicate classification Recall@K and mean Recall@K (PSG), per image, pooled over all its pairs.

For each image, every (pair, option, score) is pooled (no graph constraint: several predicates per pair may
count), sorted by score, and the top K kept. Recall is micro over the dataset; mean recall averages the unrounded
per-predicate recalls over the predicates present in the ground truth.

``official`` is upstream's ``eval_psg_pred_cls.py``: it keeps the top K and then drops the last, so its
"Recall@K" is Recall@(K-1); equal scores keep their order of arrival (the prediction file's order, then the
options' order in a line); the ground truth is a list, so a predicate given twice for one pair counts twice.
``fixed`` keeps the top K, breaks ties by question id and then predicate, and counts each (pair, predicate) once.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

from allseeing.eval.metrics.ordering import natural_key

KS = (20, 50, 100)

Candidate = tuple[float, str, Hashable, Hashable]  # (score, question id, (subject, object), predicate)


@dataclass
class ImageGraph:
    """One image's candidates (in order of arrival) and ground truth (((subject, object), predicate), as listed)."""

    candidates: list[Candidate] = field(default_factory=list)
    truth: list[tuple[Hashable, Hashable]] = field(default_factory=list)


def top_k(candidates: Iterable[Candidate], k: int, official: bool) -> set[tuple[Hashable, Hashable]]:
    """The (pair, predicate) kept at K under the protocol."""
    if official:
        ranked = sorted(candidates, key=lambda c: -c[0])[:k][:-1]  # stable: ties keep their order of arrival
    else:
        ranked = sorted(candidates, key=lambda c: (-c[0], natural_key(c[1]), str(c[3])))[:k]
    return {(pair, predicate) for _, _, pair, predicate in ranked}


def recall_at_k(images: dict[str, ImageGraph], k: int, official: bool) -> dict[Hashable, list[bool]]:
    """Per predicate (in order of first appearance), whether each of its ground truths is kept at K."""
    by_predicate: dict[Hashable, list[bool]] = {}
    for graph in images.values():
        kept = top_k(graph.candidates, k, official)
        truth = graph.truth if official else list(dict.fromkeys(graph.truth))
        for pair, predicate in truth:
            by_predicate.setdefault(predicate, []).append((pair, predicate) in kept)
    return by_predicate
