from __future__ import annotations

import itertools
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from xlre.evaluation.heldout import PRCurve, heldout_pr, plot_pr_curves
from xlre.evaluation.metrics import (
    PRF,
    bio_to_spans,
    entity_scores,
    prf,
    relation_scores,
    to_jsonable,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------------ bio_to_spans


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ([], []),
        (["O", "O"], []),
        (["B-PER", "I-PER", "O", "B-LOC"], [(0, 2, "PER"), (3, 4, "LOC")]),
        # conlleval: I- after O opens a new span of that type
        (["O", "I-ORG", "I-ORG", "O"], [(1, 3, "ORG")]),
        # I- as the very first tag also opens a span
        (["I-PER"], [(0, 1, "PER")]),
        # type switch inside a span: I-LOC after B-PER closes PER and opens LOC
        (["B-PER", "I-LOC", "I-LOC"], [(0, 1, "PER"), (1, 3, "LOC")]),
        # B- always starts a new span, even of the same type
        (["B-PER", "B-PER", "I-PER"], [(0, 1, "PER"), (1, 3, "PER")]),
        # a span running to the end of the sentence; types may contain '-'
        (["O", "B-WORK-OF-ART", "I-WORK-OF-ART"], [(1, 3, "WORK-OF-ART")]),
    ],
)
def test_bio_to_spans(tags: list[str], expected: list[tuple[int, int, str]]) -> None:
    assert bio_to_spans(tags) == expected


@pytest.mark.parametrize("bad", ["X-PER", "B", "B-", "I-", "o", "", "E-PER", "BPER"])
def test_bio_to_spans_rejects_bad_tag(bad: str) -> None:
    with pytest.raises(ValueError, match="bad BIO tag") as info:
        bio_to_spans(["O", "B-PER", bad])
    assert repr(bad) in str(info.value)
    assert "position 2" in str(info.value)


# -------------------------------------------------------------------------------- prf


def test_prf_counts_and_zero_denominators() -> None:
    # P = 2/4 = 0.5, R = 2/5 = 0.4, F1 = 2 * 0.2 / 0.9 = 4/9
    s = prf(2, 4, 5)
    assert s == PRF(
        precision=0.5, recall=0.4, f1=pytest.approx(4 / 9), support=5, predicted=4, correct=2
    )
    assert prf(0, 0, 0) == PRF(0.0, 0.0, 0.0, 0, 0, 0)
    # nothing predicted: precision 0 (not NaN), recall 0
    assert prf(0, 0, 3) == PRF(0.0, 0.0, 0.0, 3, 0, 0)
    # predicted but no gold: recall 0
    assert prf(0, 2, 0) == PRF(0.0, 0.0, 0.0, 0, 2, 0)


def test_prf_rejects_bad_counts() -> None:
    with pytest.raises(ValueError, match="predicted"):
        prf(1, -1, 3)
    with pytest.raises(ValueError, match="correct=3"):
        prf(3, 2, 5)


# ----------------------------------------------------------------------- entity_scores


def test_entity_scores_micro_and_per_type() -> None:
    gold = [
        [(0, 2, "PER"), (3, 4, "LOC")],
        [(1, 3, "ORG")],
    ]
    pred = [
        [(0, 2, "PER"), (3, 4, "ORG")],  # PER right; (3, 4) has the wrong type
        [(1, 2, "ORG"), (5, 6, "LOC")],  # ORG boundary error; spurious LOC
    ]
    scores = entity_scores(gold, pred)
    # gold 3, predicted 4, correct 1 (only PER):
    # P = 1/4, R = 1/3, F1 = 2 * (1/12) / (7/12) = 2/7
    micro = scores["micro"]
    assert (micro.correct, micro.predicted, micro.support) == (1, 4, 3)
    assert micro.precision == pytest.approx(0.25)
    assert micro.recall == pytest.approx(1 / 3)
    assert micro.f1 == pytest.approx(2 / 7)
    per_type = scores["per_type"]
    assert list(per_type) == ["LOC", "ORG", "PER"]
    # LOC: gold (3,4) in s0, pred (5,6) in s1 -> 0 of 1 predicted, 0 of 1 gold
    assert per_type["LOC"] == PRF(0.0, 0.0, 0.0, support=1, predicted=1, correct=0)
    # ORG: gold (1,3); pred (3,4) [wrong type] and (1,2) [boundary] -> 0 of 2
    assert per_type["ORG"] == PRF(0.0, 0.0, 0.0, support=1, predicted=2, correct=0)
    assert per_type["PER"] == PRF(1.0, 1.0, 1.0, support=1, predicted=1, correct=1)
    # macro over the three types: (0 + 0 + 1) / 3
    assert scores["macro_f1"] == pytest.approx(1 / 3)


def test_entity_scores_match_within_sentence_only() -> None:
    # the predicted span matches gold of the *other* sentence -> no credit
    scores = entity_scores([[(0, 1, "PER")], []], [[], [(0, 1, "PER")]])
    assert scores["micro"] == PRF(0.0, 0.0, 0.0, support=1, predicted=1, correct=0)


def test_entity_scores_empty_and_errors() -> None:
    empty = entity_scores([[], []], [[], []])
    assert empty["per_type"] == {}
    assert empty["macro_f1"] == 0.0
    assert empty["micro"] == PRF(0.0, 0.0, 0.0, 0, 0, 0)
    with pytest.raises(ValueError, match="2 gold and 1 pred"):
        entity_scores([[], []], [[]])
    with pytest.raises(ValueError, match="not \\(start, end, type\\)"):
        entity_scores([[(0, 1)]], [[]])


# --------------------------------------------------------------------- relation_scores


def test_relation_scores_na_multilabel_and_macro() -> None:
    gold = [["P1"], ["P1", "P2"], ["NA"], ["P3"], ["P2"]]
    pred = [["P1"], ["P1"], ["P4"], ["NA"], ["P2", "NA"]]
    # per instance (NA dropped):
    #   0: g{P1}    p{P1}  -> P1 correct
    #   1: g{P1,P2} p{P1}  -> P1 correct, P2 missed
    #   2: g{}      p{P4}  -> P4 spurious (gold NA adds nothing to gold)
    #   3: g{P3}    p{}    -> P3 missed (predicting NA predicts nothing)
    #   4: g{P2}    p{P2}  -> P2 correct
    # micro: gold 5, predicted 4, correct 3 -> P 0.75, R 0.6, F1 = 0.9 / 1.35 = 2/3
    scores = relation_scores(gold, pred)
    micro = scores["micro"]
    assert (micro.correct, micro.predicted, micro.support) == (3, 4, 5)
    assert micro.precision == pytest.approx(0.75)
    assert micro.recall == pytest.approx(0.6)
    assert micro.f1 == pytest.approx(2 / 3)
    per = scores["per_relation"]
    assert list(per) == ["P1", "P2", "P3", "P4"]  # no NA
    assert per["P1"] == PRF(1.0, 1.0, 1.0, support=2, predicted=2, correct=2)
    # P2: 1 of 1 predicted right, 1 of 2 gold found -> F1 = 2 * 0.5 / 1.5 = 2/3
    assert per["P2"].precision == 1.0
    assert per["P2"].recall == 0.5
    assert per["P2"].f1 == pytest.approx(2 / 3)
    assert per["P3"] == PRF(0.0, 0.0, 0.0, support=1, predicted=0, correct=0)
    assert per["P4"] == PRF(0.0, 0.0, 0.0, support=0, predicted=1, correct=0)
    # macro over supported relations P1, P2, P3 only: (1 + 2/3 + 0) / 3 = 5/9
    # (including the unsupported P4 would give 5/12)
    assert scores["macro_f1"] == pytest.approx(5 / 9)


def test_relation_scores_custom_na_and_no_support() -> None:
    scores = relation_scores([["no_relation"]], [["no_relation", "P1"]], na="no_relation")
    assert list(scores["per_relation"]) == ["P1"]
    assert scores["micro"] == PRF(0.0, 0.0, 0.0, support=0, predicted=1, correct=0)
    assert scores["macro_f1"] == 0.0  # no relation has gold support


def test_relation_scores_errors() -> None:
    with pytest.raises(ValueError, match="1 gold and 2 pred"):
        relation_scores([["P1"]], [["P1"], ["NA"]])
    with pytest.raises(ValueError, match="'P1'"):
        relation_scores(["P1"], [["P1"]])  # a bare string, not a collection of labels


# -------------------------------------------------------------------------- heldout_pr

HELDOUT_SCORED = [
    ("b1", "NA", 0.99),  # NA rows are ignored
    ("b3", "P1", 0.5),
    ("b1", "P1", 0.9),
    ("b2", "P2", 0.7),
    ("b2", "P1", 0.8),
    ("b3", "P2", 0.6),
]
# (b9, P3) is never scored but still counts towards recall; NA facts are ignored
HELDOUT_GOLD = [("b1", "P1"), ("b2", "P2"), ("b3", "P1"), ("b9", "P3"), ("b4", "NA")]


def test_heldout_pr_curve_and_auc() -> None:
    curve = heldout_pr(HELDOUT_SCORED, HELDOUT_GOLD, at=(1, 3, 10))
    # ranked: b1/P1 (hit), b2/P1, b2/P2 (hit), b3/P2, b3/P1 (hit); n_gold = 4
    # correct so far: 1, 1, 2, 2, 3
    assert curve.n_gold == 4
    assert curve.n_predictions == 5
    assert curve.precision == pytest.approx((1.0, 1 / 2, 2 / 3, 1 / 2, 3 / 5))
    assert curve.recall == pytest.approx((0.25, 0.25, 0.5, 0.5, 0.75))
    # trapezoids between consecutive (recall, precision) points:
    #   0.25 * (1/2 + 2/3) / 2 = 7/48   and   0.25 * (1/2 + 3/5) / 2 = 11/80
    #   (the other steps have no recall change) -> 7/48 + 11/80 = 68/240 = 17/60
    assert curve.auc == pytest.approx(17 / 60)
    # P@10 goes past the 5 predictions -> precision after all 5
    assert curve.precision_at == pytest.approx({1: 1.0, 3: 2 / 3, 10: 3 / 5})
    assert list(curve.precision_at) == [1, 3, 10]


def test_heldout_pr_default_cutoffs() -> None:
    curve = heldout_pr(HELDOUT_SCORED, HELDOUT_GOLD)
    assert curve.precision_at == pytest.approx({100: 0.6, 200: 0.6, 300: 0.6})


def test_heldout_pr_ties_are_deterministic() -> None:
    rows = [("b2", "P1", 0.5), ("b1", "P2", 0.5), ("b1", "P1", 0.5), ("b10", "P1", 0.5)]
    gold = [("b1", "P2")]
    # tie order by (str(bag), relation): b1/P1, b1/P2 (hit), b10/P1, b2/P1
    # -> precision 0, 1/2, 1/3, 1/4; recall 0, 1, 1, 1; AUC = 1 * (0 + 1/2) / 2 = 1/4
    expected = (0.0, 1 / 2, 1 / 3, 1 / 4)
    for perm in itertools.permutations(rows):
        curve = heldout_pr(perm, gold, at=(1, 2))
        assert curve.precision == pytest.approx(expected)
        assert curve.recall == pytest.approx((0.0, 1.0, 1.0, 1.0))
        assert curve.auc == pytest.approx(0.25)
        assert curve.precision_at == pytest.approx({1: 0.0, 2: 0.5})


def test_heldout_pr_ties_use_str_of_bag_key() -> None:
    # int keys compare as strings: "10" < "9", so bag 10 ranks first -> precision 0, 1/2
    curve = heldout_pr([(9, "P1", 1.0), (10, "P1", 1.0)], [(9, "P1")])
    assert curve.precision == pytest.approx((0.0, 0.5))
    # a higher score still wins over the tie-break
    curve = heldout_pr([(9, "P1", 1.0), (10, "P1", 0.5)], [(9, "P1")])
    assert curve.precision == pytest.approx((1.0, 0.5))


def test_heldout_pr_duplicate_row() -> None:
    with pytest.raises(ValueError, match=r"duplicate.*'b1', 'P1'"):
        heldout_pr([("b1", "P1", 0.9), ("b2", "P1", 0.4), ("b1", "P1", 0.3)], [])


def test_heldout_pr_no_gold(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="xlre.evaluation.heldout"):
        curve = heldout_pr([("b1", "P1", 0.9), ("b2", "P2", 0.1)], [("b1", "NA")], at=(1,))
    assert curve.n_gold == 0
    assert curve.recall == (0.0, 0.0)
    assert curve.precision == (0.0, 0.0)
    assert curve.auc == 0.0
    assert curve.precision_at == {1: 0.0}
    assert any("no gold facts" in r.getMessage() for r in caplog.records)


def test_heldout_pr_no_predictions_and_bad_input() -> None:
    curve = heldout_pr([("b1", "NA", 0.9)], [("b1", "P1")], at=(5,))
    assert (curve.n_predictions, curve.n_gold) == (0, 1)
    assert curve.precision == () and curve.recall == ()
    assert curve.auc == 0.0
    assert curve.precision_at == {5: 0.0}
    with pytest.raises(ValueError, match="NaN"):
        heldout_pr([("b1", "P1", float("nan"))], [])
    with pytest.raises(ValueError, match="positive int, got 0"):
        heldout_pr([], [], at=(0,))


# ----------------------------------------------------------------------- plot and JSON


def test_plot_pr_curves_writes_png(tmp_path: Path) -> None:
    a = heldout_pr(HELDOUT_SCORED, HELDOUT_GOLD)
    b = heldout_pr([("b1", "P1", 0.2), ("b2", "P2", 0.1)], HELDOUT_GOLD)
    target = tmp_path / "plots" / "nested" / "pr.png"
    out = plot_pr_curves({"model-a": a, "model-b": b}, str(target), title="test")
    assert out == target
    data = target.read_bytes()
    assert data.startswith(PNG_MAGIC)
    assert len(data) > 1000
    with pytest.raises(ValueError, match="at least one curve"):
        plot_pr_curves({}, tmp_path / "empty.png")


def test_to_jsonable() -> None:
    curve = heldout_pr(HELDOUT_SCORED, HELDOUT_GOLD, at=(1, 3))
    ents = entity_scores([[(0, 1, "PER")]], [[(0, 1, "PER")]])
    out = to_jsonable({"entities": ents, "heldout": curve, "n": np.int64(3)})
    assert out["heldout"] == {
        "auc": pytest.approx(17 / 60),
        "precision_at": {"P@1": 1.0, "P@3": pytest.approx(2 / 3)},
        "n_gold": 4,
        "n_predictions": 5,
    }
    assert out["entities"]["micro"] == {
        "precision": 1.0,
        "recall": 1.0,
        "f1": 1.0,
        "support": 1,
        "predicted": 1,
        "correct": 1,
    }
    assert out["entities"]["per_type"]["PER"]["f1"] == 1.0
    assert out["n"] == 3 and type(out["n"]) is int
    # round-trips through json without a custom encoder
    assert json.loads(json.dumps(out))["heldout"]["n_gold"] == 4
    assert isinstance(curve, PRCurve)


def test_best_micro_threshold_is_the_exact_optimum() -> None:
    from xlre.evaluation import best_micro_threshold

    gen = torch.Generator().manual_seed(3)
    probs = torch.rand((40, 5), generator=gen).round(decimals=2).tolist()  # ties included
    gold = [[r for r in range(5) if (i * 7 + r) % 4 == 0] for i in range(40)]

    def micro_f1(t: float) -> float:
        tp = sum(1 for i, row in enumerate(probs) for r, p in enumerate(row) if p >= t and r in gold[i])
        pred = sum(1 for row in probs for p in row if p >= t)
        n_gold = sum(len(g) for g in gold)
        return 2 * tp / (pred + n_gold)

    t, f1 = best_micro_threshold(probs, gold)
    brute = max({p for row in probs for p in row}, key=micro_f1)
    assert f1 == pytest.approx(micro_f1(brute))
    assert f1 == pytest.approx(micro_f1(t))
    assert f1 > micro_f1(0.5)  # the data are built so that 0.5 is not the best cut
    assert best_micro_threshold([[0.2, 0.9]], [[]]) == (1.0, 0.0)


def test_choose_threshold_marked_grid_micro_and_no_basis() -> None:
    from xlre.evaluation import choose_threshold

    marked = {"marked_f1_at_threshold": {"0.3": 0.6, "0.45": 0.7, "0.6": 0.7},
              "relation_best_threshold": {"threshold": 0.2, "micro_f1": 0.9}}
    assert choose_threshold(marked) == (0.45, 0.7)  # gold beats distant; ties: nearest 0.5
    assert choose_threshold({"relation_best_threshold": {"threshold": 0.2, "micro_f1": 0.4}}) == (
        0.2, 0.4)
    assert choose_threshold({"relation_best_threshold": {"threshold": 1.0, "micro_f1": 0.0}}) is None
    assert choose_threshold({"entity_f1": 0.5}) is None
