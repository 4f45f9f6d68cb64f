"""Alignment error rate and friends (Och & Ney, 2003).

With sure links S (a subset of possible links P) and predicted links A, summed over
the corpus:

* precision = |A ∩ P| / |A|
* recall    = |A ∩ S| / |S|
* AER       = 1 - (|A ∩ S| + |A ∩ P|) / (|A| + |S|)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

from alignment.pharaoh import GoldAlignment


@dataclass(frozen=True, slots=True)
class AlignmentScores:
    aer: float
    precision: float
    recall: float
    pairs: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def alignment_error_rate(
    gold: Iterable[GoldAlignment], predicted: Iterable[set[tuple[int, int]]]
) -> AlignmentScores:
    """Corpus-level AER, precision and recall; gold and predictions must pair up 1:1."""
    a_total = s_total = a_and_s = a_and_p = pairs = 0
    for g, pred in zip(gold, predicted, strict=True):
        pairs += 1
        a_total += len(pred)
        s_total += len(g.sure)
        a_and_s += len(pred & g.sure)
        a_and_p += len(pred & g.possible)
    precision = a_and_p / a_total if a_total else 0.0
    recall = a_and_s / s_total if s_total else 0.0
    denom = a_total + s_total
    aer = 1.0 - (a_and_s + a_and_p) / denom if denom else 0.0
    return AlignmentScores(aer=aer, precision=precision, recall=recall, pairs=pairs)
