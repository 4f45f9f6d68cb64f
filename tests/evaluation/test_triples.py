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
