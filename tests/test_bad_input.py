"""The bad-input matrix: every line reader against the same damaged files.

Readers: parallel corpus, KB, marked gold, extraction input, triples for export, eflomal
priors, training settings. Damage: a truncated gzip stream, a BOM, CRLF line ends, a NUL
byte, a 1 MB line, an empty file, and a directory where the file belongs. README's
Reliability section states the rule each row checks.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from alignment.aligners.eflomal import validate_priors
from alignment.corpus import ParallelCorpus
from alignment.errors import UserError
from alignment.records import SentencePair
from alignment.textfile import strict_lines
from xlre.data.marked import MarkedReport, read_marked
from xlre.extraction.documents import InputReport, read_documents
from xlre.kb import load_kb
from xlre.kg.reading import ReadReport, read_triples
from xlre.records import Argument, Evidence, Triple
from xlre.training.settings import load_settings

MB = 1 << 20


def _triple_line(sentence: str) -> bytes:
    t = Triple(Argument("Lyon", 0, 4, "Q456", "LOC"), "P17", Argument("France", 13, 19, "Q142", "LOC"),
               0.9, Evidence("d1", sentence, "en", "models/m"))
    return json.dumps(t.to_json(), ensure_ascii=False).encode()


@dataclass
class Reader:
    """One reader: its file name, the lines of a good file (``big`` goes in the first
    record's text), how to read it (records and the skip counts), and whether it takes
    ``skip_bad``."""

    name: str
    file: str
    lines: Callable[[str], list[bytes]]
    read: Callable[[Path, bool], tuple[list, dict[str, int]]]
    skips: bool = True
    gz: bool = True  # the reader takes *.gz
    empty_is_error: bool = False


def _corpus(path: Path, skip_bad: bool):
    corpus = ParallelCorpus(path, "en", "fr", fmt="tsv", skip_bad=skip_bad)
    pairs = [(p.src_text, p.tgt_text) for p in corpus if isinstance(p, SentencePair)]
    return pairs, dict(corpus.report.counts)


KB_REST = {"relations.jsonl": b'{"id": "P17", "labels": {"en": "country"}}\n',
           "triples.tsv": b"Q1\tP17\tQ2\n"}


def _kb(path: Path, skip_bad: bool):
    # path is the KB's entities.jsonl; the other two files are good.
    for name, data in KB_REST.items():
        (path.parent / name).write_bytes(data)
    kb = load_kb(path.parent)
    return sorted((e.id, e.labels["en"]) for e in kb.entities.values()), {}


def _marked(path: Path, skip_bad: bool):
    report = MarkedReport()
    sents = [(m.text, m.label) for m in read_marked(path, skip_bad=skip_bad, report=report)]
    return sents, dict(report.skipped)


def _documents(path: Path, skip_bad: bool):
    report = InputReport()
    docs = [(d.doc_id, d.text) for d in read_documents([str(path)], skip_bad=skip_bad, report=report)]
    return docs, dict(report.skipped)


def _triples(path: Path, skip_bad: bool):
    report = ReadReport()
    got = [(t.subject.text, t.evidence.sentence) for t in read_triples([path], skip_bad=skip_bad, report=report)]
    return got, dict(report.skipped)


def _priors(path: Path, skip_bad: bool):
    validate_priors(path)
    return [line for _, line in strict_lines(path)], {}


def _settings(path: Path, skip_bad: bool):
    s = load_settings(path)
    return [(s.train.epochs, s.train.learning_rate)], {}


READERS = [
    Reader("corpus", "c.tsv", lambda big: [f"the dog{big}\tle chien".encode(), b"a cat\tun chat"], _corpus,
           empty_is_error=False),
    Reader("kb", "entities.jsonl",
           lambda big: [json.dumps({"id": "Q1", "labels": {"en": [f"Paris{big}"]}}).encode(),
                        json.dumps({"id": "Q2", "labels": {"en": ["France"]}}).encode()],
           _kb, skips=False, gz=False, empty_is_error=True),
    Reader("marked", "gold.txt",
           lambda big: [f"<e1>Lyon</e1> is in{big} <e2>France</e2> .".encode(), b"P17",
                        b"<e1>Paris</e1> is in <e2>France</e2> .", b"P17"], _marked),
    Reader("extraction", "docs.jsonl",
           lambda big: [json.dumps({"id": "d1", "text": f"Lyon est en France.{big}", "lang": "fr"}).encode(),
                        json.dumps({"id": "d2", "text": "Paris est en France.", "lang": "fr"}).encode()],
           _documents),
    Reader("triples", "t.jsonl", lambda big: [_triple_line(f"Lyon is in France.{big}"),
                                              _triple_line("Lyon is in France, again.")], _triples),
    Reader("priors", "p.priors", lambda big: [f"LEX\tdog{big}\tchien\t2.0".encode(), b"HMMF\t1\t3.0"],
           _priors, skips=False, empty_is_error=True),
    Reader("settings", "s.toml", lambda big: [f"# {big}".encode(), b"[train]", b"epochs = 3",
                                              b"learning_rate = 0.001"],
           _settings, skips=False),
]
IDS = [r.name for r in READERS]


def _write(path: Path, lines: list[bytes], ending: bytes = b"\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + ending for line in lines))
    return path


def _good(reader: Reader, tmp_path: Path, big: str = ""):
    path = _write(tmp_path / "good" / reader.file, reader.lines(big))
    return reader.read(path, False)


@pytest.mark.parametrize("reader", READERS, ids=IDS)
def test_bom_and_crlf_read_like_the_plain_file(reader: Reader, tmp_path: Path) -> None:
    want = _good(reader, tmp_path)
    assert want[0], "the good file must give records"
    lines = reader.lines("")
    bom = _write(tmp_path / "bom" / reader.file, [b"\xef\xbb\xbf" + lines[0], *lines[1:]])
    assert reader.read(bom, False) == want
    crlf = _write(tmp_path / "crlf" / reader.file, lines, ending=b"\r\n")
    assert reader.read(crlf, False) == want


@pytest.mark.parametrize("reader", READERS, ids=IDS)
def test_a_truncated_gzip_stream_stops_with_the_file_and_line(reader: Reader, tmp_path: Path) -> None:
    data = gzip.compress(b"".join(line + b"\n" for line in reader.lines("") * 2000))
    if not reader.gz:
        # A KB's files are plain text: compressed bytes under the plain name are refused.
        path = tmp_path / "z" / reader.file
        path.parent.mkdir()
        path.write_bytes(data)
        with pytest.raises(UserError, match=rf"{reader.file}:1: (invalid UTF-8|a NUL byte)"):
            reader.read(path, False)
        return
    path = tmp_path / "z" / (reader.file + ".gz")
    path.parent.mkdir()
    path.write_bytes(data[: len(data) // 2])
    for skip_bad in (False, True) if reader.skips else (False,):
        # --skip-bad does not skip a cut-short file: the rest of it is missing, not bad.
        with pytest.raises(UserError, match=rf"{path.name}:\d+: the gzip stream ends early") as err:
            reader.read(path, skip_bad)
        assert "download or compress the file again" in str(err.value)
    # The whole stream reads as the plain file did.
    whole = tmp_path / "whole" / (reader.file + ".gz")
    whole.parent.mkdir()
    whole.write_bytes(gzip.compress(b"".join(line + b"\n" for line in reader.lines(""))))
    assert reader.read(whole, False) == _good(reader, tmp_path)


@pytest.mark.parametrize("reader", READERS, ids=IDS)
def test_a_nul_byte_is_a_bad_line(reader: Reader, tmp_path: Path) -> None:
    lines = reader.lines("")
    at = min(8, len(lines[0]) // 2)
    lines[0] = lines[0][:at] + b"\x00" + lines[0][at:]
    path = _write(tmp_path / "nul" / reader.file, lines)
    with pytest.raises(UserError, match=rf"{reader.file}:1: a NUL byte at byte {at}"):
        reader.read(path, False)
    if reader.skips:
        records, skipped = reader.read(path, True)
        assert skipped == {"nul_byte": 1}
        assert len(records) == len(_good(reader, tmp_path)[0]) - 1


@pytest.mark.parametrize("reader", READERS, ids=IDS)
def test_a_one_megabyte_line_is_read_whole_or_refused_never_cut(reader: Reader, tmp_path: Path) -> None:
    big = " " + "x" * MB
    path = _write(tmp_path / "big" / reader.file, reader.lines(big))
    if reader.name == "extraction":
        # Over xlre.extraction.documents.MAX_CHARS (1,000,000 characters): refused.
        with pytest.raises(UserError, match=r"docs\.jsonl:1: 1,048,5\d\d characters is over the limit"):
            reader.read(path, False)
        records, skipped = reader.read(path, True)
        assert skipped == {"too_long": 1} and len(records) == 1
        return
    records, _ = reader.read(path, False)
    if reader.name == "settings":  # a 1 MB comment line: read past, the settings intact
        assert records == _good(reader, tmp_path)[0]
        return
    assert any(big in repr(r) or big.strip() in repr(r) for r in records), "the long line was cut"


@pytest.mark.parametrize("reader", READERS, ids=IDS)
def test_an_empty_file(reader: Reader, tmp_path: Path) -> None:
    path = _write(tmp_path / "empty" / reader.file, [])
    if reader.empty_is_error:
        with pytest.raises(UserError, match=rf"{reader.file}: .*(empty|no entities)"):
            reader.read(path, False)
        return
    records, skipped = reader.read(path, False)
    if reader.name == "settings":
        defaults = load_settings()
        assert records == [(defaults.train.epochs, defaults.train.learning_rate)]
    else:
        assert records == [] and skipped == {}


@pytest.mark.parametrize("reader", READERS, ids=IDS)
def test_a_directory_where_the_file_belongs(reader: Reader, tmp_path: Path) -> None:
    path = tmp_path / "dir" / reader.file
    path.mkdir(parents=True)
    with pytest.raises((UserError, IsADirectoryError), match=rf"{reader.file}.*(is a directory|Is a directory)"):
        reader.read(path, False)


def test_an_empty_corpus_is_refused_when_its_layout_must_be_guessed(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.tsv", [])
    with pytest.raises(UserError, match=r"c\.tsv: the corpus is empty"):
        list(ParallelCorpus(path, "en", "fr"))
