"""Scoring extracted triples against gold triples."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from xlre.cli import app
from xlre.evaluation.triples import ScoreError, score_triples
from xlre.records import Argument, Evidence, Triple


def _t(doc, lang, s, s_id, r, o, o_id):
    return Triple(Argument(s, 0, len(s), s_id, "LOC"), r, Argument(o, 0, len(o), o_id, "LOC"),
                  0.9, Evidence(doc, "...", lang, "m"))


def test_scores_per_language_by_id_or_text(tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text("\n".join(json.dumps(x) for x in [
        {"id": "d1", "lang": "en", "text": "...", "triples": [
            {"subject": "Q456", "relation": "P17", "object": "Q142"},
            {"subject": "Acme", "relation": "P159", "object": "Q90"}]},
        {"id": "d1", "lang": "fr", "text": "...", "triples": [
            {"subject": "Q456", "relation": "P17", "object": "Q142"}]},
        {"id": "d2", "lang": "en", "text": "...", "triples": []},
    ]) + "\n")
    pred = [
        _t("d1", "en", "Lyon", "Q456", "P17", "France", "Q142"),   # correct by id
        _t("d1", "en", "Lyon", "Q456", "P17", "France", "Q142"),   # the same again: once
        _t("d1", "en", "ACME", None, "P159", "Paris", "Q90"),      # correct by text
        _t("d1", "fr", "Lyon", "Q456", "P36", "France", "Q142"),   # wrong relation
        _t("d2", "en", "Lyon", "Q456", "P17", "France", "Q142"),   # no fact stated there
        _t("d9", "en", "Lyon", "Q456", "P17", "France", "Q142"),   # not in the gold
    ]
    triples = tmp_path / "t.jsonl"
    triples.write_text("".join(json.dumps(t.to_json()) + "\n" for t in pred))
    result = score_triples(gold, [triples])
    # en: 2 correct of 3 predicted (d1 twice counted once, d2 wrong), 2 gold.
    assert result["en"] == {"precision": pytest.approx(0.6667, abs=1e-4), "recall": 1.0,
                            "f1": 0.8, "correct": 2, "predicted": 3, "gold": 2}
    assert result["fr"]["correct"] == 0 and result["fr"]["predicted"] == 1
    assert result["all"]["gold"] == 3 and result["all"]["correct"] == 2
    assert result["ignored_predictions"] == 1
    res = CliRunner().invoke(app, ["score", "--gold", str(gold), "--triples", str(triples)])
    assert res.exit_code == 0 and json.loads(res.stdout)["en"]["correct"] == 2


def test_bad_gold_names_the_line(tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text('{"id": "d1", "lang": "en", "triples": []}\n{"id": "d2"}\n')
    with pytest.raises(ScoreError, match=r"gold\.jsonl:2: not a gold document"):
        score_triples(gold, [])


def test_one_gold_fact_is_credited_to_one_prediction(tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        "\n".join(
            json.dumps(x)
            for x in [
                {
                    "id": "d1",
                    "lang": "en",
                    "text": "...",
                    "triples": [{"subject": "Q90", "relation": "P17", "object": "Q142"}],
                },
                # The subject as text: a linked and an unlinked Paris both match it.
                {
                    "id": "d2",
                    "lang": "en",
                    "text": "...",
                    "triples": [{"subject": "Paris", "relation": "P17", "object": "Q142"}],
                },
                # Two facts that the linked prediction matches both: the unlinked one, which
                # matches only the second, gets it (the most pairs, one each side).
                {
                    "id": "d3",
                    "lang": "en",
                    "text": "...",
                    "triples": [
                        {"subject": "Q90", "relation": "P17", "object": "Q142"},
                        {"subject": "paris", "relation": "P17", "object": "France"},
                    ],
                },
            ]
        )
        + "\n"
    )
    pred = [
        _t("d1", "en", "Paris", "Q90", "P17", "France", "Q142"),  # by KB id
        _t("d1", "en", "Paris", None, "P17", "France", "Q142"),  # unlinked: no match
        _t("d2", "en", "Paris", "Q90", "P17", "France", "Q142"),  # by text
        _t("d2", "en", "paris", None, "P17", "France", "Q142"),  # the same fact again
        _t("d3", "en", "Paris", "Q90", "P17", "France", "Q142"),
        _t("d3", "en", "Paris", None, "P17", "France", None),
    ]
    triples = tmp_path / "t.jsonl"
    triples.write_text("".join(json.dumps(t.to_json()) + "\n" for t in pred))
    for doc, correct, predicted in (("d1", 1, 2), ("d2", 1, 2), ("d3", 2, 2)):
        one = tmp_path / f"{doc}.jsonl"
        one.write_text(
            "".join(x for x in triples.read_text().splitlines(keepends=True) if f'"{doc}"' in x)
        )
        result = score_triples(gold, [one])["en"]
        assert (result["correct"], result["predicted"]) == (correct, predicted), doc
    result = score_triples(gold, [triples])["en"]
    assert (result["correct"], result["predicted"], result["gold"]) == (4, 6, 4)
    assert result["precision"] <= 1.0 and result["recall"] == 1.0
