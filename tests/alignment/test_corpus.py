from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from alignment.corpus import BadLine, ParallelCorpus, count_lines, parse_corpus_spec
from alignment.errors import CorpusError
from alignment.records import SentencePair


def write(path: Path, data: str | bytes) -> Path:
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


def pairs_of(corpus: ParallelCorpus) -> list[SentencePair | BadLine]:
    return list(corpus)


def test_tsv_two_fields(tmp_path: Path) -> None:
    path = write(tmp_path / "c.tsv", "Hello world.\tBonjour le monde.\nGood night\tBonne nuit\n")
    got = pairs_of(ParallelCorpus(path, "en", "fr"))
    assert got == [
        SentencePair("1", "en", "fr", "Hello world.", "Bonjour le monde.", 1),
        SentencePair("2", "en", "fr", "Good night", "Bonne nuit", 2),
    ]


def test_tsv_with_ids_and_crlf_and_bom(tmp_path: Path) -> None:
    path = write(tmp_path / "c.tsv", b"\xef\xbb\xbfa1\tHi\tSalut\r\na2\tYes\tOui\r\n")
    got = pairs_of(ParallelCorpus(path, "en", "fr"))
    assert [(p.pair_id, p.src_text, p.tgt_text, p.line_no) for p in got] == [
        ("a1", "Hi", "Salut", 1),
        ("a2", "Yes", "Oui", 2),
    ]


def test_moses_and_gzip(tmp_path: Path) -> None:
    path = tmp_path / "c.txt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("the cat ||| le chat\nno ||| non\n")
    got = pairs_of(ParallelCorpus(path, "en", "fr"))
    assert [(p.src_text, p.tgt_text) for p in got] == [("the cat", "le chat"), ("no", "non")]


def test_two_files(tmp_path: Path) -> None:
    src = write(tmp_path / "a.en", "one\ntwo\nthree")  # no final newline
    tgt = write(tmp_path / "a.fr", "un\ndeux\ntrois\n")
    corpus = ParallelCorpus(src, "en", "fr", tgt_path=tgt)
    assert len(corpus) == 3
    assert [(p.line_no, p.tgt_text) for p in corpus] == [(1, "un"), (2, "deux"), (3, "trois")]


def test_two_files_different_line_counts_names_both(tmp_path: Path) -> None:
    src = write(tmp_path / "a.en", "one\ntwo\nthree\n")
    tgt = write(tmp_path / "a.fr", "un\ndeux\n")
    with pytest.raises(CorpusError) as err:
        ParallelCorpus(src, "en", "fr", tgt_path=tgt)
    msg = str(err.value)
    assert "3 lines" in msg and "2 lines" in msg and "a.en" in msg and "a.fr" in msg


@pytest.mark.parametrize(
    ("content", "reason", "needle"),
    [
        (b"a\tb\nonly one field\nc\td\n", "wrong_field_count", "expected 2 tab-separated fields"),
        (b"a\tb\nx\t\nc\td\n", "empty_target", "target side is empty"),
        (b"a\tb\n \ty\nc\td\n", "empty_source", "source side is empty"),
        (b"a\tb\ncaf\xe9\tcafe\nc\td\n", "invalid_utf8", "invalid UTF-8"),
        (b"a\tb\nx\ty\tz\nc\td\n", "wrong_field_count", "found 3"),
    ],
)
def test_bad_line_errors_name_file_line_and_fix(
    tmp_path: Path, content: bytes, reason: str, needle: str
) -> None:
    path = write(tmp_path / "bad.tsv", content)
    with pytest.raises(CorpusError) as err:
        pairs_of(ParallelCorpus(path, "en", "fr", fmt="tsv"))
    msg = str(err.value)
    assert "bad.tsv:2:" in msg and needle in msg and "Fix:" in msg
    assert err.value.reason == reason

    corpus = ParallelCorpus(path, "en", "fr", fmt="tsv", skip_bad=True)
    got = pairs_of(corpus)
    assert len(got) == 3, "one item per input line, bad lines included"
    assert isinstance(got[1], BadLine) and got[1].reason == reason and got[1].line_no == 2
    assert corpus.report.counts == {reason: 1}
    assert [p.src_text for p in got if isinstance(p, SentencePair)] == ["a", "c"]


def test_moses_wrong_separator_count(tmp_path: Path) -> None:
    path = write(tmp_path / "m.txt", "a ||| b\nx ||| y ||| z\n")
    with pytest.raises(CorpusError, match=r"m.txt:2: expected one ' \|\|\| ' separator, found 2"):
        pairs_of(ParallelCorpus(path, "en", "fr"))


def test_undetectable_format(tmp_path: Path) -> None:
    path = write(tmp_path / "x.txt", "no separator here\n")
    with pytest.raises(CorpusError, match="cannot tell the corpus format"):
        ParallelCorpus(path, "en", "fr")


def test_long_lines_are_kept_whole(tmp_path: Path) -> None:
    long_src = " ".join(["word"] * 50_000)
    path = write(tmp_path / "l.tsv", f"{long_src}\tmot\n")
    (pair,) = pairs_of(ParallelCorpus(path, "en", "fr"))
    assert isinstance(pair, SentencePair) and pair.src_text == long_src


def test_reader_streams(tmp_path: Path) -> None:
    path = write(tmp_path / "s.tsv", "".join(f"s{i}\tt{i}\n" for i in range(1000)))
    it = iter(ParallelCorpus(path, "en", "fr"))
    first = next(it)
    assert isinstance(first, SentencePair) and first.src_text == "s0"


def test_count_lines_and_spec(tmp_path: Path) -> None:
    assert count_lines(write(tmp_path / "e", "")) == 0
    assert count_lines(write(tmp_path / "f", "a\nb")) == 2
    assert parse_corpus_spec("a.en::a.fr") == (Path("a.en"), Path("a.fr"))
    assert parse_corpus_spec("c.tsv") == (Path("c.tsv"), None)


def test_a_repeated_pair_id_is_refused_with_both_lines(tmp_path: Path) -> None:
    path = write(tmp_path / "c.tsv", "a1\tHi\tSalut\na2\tYes\tOui\na1\tNo\tNon\n")
    with pytest.raises(CorpusError, match=r"c\.tsv.*3.*'a1' is already the id of line 1"):
        pairs_of(ParallelCorpus(path, "en", "fr"))
    corpus = ParallelCorpus(path, "en", "fr", skip_bad=True)
    got = [p for p in pairs_of(corpus) if isinstance(p, SentencePair)]
    assert [(p.pair_id, p.tgt_text) for p in got] == [("a1", "Salut"), ("a2", "Oui")]
    assert corpus.report.counts == {"duplicate_id": 1}
    assert len(pairs_of(corpus)) == 3, "a second pass reads the file afresh"
