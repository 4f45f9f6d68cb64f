"""xlre eval-projection on hand-made marked sentences, with eflomal and the combined aligner."""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from tests.helpers.tiny_models import build_tiny_xlmr
from xlre.cli import app

NAMES = ["Alice Martin", "Bob Stone", "Chloe Durand", "David Klein", "Emma Rossi",
         "Farid Haddad", "Greta Lund", "Hugo Petit"]
CITIES = ["Paris", "Berlin", "Madrid", "Lisbon", "Vienna", "Oslo", "Dublin", "Prague"]
EN = ["<e1> {n} </e1> lives in <e2> {c} </e2> .", "<e1> {n} </e1> was born in <e2> {c} </e2> .",
      "Last year <e1> {n} </e1> moved to <e2> {c} </e2> ."]
FR = ["<e1> {n} </e1> habite à <e2> {c} </e2> .", "<e1> {n} </e1> est né à <e2> {c} </e2> .",
      "L'an dernier <e1> {n} </e1> a déménagé à <e2> {c} </e2> ."]


def _write(tmp_path, n=200):
    rng = random.Random(0)
    en_lines, fr_lines = [], []
    for i in range(n):
        k, name, city = rng.randrange(3), rng.choice(NAMES), rng.choice(CITIES)
        label = "per:cities_of_residence(e1,e2)"
        en_lines += [f'{i}\t"{EN[k].format(n=name, c=city)}"', label, "", ""]
        fr_lines += [f'{i}\t"{FR[k].format(n=name, c=city)}"', label, "", ""]
    src, tgt = tmp_path / "gold_en.txt", tmp_path / "gold_fr.txt"
    src.write_text("\n".join(en_lines) + "\n", encoding="utf-8")
    tgt.write_text("\n".join(fr_lines) + "\n", encoding="utf-8")
    return src, tgt


@pytest.mark.parametrize("aligner", ["eflomal", "combined"])
def test_eval_projection_scores_marked_gold(tmp_path, aligner):
    src, tgt = _write(tmp_path)
    args = ["eval-projection", "--src", str(src), "--tgt", str(tgt), "--src-lang", "en",
            "--tgt-lang", "fr", "--aligner", aligner]
    if aligner == "combined":
        args += ["--model", str(build_tiny_xlmr(tmp_path / "tiny")), "--layer", "2",
                 "--symmetrize", "intersect"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert scores["pairs"] == 200
    # Names and cities are written the same in both languages: projection snaps to them.
    assert scores["entity_exact_f1"] > 0.9, scores
    assert 0.9 < scores["pairs_fully_projected"] <= 1.0
