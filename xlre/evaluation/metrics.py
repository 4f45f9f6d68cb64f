"""Evaluation metrics: entity spans and relation labels (held-out curves: :mod:`.heldout`).

Everything here is a pure function over plain Python values (plus numpy), so it can be
used from training, from ``xlre evaluate`` and from tests alike:

* :func:`bio_to_spans` turns BIO tags into ``(start, end_exclusive, type)`` spans with
  the conlleval conventions;
* :func:`entity_scores` scores predicted spans against gold spans (exact span and type);
* :func:`relation_scores` scores multi-label relation predictions per instance, with
  the ``NA`` label meaning "no relation";
* :func:`to_jsonable` turns the result objects into JSON-serialisable values.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, is_dataclass
from typing import Any

import numpy as np

from xlre.evaluation.heldout import PRCurve

logger = logging.getLogger(__name__)

Span = tuple[int, int, str]


@dataclass(frozen=True)
class PRF:
    """Precision, recall and F1 with the counts they come from.

    ``support`` is the number of gold items, ``predicted`` the number of predicted items
    and ``correct`` the number of predicted items that are also gold.
    """

    precision: float
    recall: float
    f1: float
    support: int
    predicted: int
    correct: int


# --------------------------------------------------------------------------- BIO tags


def _parse_tag(tag: object, position: int) -> tuple[str, str]:
    """Split one BIO tag into its prefix (``O``, ``B`` or ``I``) and entity type."""
    if not isinstance(tag, str):
        raise ValueError(f"BIO tag at position {position} is not a string: {tag!r}")
    if tag == "O":
        return "O", ""
    prefix, sep, entity_type = tag.partition("-")
    if sep != "-" or prefix not in ("B", "I") or not entity_type:
        raise ValueError(
            f"bad BIO tag {tag!r} at position {position}: expected 'O', 'B-<type>' or 'I-<type>'"
        )
    return prefix, entity_type


def bio_to_spans(tags: Sequence[str]) -> list[tuple[int, int, str]]:
    """Return the entity spans ``(start, end_exclusive, type)`` encoded by BIO ``tags``.

    Follows conlleval: ``B-X`` always starts a new span; ``I-X`` continues the open span
    when it has type ``X`` and otherwise (after ``O``, at the start, or after a span of
    another type) starts a new span of type ``X``. Spans come out in order of their start.

    Raises:
        ValueError: on a tag that is not ``O``, ``B-<type>`` or ``I-<type>``.
    """
    spans: list[Span] = []
    start: int | None = None
    current = ""
    for i, tag in enumerate(tags):
        prefix, entity_type = _parse_tag(tag, i)
        continues = prefix == "I" and start is not None and entity_type == current
        if continues:
            continue
        if start is not None:
            spans.append((start, i, current))
            start = None
        if prefix != "O":
            start, current = i, entity_type
    if start is not None:
        spans.append((start, len(tags), current))
    return spans


# ------------------------------------------------------------------------- P / R / F1


def prf(correct: int, predicted: int, gold: int) -> PRF:
    """Precision, recall and F1 from counts; a ratio with a zero denominator is 0.0.

    Raises:
        ValueError: on a negative count, or ``correct`` larger than ``predicted`` or
            ``gold``.
    """
    for name, value in (("correct", correct), ("predicted", predicted), ("gold", gold)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if correct > predicted or correct > gold:
        raise ValueError(f"correct={correct} cannot exceed predicted={predicted} or gold={gold}")
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return PRF(
        precision=precision,
        recall=recall,
        f1=f1,
        support=int(gold),
        predicted=int(predicted),
        correct=int(correct),
    )


def _check_same_length(gold: Sequence[Any], pred: Sequence[Any], what: str) -> None:
    if len(gold) != len(pred):
        raise ValueError(
            f"gold and pred must have the same number of {what}: "
            f"got {len(gold)} gold and {len(pred)} pred"
        )


def _span_set(spans: Iterable[tuple[int, int, str]], side: str, index: int) -> set[Span]:
    """The spans of one sentence as a set, each checked to be ``(start, end, type)``."""
    if isinstance(spans, str):
        raise ValueError(f"{side} sentence {index}: expected spans, got the string {spans!r}")
    out: set[Span] = set()
    for span in spans:
        if not isinstance(span, Sequence) or isinstance(span, str) or len(span) != 3:
            raise ValueError(f"{side} sentence {index}: span {span!r} is not (start, end, type)")
        start, end, entity_type = span
        if not isinstance(entity_type, str):
            raise ValueError(f"{side} sentence {index}: span {span!r} has a non-string type")
        out.add((int(start), int(end), entity_type))
    return out


def entity_scores(
    gold: Sequence[Iterable[tuple[int, int, str]]],
    pred: Sequence[Iterable[tuple[int, int, str]]],
) -> dict[str, Any]:
    """Score predicted entity spans against gold spans, sentence by sentence.

    A predicted span is correct when a gold span of the same sentence has the same start,
    end and type; repeated spans within a sentence count once.

    Returns:
        ``{"micro": PRF, "macro_f1": float, "per_type": {type: PRF}}``; ``per_type``
        covers every type seen in gold or pred, sorted by name, and ``macro_f1`` is the
        mean F1 over those types (0.0 when there are none).

    Raises:
        ValueError: when ``gold`` and ``pred`` differ in length or a span is malformed.
    """
    _check_same_length(gold, pred, "sentences")
    n_gold: dict[str, int] = {}
    n_pred: dict[str, int] = {}
    n_correct: dict[str, int] = {}
    for i, (gold_spans, pred_spans) in enumerate(zip(gold, pred, strict=True)):
        g = _span_set(gold_spans, "gold", i)
        p = _span_set(pred_spans, "pred", i)
        for _, _, t in g:
            n_gold[t] = n_gold.get(t, 0) + 1
        for _, _, t in p:
            n_pred[t] = n_pred.get(t, 0) + 1
        for _, _, t in g & p:
            n_correct[t] = n_correct.get(t, 0) + 1
    types = sorted(set(n_gold) | set(n_pred))
    per_type = {t: prf(n_correct.get(t, 0), n_pred.get(t, 0), n_gold.get(t, 0)) for t in types}
    micro = prf(sum(n_correct.values()), sum(n_pred.values()), sum(n_gold.values()))
    macro_f1 = float(np.mean([s.f1 for s in per_type.values()])) if per_type else 0.0
    return {"micro": micro, "macro_f1": macro_f1, "per_type": per_type}


# -------------------------------------------------------------------------- relations


def _label_set(labels: Iterable[str], na: str, side: str, index: int) -> set[str]:
    """The labels of one instance as a set without ``na``."""
    if isinstance(labels, str):
        raise ValueError(
            f"{side} instance {index}: expected a collection of labels, got the string "
            f"{labels!r} (wrap it in a list)"
        )
    out: set[str] = set()
    for label in labels:
        if not isinstance(label, str):
            raise ValueError(f"{side} instance {index}: label {label!r} is not a string")
        if label != na:
            out.add(label)
    return out


def relation_scores(
    gold: Sequence[Iterable[str]],
    pred: Sequence[Iterable[str]],
    na: str = "NA",
) -> dict[str, Any]:
    """Score multi-label relation predictions instance by instance.

    Each instance has a set of gold labels and a set of predicted labels; ``na`` is
    removed from both before counting, so an instance labelled only ``na`` has no gold
    relation and predicting ``na`` predicts nothing.

    Returns:
        ``{"micro": PRF, "macro_f1": float, "per_relation": {relation: PRF}}``;
        ``per_relation`` covers every non-``na`` relation seen in gold or pred, sorted,
        and ``macro_f1`` is the mean F1 over the relations with gold support (0.0 when
        there are none).

    Raises:
        ValueError: when ``gold`` and ``pred`` differ in length, or an instance's labels
            are a bare string or hold a non-string.
    """
    _check_same_length(gold, pred, "instances")
    n_gold: dict[str, int] = {}
    n_pred: dict[str, int] = {}
    n_correct: dict[str, int] = {}
    for i, (gold_labels, pred_labels) in enumerate(zip(gold, pred, strict=True)):
        g = _label_set(gold_labels, na, "gold", i)
        p = _label_set(pred_labels, na, "pred", i)
        for r in g:
            n_gold[r] = n_gold.get(r, 0) + 1
        for r in p:
            n_pred[r] = n_pred.get(r, 0) + 1
        for r in g & p:
            n_correct[r] = n_correct.get(r, 0) + 1
    relations = sorted(set(n_gold) | set(n_pred))
    per_relation = {
        r: prf(n_correct.get(r, 0), n_pred.get(r, 0), n_gold.get(r, 0)) for r in relations
    }
    micro = prf(sum(n_correct.values()), sum(n_pred.values()), sum(n_gold.values()))
    supported = [s.f1 for s in per_relation.values() if s.support > 0]
    macro_f1 = float(np.mean(supported)) if supported else 0.0
    return {"micro": micro, "macro_f1": macro_f1, "per_relation": per_relation}


def directed_type_scores(
    gold: Sequence[str], pred: Sequence[str], negative: str = "no_relation"
) -> dict[str, Any]:
    """The KBP37 / RELX relation score: one directed label per sentence.

    Labels look like ``per:employee_of(e1,e2)``; ``negative`` means no relation. For each
    relation type (the label without its direction), precision, recall and F1 are micro
    over its two directed labels: a prediction is correct only with the right type *and*
    direction. ``macro_f1`` is the mean F1 over the types with gold support.

    Returns ``{"macro_f1": float, "micro": PRF, "per_type": {type: PRF}}``.
    """
    _check_same_length(gold, pred, "sentences")

    def rel_type(label: str) -> str:
        return label.split("(", 1)[0]

    n_gold: dict[str, int] = {}
    n_pred: dict[str, int] = {}
    n_correct: dict[str, int] = {}
    for g, p in zip(gold, pred, strict=True):
        if g != negative:
            n_gold[rel_type(g)] = n_gold.get(rel_type(g), 0) + 1
        if p != negative:
            n_pred[rel_type(p)] = n_pred.get(rel_type(p), 0) + 1
            if p == g:
                n_correct[rel_type(p)] = n_correct.get(rel_type(p), 0) + 1
    types = sorted(set(n_gold) | set(n_pred))
    per_type = {t: prf(n_correct.get(t, 0), n_pred.get(t, 0), n_gold.get(t, 0)) for t in types}
    micro = prf(sum(n_correct.values()), sum(n_pred.values()), sum(n_gold.values()))
    supported = [s.f1 for s in per_type.values() if s.support > 0]
    return {"macro_f1": float(np.mean(supported)) if supported else 0.0, "micro": micro,
            "per_type": per_type}


# ----------------------------------------------------------------------------- JSON


def to_jsonable(obj: Any) -> Any:
    """Turn metric results into JSON-serialisable values.

    A :class:`PRCurve` becomes ``{"auc", "precision_at": {"P@N": ...}, "n_gold",
    "n_predictions"}`` (the curve arrays are left out: they can be long); a :class:`PRF`
    or any other dataclass becomes a dict of its fields; mappings become dicts with
    string keys, lists, tuples and sets become lists, numpy scalars and arrays become
    Python numbers and lists. Other values are returned unchanged.
    """
    if isinstance(obj, PRCurve):
        return {
            "auc": float(obj.auc),
            "precision_at": {f"P@{n}": float(p) for n, p in obj.precision_at.items()},
            "n_gold": int(obj.n_gold),
            "n_predictions": int(obj.n_predictions),
        }
    if isinstance(obj, PRF):
        return {key: to_jsonable(value) for key, value in asdict(obj).items()}
    if is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, Mapping):
        return {str(key): to_jsonable(value) for key, value in obj.items()}
    if isinstance(obj, np.ndarray):
        return [to_jsonable(value) for value in obj.tolist()]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(value) for value in obj]
    if isinstance(obj, (set, frozenset)):
        return sorted((to_jsonable(value) for value in obj), key=repr)
    return obj
