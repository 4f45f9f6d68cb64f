"""Scores: metrics, model evaluation, triple scoring and projection evaluation.

* :mod:`~xlre.evaluation.metrics`: P/R/F1 of entities and relations;
* :mod:`~xlre.evaluation.heldout`: held-out precision-recall curves and their plot;
* :mod:`~xlre.evaluation.model_eval`: a trained model on a run's split or on gold marked
  sentences (``xlre evaluate``; training evaluates dev with it each epoch);
* :mod:`~xlre.evaluation.triples`: extracted triples against gold triples (``xlre score``);
* :mod:`~xlre.evaluation.projection`: projection on gold marked sentences
  (``xlre eval-projection``), through the projection annotation runs use.
"""

from xlre.evaluation.heldout import PRCurve, heldout_pr, plot_pr_curves
from xlre.evaluation.metrics import (
    PRF,
    bio_to_spans,
    directed_type_scores,
    entity_scores,
    prf,
    relation_scores,
    to_jsonable,
)
from xlre.evaluation.model_eval import (
    ALL,
    MARKED_THRESHOLDS,
    EvaluateError,
    best_micro_threshold,
    choose_threshold,
    eval_loader,
    evaluate_model,
    evaluate_split,
    headline,
    predict_rows,
    predict_split,
    score_split,
    write_pr_png,
)
from xlre.evaluation.projection import (
    GoldProjection,
    evaluate_projection,
    project_gold,
    score_projection,
)
from xlre.evaluation.triples import ScoreError, read_gold, score_triples

__all__ = [
    "ALL",
    "MARKED_THRESHOLDS",
    "PRF",
    "EvaluateError",
    "GoldProjection",
    "PRCurve",
    "ScoreError",
    "best_micro_threshold",
    "bio_to_spans",
    "choose_threshold",
    "directed_type_scores",
    "entity_scores",
    "eval_loader",
    "evaluate_model",
    "evaluate_projection",
    "evaluate_split",
    "headline",
    "heldout_pr",
    "plot_pr_curves",
    "predict_rows",
    "predict_split",
    "prf",
    "project_gold",
    "read_gold",
    "relation_scores",
    "score_projection",
    "score_split",
    "score_triples",
    "to_jsonable",
    "write_pr_png",
]
