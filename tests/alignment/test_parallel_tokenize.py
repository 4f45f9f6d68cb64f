"""Tokenising on worker processes gives what tokenising serially gives, item for item."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alignment import parallel_tokenize
from alignment.corpus import BadLine, ParallelCorpus
from alignment.errors import CorpusError
from alignment.parallel_tokenize import TokenizedPair, tokenize_stream
from alignment.records import TokenizedText
from alignment.script import make_tokenizer
from alignment.tokenize import Tokenizer, TokenizerError
from xlre.cli import app

EN = [
    "Don't go to New York on the 3rd of May, {i} times!",
    "The U.S. costs $4.50 (per kg) -- see https://example.org/x?{i}.",
    "She said: \u201cIt's {i}\u00a0o'clock\u201d, and left.",
    "Well...   {i}   spaces\u2003and\u3000wide ones",
]
FR = [
    "L'\u00e9t\u00e9 dernier, j'ai vu {i} fois le mus\u00e9e d'Orsay\u00a0!",
    "Aujourd'hui c'est le {i}e jour : \u00ab\u00a0vraiment\u00a0\u00bb.",
    "Qu'est-ce qu'il y a\u00a0? Rien, {i}.",
    "Peut-\u00eatre   {i}   demain.",
]
ZH = ["\u81fa\u7063\u662f\u4e00\u500b\u5cf6\uff0c\u7b2c{i}\u53e5\u3002",
      "\u5df4\u9ece\u662f\u6cd5\u56fd\u7684\u9996\u90fd\uff0c{i}\u4eba\u53bb\u4e86\u3002"]


def write_corpus(path: Path, n: int, src: list[str], tgt: list[str], bad_every: int = 0) -> Path:
    """``n`` distinct pairs; with ``bad_every``, also bad lines of four kinds among them."""
    lines: list[bytes] = []
    bad = [b"only one field", b"le chien\t", b"caf\xe9\tcaf\xe9", b"nul\x00\tbyte"]
    for i in range(n):
        if bad_every and i % bad_every == bad_every - 1:
            lines.append(bad[(i // bad_every) % len(bad)])
            continue
        pair = src[i % len(src)].format(i=i) + "\t" + tgt[(i // 3) % len(tgt)].format(i=i)
        lines.append(pair.encode())
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def run(corpus: ParallelCorpus, src_tok: Tokenizer, tgt_tok: Tokenizer, workers: int,
        chunk_size: int | None = 50) -> list[list[TokenizedPair | BadLine]]:
    return list(tokenize_stream(corpus, src_tok, tgt_tok, chunk_size, workers=workers, serial_below=30))


@pytest.fixture
def small_tasks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks of 7 pairs: a few hundred pairs make dozens of tasks, so a task that came
    back out of turn, twice or not at all would show."""
    monkeypatch.setattr(parallel_tokenize, "TASK_PAIRS", 7)


def assert_same(parallel: list[list], serial: list[list]) -> None:
    assert [len(c) for c in parallel] == [len(c) for c in serial]
    flat_p = [it for c in parallel for it in c]
    flat_s = [it for c in serial for it in c]
    assert len(flat_p) == len(flat_s)
    for k, (p, s) in enumerate(zip(flat_p, flat_s, strict=True)):
        assert p == s, f"item {k} differs"  # pair, text, tokens, starts and ends


def test_parallel_equals_serial_with_bad_lines(tmp_path: Path, small_tasks: None,
                                               caplog: pytest.LogCaptureFixture) -> None:
    path = write_corpus(tmp_path / "c.tsv", 400, EN, FR, bad_every=13)
    en, fr = Tokenizer("en"), Tokenizer("fr")
    serial_corpus = ParallelCorpus(path, "en", "fr", skip_bad=True)
    serial = run(serial_corpus, en, fr, workers=1)
    parallel_corpus = ParallelCorpus(path, "en", "fr", skip_bad=True)
    with caplog.at_level(logging.DEBUG, logger="alignment.parallel_tokenize"):
        parallel = run(parallel_corpus, en, fr, workers=3)
    assert "tokenizing on 3 worker processes" in caplog.text, "the pool must have been used"
    assert_same(parallel, serial)

    flat = [it for c in parallel for it in c]
    bad = [it for it in flat if isinstance(it, BadLine)]
    assert len(flat) == 400 and len(bad) == 400 // 13
    assert parallel_corpus.report.as_dict() == serial_corpus.report.as_dict()
    assert [it.line_no if isinstance(it, BadLine) else it.pair.line_no for it in flat] == list(range(1, 401))
    # Against the plainest reference too: each text through the tokenizer on its own.
    for it in flat:
        if isinstance(it, TokenizedPair):
            assert it.src == en(it.pair.src_text) and it.tgt == fr(it.pair.tgt_text)
            for side in (it.src, it.tgt):
                assert all(side.text[s:e] == t for t, s, e in
                           zip(side.tokens, side.char_starts, side.char_ends, strict=True))


@pytest.mark.parametrize("workers", [1, 3])
def test_lines_stream_gives_the_lines_of_the_tokens(tmp_path: Path, small_tasks: None, workers: int,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """What eflomal's alignment reads (lines made on the workers) is what the tokens of
    :func:`tokenize_stream` make, pair for pair, bad lines in their place."""
    from alignment.aligners.eflomal import EflomalAligner
    from alignment.spans import spans_text

    path = write_corpus(tmp_path / "c.tsv", 300, EN, FR, bad_every=11)
    en, fr = Tokenizer("en"), Tokenizer("fr")
    line_fn = EflomalAligner().line_function()
    reference = [it for c in run(ParallelCorpus(path, "en", "fr", skip_bad=True), en, fr, workers=1) for it in c]
    with caplog.at_level(logging.DEBUG, logger="alignment.parallel_tokenize"):
        got = [it for c in parallel_tokenize.lines_stream(
            ParallelCorpus(path, "en", "fr", skip_bad=True), en, fr, line_fn, True, 50,
            workers=workers, serial_below=30) for it in c]
    assert ("tokenizing on 3 worker processes" in caplog.text) == (workers == 3)
    assert len(got) == len(reference) == 300
    for ref, it in zip(reference, got, strict=True):
        if isinstance(ref, BadLine):
            assert it == ref
            continue
        assert not isinstance(it, BadLine)
        pair, (n_src, n_tgt, src_line, tgt_line, spans) = it
        assert pair == ref.pair
        assert (n_src, n_tgt) == (len(ref.src), len(ref.tgt))
        assert (src_line, tgt_line) == (line_fn(ref.src.tokens), line_fn(ref.tgt.tokens))
        assert spans == f"{spans_text(ref.src)}\t{spans_text(ref.tgt)}"


def test_parallel_equals_serial_for_chinese(tmp_path: Path, small_tasks: None) -> None:
    pytest.importorskip("jieba", reason="Chinese segmentation needs `pip install 'xlre[cjk]'`")
    try:
        import opencc  # noqa: F401

        policy = "fold"  # the default: segment the text folded to simplified
    except ImportError:
        policy = "keep"
    path = write_corpus(tmp_path / "zh.tsv", 150, ZH, EN, bad_every=17)
    zh, en = make_tokenizer("zh", zh_script=policy), make_tokenizer("en")
    serial = run(ParallelCorpus(path, "zh", "en", skip_bad=True), zh, en, workers=1)
    parallel = run(ParallelCorpus(path, "zh", "en", skip_bad=True), zh, en, workers=2)
    assert_same(parallel, serial)
    first = next(it for c in parallel for it in c if isinstance(it, TokenizedPair))
    assert "\u81fa\u7063" in first.src.tokens, "jieba's words, in the original script"


def test_pretokenized_and_one_chunk(tmp_path: Path, small_tasks: None) -> None:
    path = write_corpus(tmp_path / "p.tsv", 120, EN, FR)
    en, fr = Tokenizer("en", pretokenized=True), Tokenizer("fr", pretokenized=True)
    serial = run(ParallelCorpus(path, "en", "fr", pretokenized=True), en, fr, 1, chunk_size=None)
    parallel = run(ParallelCorpus(path, "en", "fr", pretokenized=True), en, fr, 2, chunk_size=None)
    assert len(parallel) == 1 and len(parallel[0]) == 120
    assert_same(parallel, serial)


def test_short_stream_stays_serial(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_corpus(tmp_path / "s.tsv", 20, EN, FR)
    with caplog.at_level(logging.DEBUG, logger="alignment.parallel_tokenize"):
        got = run(ParallelCorpus(path, "en", "fr"), Tokenizer("en"), Tokenizer("fr"), workers=4)
    assert sum(len(c) for c in got) == 20
    assert "worker processes" not in caplog.text


class FailingTokenizer(Tokenizer):
    """Raises a user error on a text holding BOOM, as a missing dependency would."""

    def pipe(self, texts: Iterable[str], batch_size: int = 1000) -> Iterator[TokenizedText]:
        for text in texts:
            if "BOOM" in text:
                raise TokenizerError(f"cannot tokenize {text!r}: install the missing package")
            yield from super().pipe([text], batch_size)


def test_worker_errors_surface_unchanged(tmp_path: Path, small_tasks: None) -> None:
    path = write_corpus(tmp_path / "e.tsv", 200, EN, ["ok {i}"])
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[150] = "fine\tBOOM here"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    en, fr = Tokenizer("en"), FailingTokenizer("fr")
    messages = []
    for workers in (1, 2):
        with pytest.raises(TokenizerError) as info:
            run(ParallelCorpus(path, "en", "fr"), en, fr, workers)
        messages.append(str(info.value))
    assert messages[0] == messages[1] == "cannot tokenize 'BOOM here': install the missing package"

    # A reading error (bad input, no --skip-bad) is raised as it is, pool running or not.
    lines[150] = "only one field"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    messages = []
    for workers in (1, 2):
        with pytest.raises(CorpusError) as info:
            run(ParallelCorpus(path, "en", "fr"), en, Tokenizer("fr"), workers)
        messages.append(str(info.value))
    assert messages[0] == messages[1] and "e.tsv:151: expected 2 tab-separated fields" in messages[0]


def test_cli_workers_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel_tokenize, "SERIAL_BELOW", 30)
    path = write_corpus(tmp_path / "c.tsv", 120, EN, FR)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[110] = "no tab here"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    runner = CliRunner()
    base = ["align", "--corpus", str(path), "--src-lang", "en", "--tgt-lang", "fr", "--out",
            str(tmp_path / "o.links")]
    result = runner.invoke(app, [*base, "--workers", "2"])
    assert result.exit_code == 2
    assert "c.tsv:111: expected 2 tab-separated fields" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(app, [*base, "--workers", "0"])
    assert result.exit_code == 2 and "--workers must be at least 1, got 0" in result.output
