"""Extra corpora are tokenised as their own layout says; eflomal's training forms."""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alignment.aligners.base import WordAligner
from alignment.aligners.eflomal import EflomalAligner
from alignment.corpus import ParallelCorpus
from alignment.pipeline import add_extra_corpora, align_corpus
from alignment.records import Links
from alignment.script import fold_script
from alignment.tokenize import Tokenizer
from tests.helpers.toy import LEXICON, toy_pairs

RAW_ZH = "巴黎是法国的首都。\tParis is the capital of France.\n"
JIEBA = ["巴黎", "是", "法国", "的", "首都", "。"]


class Recorder(WordAligner):
    """Records the training text it is given; links every token to nothing."""

    name = "recorder"

    def __init__(self) -> None:
        self.extra: list[tuple[list[str], list[str]]] = []

    def add_training_text(self, src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]]) -> int:
        self.extra.extend((list(s), list(t)) for s, t in zip(src, tgt, strict=True))
        return len(src)

    def align(self, src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]]) -> list[Links]:
        return [Links() for _ in src]


def test_raw_chinese_extra_corpus_is_segmented_under_a_pretokenized_main_corpus(tmp_path: Path) -> None:
    main = tmp_path / "main.txt"
    main.write_text("巴黎 是 法国 的 首都 。 ||| paris is the capital of france .\n", encoding="utf-8")
    extra = tmp_path / "extra.tsv"
    extra.write_text(RAW_ZH, encoding="utf-8")
    aligner = Recorder()
    zh, en = Tokenizer("zh", pretokenized=True), Tokenizer("en", pretokenized=True)
    align_corpus(ParallelCorpus(main, "zh", "en", fmt="moses"), aligner,
                 tmp_path / "out.links", zh, en, extra_corpora=[ParallelCorpus(extra, "zh", "en")])
    [(src, tgt)] = aligner.extra
    assert src == JIEBA, "raw Chinese extra text gets jieba, not one token per sentence"
    assert tgt == ["Paris", "is", "the", "capital", "of", "France", "."]


def test_a_pretokenized_extra_corpus_is_split_on_whitespace(tmp_path: Path) -> None:
    extra = tmp_path / "extra.tsv"
    extra.write_text("巴黎是 法国的首都。\tParis is France.\n", encoding="utf-8")
    aligner = Recorder()
    add_extra_corpora(aligner, [ParallelCorpus(extra, "zh", "en", pretokenized=True)],
                      Tokenizer("zh"), Tokenizer("en"))
    assert aligner.extra == [(["巴黎是", "法国的首都。"], ["Paris", "is", "France."])]


def test_cli_pretokenized_applies_to_the_main_corpus_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from xlre.cli import app

    seen: list[list[str]] = []

    def record(self: EflomalAligner, rows: Iterable[tuple[int, int, str, str]]) -> int:
        # The training lines the workers made: their words are each corpus's tokens.
        rows = list(rows)
        seen.extend(src_line.split() for _, _, src_line, _ in rows)
        return len(rows)

    monkeypatch.setattr(EflomalAligner, "add_training_rows", record)
    main = tmp_path / "main.txt"
    main.write_text("巴黎 是 法国 的 首都 。 ||| paris is the capital of france .\n" * 3, encoding="utf-8")
    raw, pretok = tmp_path / "raw.tsv", tmp_path / "pretok.tsv"
    raw.write_text(RAW_ZH, encoding="utf-8")
    pretok.write_text("巴黎是 法国的首都。\tParis is France.\n", encoding="utf-8")
    result = CliRunner().invoke(app, [
        "align", "--corpus", str(main), "--format", "moses", "--src-lang", "zh", "--tgt-lang", "en",
        "--pretokenized", "--extra-corpus", str(raw), "--extra-pretokenized", str(pretok),
        "--out", str(tmp_path / "out.links")])
    assert result.exit_code == 0, result.output
    assert seen == [JIEBA, ["巴黎是", "法国的首都。"]]
    assert len((tmp_path / "out.links").read_text(encoding="utf-8").splitlines()) == 3


def test_eflomal_trains_on_casefolded_script_folded_forms() -> None:
    aligner = EflomalAligner()
    assert aligner.training_line(["The", "STRASSE", "臺灣", "台湾"]) == "the strasse 台湾 台湾\n"
    # a token holding another kind of space stays one token, so link indices hold
    assert aligner.training_line(["10\u00a0000", "km"]) == "10000 km\n"
    assert EflomalAligner(fold_scripts=False).training_line(["臺灣"]) == "臺灣\n"


def shuffled_recall(fold_scripts: bool) -> float:
    """The toy lexicon, its source side in traditional characters and its target side
    capitalised in the extra text; the pairs aligned are simplified, lowercase and
    shuffled, so only the lexicon (not the diagonal) gives their links: the share of
    right links (``the`` aside, which occurs twice)."""
    trad = dict(zip(sorted(LEXICON), "臺灣頭髮後來於貓狗鳥魚馬狼見吃", strict=True))
    pairs = toy_pairs(300, seed=5)
    aligner = EflomalAligner(symmetrize_method="intersect", fold_scripts=fold_scripts)
    aligner.add_training_text([[trad[w] for w in s] for s, _ in pairs],
                              [[w.upper() for w in t] for _, t in pairs])
    rng = random.Random(1)
    src, tgt, gold = [], [], []
    for s, t in toy_pairs(20, seed=6):
        order = list(range(len(t)))
        rng.shuffle(order)  # target token j translates source token order[j]
        src.append([fold_script(trad[w]) for w in s])
        tgt.append([t[i] for i in order])
        gold.append({(order[j], j) for j in range(len(t)) if s[order[j]] != "the"})
    links = aligner.align(src, tgt)
    return sum(len(lk.pairs() & g) for lk, g in zip(links, gold, strict=True)) / sum(map(len, gold))


def test_case_and_script_do_not_split_what_eflomal_learns() -> None:
    folded = shuffled_recall(fold_scripts=True)
    assert folded > 0.6, "traditional extra text teaches the simplified words"
    assert shuffled_recall(fold_scripts=False) < folded, "without the fold it cannot"
