"""Held-out precision-recall curves of distant supervision, and their plot.

* :func:`heldout_pr` builds the held-out precision-recall curve of distant-supervision
  papers (Mintz et al. 2009; Lin et al. 2016) with its AUC and P@N;
* :func:`plot_pr_curves` draws several such curves into one PNG.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PRCurve:
    """A held-out precision-recall curve, one point per ranked prediction.

    ``precision[k - 1]`` and ``recall[k - 1]`` are the values after the first ``k``
    predictions; ``precision_at[N]`` is the precision after the first ``N`` predictions
    (or all of them when there are fewer).
    """

    precision: tuple[float, ...]
    recall: tuple[float, ...]
    auc: float
    precision_at: dict[int, float]
    n_gold: int
    n_predictions: int




def _trapezoid_auc(x: np.ndarray, y: np.ndarray) -> float:
    """Area under ``y`` over ``x`` by the trapezoid rule; 0.0 with fewer than 2 points."""
    if x.size < 2:
        return 0.0
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2.0))


def heldout_pr(
    scored: Iterable[tuple[Hashable, str, float]],
    gold: Iterable[tuple[Hashable, str]],
    na: str = "NA",
    at: Sequence[int] = (100, 200, 300),
) -> PRCurve:
    """Held-out precision-recall curve over ranked (bag, relation) predictions.

    ``scored`` holds ``(bag_key, relation, score)`` for every evaluated bag and every
    relation; rows for ``na`` are ignored. ``gold`` is the set of true
    ``(bag_key, relation)`` facts (``na`` facts ignored); its size is the recall
    denominator, whether or not every fact's bag was scored.

    Predictions are ranked by score, highest first, ties broken by
    ``(str(bag_key), relation)`` ascending. After the ``k``-th prediction, precision is
    ``correct / k`` and recall ``correct / n_gold``. The AUC is the trapezoid-rule area
    under the (recall, precision) points, as ``sklearn.metrics.auc(recall, precision)``
    computes it (0.0 with fewer than two points). ``precision_at[N]`` is the precision
    after the first ``min(N, n_predictions)`` predictions (0.0 with none). With no gold
    fact, recall is 0.0 everywhere and the AUC is 0.0 (a warning is logged).

    Raises:
        ValueError: on a duplicate ``(bag_key, relation)`` row, a NaN score, a malformed
            row, or a non-positive ``N`` in ``at``.
    """
    cutoffs = list(at)
    for n in cutoffs:
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ValueError(f"every N in `at` must be a positive int, got {n!r}")

    rows: list[tuple[Hashable, str, float]] = []
    seen: set[tuple[Hashable, str]] = set()
    for row in scored:
        if len(row) != 3:
            raise ValueError(f"scored row {row!r} is not (bag_key, relation, score)")
        bag, relation, score = row
        if relation == na:
            continue
        score = float(score)
        if math.isnan(score):
            raise ValueError(f"scored row for ({bag!r}, {relation!r}) has a NaN score")
        key = (bag, relation)
        if key in seen:
            raise ValueError(f"duplicate scored row for (bag_key, relation) = {key!r}")
        seen.add(key)
        rows.append((bag, relation, score))

    facts: set[tuple[Hashable, str]] = set()
    for fact in gold:
        if len(fact) != 2:
            raise ValueError(f"gold fact {fact!r} is not (bag_key, relation)")
        bag, relation = fact
        if relation != na:
            facts.add((bag, relation))
    n_gold = len(facts)

    rows.sort(key=lambda r: (-r[2], str(r[0]), r[1]))
    hits = np.fromiter(((b, r) in facts for b, r, _ in rows), dtype=np.float64, count=len(rows))
    correct = np.cumsum(hits)
    ranks = np.arange(1, len(rows) + 1, dtype=np.float64)
    precision = correct / ranks if rows else np.zeros(0)
    if n_gold:
        recall = correct / n_gold
        auc = _trapezoid_auc(recall, precision)
    else:
        logger.warning(
            "held-out evaluation has no gold facts (other than %r): recall and AUC are 0.0",
            na,
        )
        recall = np.zeros(len(rows))
        auc = 0.0

    precision_at = {n: float(precision[min(n, len(rows)) - 1]) if rows else 0.0 for n in cutoffs}
    return PRCurve(
        precision=tuple(float(p) for p in precision),
        recall=tuple(float(r) for r in recall),
        auc=auc,
        precision_at=precision_at,
        n_gold=n_gold,
        n_predictions=len(rows),
    )


# ------------------------------------------------------------------------- plotting


def plot_pr_curves(
    curves: Mapping[str, PRCurve],
    path: str | Path,
    title: str = "Held-out precision-recall",
) -> Path:
    """Draw one precision-recall line per curve into a PNG at ``path`` and return it.

    Lines are labelled ``"name (AUC 0.xxx)"``; recall is on x, precision on y, both from
    0 to 1.05. Parent directories are created. Uses matplotlib's object-oriented API with
    the Agg canvas, so no display and no pyplot global state is involved.

    Raises:
        ValueError: when ``curves`` is empty.
    """
    if not curves:
        raise ValueError("plot_pr_curves needs at least one curve, got none")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(6.4, 4.8))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, curve in curves.items():
        ax.plot(curve.recall, curve.precision, label=f"{name} (AUC {curve.auc:.3f})")
    ax.set_xlim(0.0, 1.05)
    ax.set_ylim(0.0, 1.05)
    ax.set_xlabel("Recall")
    ax.set_ylabel("Precision")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best")
    fig.savefig(out, format="png", dpi=100, bbox_inches="tight")
    fig.clear()
    logger.info("wrote precision-recall plot with %d curve(s) to %s", len(curves), out)
    return out
