"""The combined aligner: eflomal links plus the neural aligner's confident links."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alignment.aligners import get_aligner
from alignment.aligners.base import WordAligner
from alignment.aligners.combined import CombinedAligner
from alignment.aligners.neural import NeuralAligner
from alignment.records import Links
from tests.helpers.tiny_models import EN_FR_PAIRS, build_tiny_xlmr
from xlre.cli import app

PAIRS = [(en.split(), fr.split()) for en, fr in EN_FR_PAIRS[:12]]
SRC = [s for s, _ in PAIRS]
TGT = [t for _, t in PAIRS]


class DiagonalBase(WordAligner):
    """A deterministic stand-in for eflomal: links word k to word k, score 1.0."""

    name = "diagonal"
    needs_whole_corpus = True

    def align(self, src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]]) -> list[Links]:
        return [Links.from_pairs({(k, k): 1.0 for k in range(min(len(s), len(t)))},
                                 {(k, k): 1.0 for k in range(min(len(s), len(t)))})
                for s, t in zip(src, tgt, strict=True)]

    def align_stream(self, pairs: Iterable[tuple[Sequence[str], Sequence[str]]]) -> Iterator[Links]:
        pairs = list(pairs)
        return iter(self.align([p[0] for p in pairs], [p[1] for p in pairs]))


@pytest.fixture(scope="module")
def neural(tmp_path_factory):
    return NeuralAligner(str(build_tiny_xlmr(tmp_path_factory.mktemp("tiny"))), layer=2,
                         token_level="word")


def _pairs(links: Links) -> dict[tuple[int, int], float | None]:
    return {(k.src_tok, k.tgt_tok): k.score for k in links.links}


@pytest.mark.parametrize("confident", [0.0, 0.5, 0.9])
def test_union_of_base_and_confident_neural_links(neural, confident):
    combined = CombinedAligner(DiagonalBase(), neural, confident=confident)  # type: ignore[arg-type]
    got = combined.align(SRC, TGT)
    alone = neural.align(SRC, TGT)
    base = DiagonalBase().align(SRC, TGT)
    added = 0
    for g, n, b in zip(got, alone, base, strict=True):
        expected = {p: s for p, s in _pairs(n).items() if s is not None and s >= confident}
        added += len(set(expected) - set(_pairs(b)))
        expected.update(_pairs(b))  # the base's links keep their own score
        assert _pairs(g) == pytest.approx(expected)
    if confident == 0.0:
        assert added > 0  # the neural aligner did add links


def test_stream_equals_batch_and_keeps_order(neural):
    combined = CombinedAligner(DiagonalBase(), neural, confident=0.5, batch_size=5)  # type: ignore[arg-type]
    streamed = list(combined.align_stream(zip(SRC, TGT, strict=True)))
    assert streamed == combined.align(SRC, TGT)
    assert len(streamed) == len(PAIRS)


def test_threshold_is_checked(neural):
    with pytest.raises(ValueError, match="confident"):
        CombinedAligner(DiagonalBase(), neural, confident=1.5)  # type: ignore[arg-type]


def test_cli_align_combined_with_real_eflomal(toy_corpus, tmp_path):
    tiny = build_tiny_xlmr(tmp_path / "tiny")
    aligner = get_aligner("combined", neural={"model": str(tiny), "layer": 2}, confident=0.7)
    assert isinstance(aligner, CombinedAligner) and aligner.confident == 0.7
    out = tmp_path / "links.txt"
    result = CliRunner().invoke(app, [
        "align", "--corpus", str(toy_corpus), "--src-lang", "en", "--tgt-lang", "fr",
        "--out", str(out), "--aligner", "combined", "--model", str(tiny), "--layer", "2"])
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    assert len(lines) == 300 and all(lines)  # one non-empty line per input pair


def test_annotate_with_the_combined_aligner(tmp_path):
    from xlre.annotate import load_run, read_manifest

    demo = Path(__file__).resolve().parents[2] / "corpora" / "demo-en-fr"
    corpus = tmp_path / "c.tsv"
    with open(demo / "parallel.tsv", encoding="utf-8") as fh:
        corpus.write_text("".join(line for _, line in zip(range(150), fh, strict=False)))
    tiny = build_tiny_xlmr(tmp_path / "tiny")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, [
        "annotate", "--corpus", str(corpus), "--src-lang", "en", "--tgt-lang", "fr",
        "--kb", str(demo / "kb"), "--out", str(out), "--aligner", "combined",
        "--model", str(tiny), "--layer", "2", "--confident", "0.9"])
    assert result.exit_code == 0, result.output
    manifest = read_manifest(out)
    assert manifest["config"]["aligner"] == "combined"
    assert manifest["config"]["confident"] == 0.9
    assert sum(manifest["counts"]["projection"].values()) > 0
    run = load_run(out)
    assert len(run) == 300 and set(run["side"]) == {"src", "tgt"}
