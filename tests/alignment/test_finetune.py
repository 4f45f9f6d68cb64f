"""awesome-align's softmax extraction and self-training fine-tuning, on a tiny random XLM-R."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from alignment.aligners.base import AlignerError
from alignment.aligners.neural import NeuralAligner
from alignment.aligners.similarity import softmax_scores
from alignment.finetune import TUNE_INFO, TuneConfig, fine_tune, pair_loss
from tests.helpers.tiny_models import EN_FR_PAIRS, build_tiny_xlmr

PAIRS = [(en.split(), fr.split()) for en, fr in EN_FR_PAIRS[:24]]
SRC = [s for s, _ in PAIRS]
TGT = [t for _, t in PAIRS]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_xlmr(tmp_path_factory.mktemp("tiny-xlmr-tune"))


def test_softmax_scores_are_both_directions() -> None:
    # Row 0 prefers column 0 strongly; column 1 is claimed by both rows about equally.
    dot = np.array([[10.0, 2.0], [0.0, 2.1]])
    scores = softmax_scores(dot)
    fwd = np.exp(dot) / np.exp(dot).sum(axis=1, keepdims=True)
    bwd = np.exp(dot) / np.exp(dot).sum(axis=0, keepdims=True)
    assert np.allclose(scores, np.minimum(fwd, bwd), atol=1e-6)
    links = scores >= 0.4
    assert links.tolist() == [[True, False], [False, True]]
    assert softmax_scores(np.zeros((0, 3))).shape == (0, 3)


def test_softmax_method_links_one_word_to_several(tiny_dir: Path) -> None:
    aligner = NeuralAligner(str(tiny_dir), layer=2, method="softmax", threshold=0.05, device="cpu")
    links = aligner.align(SRC, TGT)
    assert all(0.05 <= link.score <= 1.0 for lk in links for link in lk)
    loose = NeuralAligner(str(tiny_dir), layer=2, method="softmax", threshold=0.001, device="cpu")
    more = loose.align(SRC, TGT)
    # A lower threshold keeps every link and adds some.
    assert all(lk.pairs() <= mk.pairs() for lk, mk in zip(links, more, strict=True))
    assert sum(map(len, more)) > sum(map(len, links))
    with pytest.raises(ValueError, match="threshold"):
        NeuralAligner(str(tiny_dir), layer=2, method="softmax", threshold=1.5)


def test_pair_loss_rewards_sharper_self_links() -> None:
    x = torch.eye(3) * 3
    loose = pair_loss(x, x.clone(), 1e-3, "argmax")
    sharp = pair_loss(x * 3, x.clone() * 3, 1e-3, "argmax")
    assert loose is not None and sharp is not None and float(sharp) < float(loose)
    # No link reaches the threshold: nothing to learn from.
    assert pair_loss(torch.zeros(4, 2), torch.zeros(5, 2), 0.5, "softmax") is None


def test_fine_tune_writes_a_loadable_encoder_that_changed(tiny_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "tuned"
    long_src = [*SRC, ["word"] * 300]  # over max_subwords: left out and counted, not cut
    summary = fine_tune(str(tiny_dir), long_src, [*TGT, ["mot"]], out,
                        TuneConfig(layer=2, epochs=2, batch_size=4, lr=1e-3, max_subwords=64))
    assert (summary.pairs, summary.trained_pairs, summary.too_long) == (25, 24, 1)
    assert summary.steps == 2 * 6
    info = json.loads((out / TUNE_INFO).read_text())
    assert info["layer"] == 2 and info["base_model"] == str(tiny_dir)
    assert not (tmp_path / "tuned.partial").exists()
    base = NeuralAligner(str(tiny_dir), layer=2, device="cpu").encode(SRC[:3])
    tuned_aligner = NeuralAligner(str(out), layer=2, device="cpu")
    tuned = tuned_aligner.encode(SRC[:3])
    assert any(not torch.allclose(a, b) for a, b in zip(base, tuned, strict=True))
    # All layers were saved, not only those up to the training layer.
    from transformers import AutoConfig

    assert AutoConfig.from_pretrained(out).num_hidden_layers == AutoConfig.from_pretrained(
        tiny_dir).num_hidden_layers
    assert len(tuned_aligner.align(SRC, TGT)) == len(SRC)


def test_fine_tune_refuses_a_non_empty_output(tiny_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(AlignerError, match="not an empty directory"):
        fine_tune(str(tiny_dir), SRC, TGT, tmp_path, TuneConfig(layer=2))
    with pytest.raises(ValueError, match="guide"):
        fine_tune(str(tiny_dir), SRC, TGT, tmp_path / "new", TuneConfig(guide="nope"))


def test_align_tune_cli_then_align_with_softmax(tiny_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from xlre.cli import app

    corpus = tmp_path / "c.tsv"
    corpus.write_text("".join(f"{en}\t{fr}\n" for en, fr in EN_FR_PAIRS[:12]) + "one side only\n",
                      encoding="utf-8")
    runner = CliRunner()
    out = tmp_path / "enc"
    args = ["align-tune", "--corpus", str(corpus), "--src-lang", "en", "--tgt-lang", "fr",
            "--model", str(tiny_dir), "--layer", "2", "--out", str(out), "--pretokenized"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "c.tsv:13:" in result.output  # the bad line, named
    result = runner.invoke(app, [*args, "--skip-bad", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    assert '"trained_pairs": 12' in result.output and '"steps": 3' in result.output
    links = tmp_path / "c.links"
    result = runner.invoke(app, [
        "align", "--corpus", str(corpus), "--src-lang", "en", "--tgt-lang", "fr", "--pretokenized",
        "--aligner", "simalign", "--model", str(out), "--layer", "2", "--method", "softmax",
        "--threshold", "0.01", "--out", str(links), "--skip-bad"])
    assert result.exit_code == 0, result.output
    lines = links.read_text(encoding="utf-8").split("\n")[:-1]
    assert len(lines) == 13 and lines[-1] == "" and all(lines[:12])
