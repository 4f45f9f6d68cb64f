"""Streaming readers for parallel corpora.

Three layouts are read, UTF-8, optionally gzip-compressed (``.gz``), by the rules of
:mod:`alignment.textfile` (BOM, CRLF, NUL bytes, broken gzip):

* TSV, ``src<TAB>tgt`` or ``id<TAB>src<TAB>tgt``;
* Moses / fast_align, ``src ||| tgt``;
* two line-aligned files, one per language.

Readers stream: memory does not grow with the corpus. Each input line yields either a
:class:`~alignment.records.SentencePair` or, for a bad line, a :class:`BadLine`. By
default (``skip_bad=False``) the first bad line raises :class:`CorpusError` naming the
file, the line and the fix; with ``skip_bad=True`` it is yielded as a :class:`BadLine`
and counted in the reader's :class:`SkipReport`, so callers can keep their output one
line per *input* pair.

Tokenisation is part of a corpus's layout: ``pretokenized=True`` says its text is
already tokens separated by whitespace; otherwise it is raw text, for the language's
tokenizer. :func:`alignment.pipeline.add_extra_corpora` tokenises each extra corpus as
its own flag says, whatever the main corpus is.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from alignment.errors import CorpusError, SettingError
from alignment.records import SentencePair
from alignment.textfile import count_lines, decode_line, open_binary, raw_lines

logger = logging.getLogger(__name__)

CorpusFormat = Literal["auto", "tsv", "tsv-id", "moses"]
FORMATS: tuple[str, ...] = ("auto", "tsv", "tsv-id", "moses")
MOSES_SEP = "|||"


@dataclass(frozen=True, slots=True)
class BadLine:
    """An input line that could not be read as a sentence pair (only with ``skip_bad``)."""

    line_no: int
    reason: str
    message: str


@dataclass
class SkipReport:
    """Counts of skipped lines by reason, plus the first few messages for each."""

    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    max_examples: int = 3

    def add(self, bad: BadLine) -> None:
        self.counts[bad.reason] += 1
        shown = self.examples.setdefault(bad.reason, [])
        if len(shown) < self.max_examples:
            shown.append(bad.message)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, object]:
        return {"skipped": self.total, "by_reason": dict(self.counts), "examples": self.examples}


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    with open_binary(path) as fh:
        yield from raw_lines(fh, path)


def _decode(raw: bytes, path: Path, line_no: int) -> str:
    text = decode_line(raw, path, line_no)
    if isinstance(text, CorpusError):
        raise text
    return text


class ParallelCorpus:
    """A parallel corpus on disk, read as a stream of pairs.

    Iterating yields :class:`SentencePair` for good lines and :class:`BadLine` for bad
    ones (the latter only when ``skip_bad`` is true; otherwise a bad line raises
    :class:`CorpusError`). ``report`` counts what was skipped so far. ``pretokenized``
    records whether the text is whitespace-separated tokens or raw text (module).
    """

    def __init__(
        self,
        path: Path | str,
        src_lang: str,
        tgt_lang: str,
        tgt_path: Path | str | None = None,
        fmt: CorpusFormat = "auto",
        skip_bad: bool = False,
        pretokenized: bool = False,
    ) -> None:
        if fmt not in FORMATS:
            raise SettingError(f"unknown corpus format {fmt!r}; choose one of {', '.join(FORMATS)}")
        self.path = Path(path)
        self.tgt_path = Path(tgt_path) if tgt_path is not None else None
        self.src_lang = src_lang
        self.tgt_lang = tgt_lang
        self.skip_bad = skip_bad
        #: The text is already tokenized (split on whitespace), not raw text.
        self.pretokenized = pretokenized
        self.report = SkipReport()
        if self.tgt_path is not None:
            self.fmt = "two-files"
            n_src, n_tgt = count_lines(self.path), count_lines(self.tgt_path)
            if n_src != n_tgt:
                raise CorpusError(
                    self.path,
                    None,
                    f"the two files have different line counts: {n_src} lines in {self.path} "
                    f"and {n_tgt} lines in {self.tgt_path}",
                    "the files must be line-aligned (line k of one translates line k of the "
                    "other); repair or re-export them",
                )
            self.n_lines: int | None = n_src
        else:
            self.fmt = self._detect(fmt)
            self.n_lines = None

    # -- format detection -------------------------------------------------------------
    def _detect(self, fmt: CorpusFormat) -> str:
        if fmt != "auto":
            return fmt
        for line_no, raw in _lines(self.path):
            if not raw.strip():
                continue
            if MOSES_SEP.encode() in raw and b"\t" not in raw:
                return "moses"
            n_tabs = raw.count(b"\t")
            if n_tabs == 1:
                return "tsv"
            if n_tabs == 2:
                return "tsv-id"
            raise CorpusError(
                self.path,
                line_no,
                f"cannot tell the corpus format from this line ({n_tabs} tabs, no ' ||| ')",
                "use `src<TAB>tgt`, `id<TAB>src<TAB>tgt` or `src ||| tgt` lines, pass "
                "--format, or give the target side as a second file with --tgt-file",
            )
        raise CorpusError(self.path, None, "the corpus is empty", "give a non-empty corpus")

    def __len__(self) -> int:
        """Number of input lines (counted once, by reading the file)."""
        if self.n_lines is None:
            self.n_lines = count_lines(self.path)
        return self.n_lines

    # -- iteration ----------------------------------------------------------------------
    def __iter__(self) -> Iterator[SentencePair | BadLine]:
        self.report = SkipReport()
        rows = self._rows_two_files() if self.tgt_path is not None else self._rows_one_file()
        for item in rows:
            if isinstance(item, CorpusError):
                if not self.skip_bad:
                    raise item
                bad = BadLine(item.line_no or 0, item.reason, str(item))
                self.report.add(bad)
                logger.debug("skipped %s", bad.message)
                yield bad
            else:
                yield item

    def _pair(
        self, pair_id: str, src: str, tgt: str, line_no: int, path: Path
    ) -> SentencePair | CorpusError:
        for side, text in (("source", src), ("target", tgt)):
            if not text.strip():
                return CorpusError(
                    path,
                    line_no,
                    f"the {side} side is empty",
                    "remove the line or give both sides, or pass --skip-bad to skip it "
                    "(the output keeps an empty line in its place)",
                    reason=f"empty_{side}",
                )
        return SentencePair(pair_id, self.src_lang, self.tgt_lang, src.strip(), tgt.strip(), line_no)

    def _rows_one_file(self) -> Iterator[SentencePair | CorpusError]:
        path = self.path
        expected = {"tsv": 2, "tsv-id": 3}.get(self.fmt)
        # tsv-id: splits, bags and agreement pairs are keyed on pair ids, so a repeated
        # id would merge two pairs. Line numbers (the other layouts) are unique already.
        first_line: dict[str, int] = {}
        for line_no, raw in _lines(path):
            try:
                line = _decode(raw, path, line_no)
            except CorpusError as err:
                yield err
                continue
            if self.fmt == "moses":
                fields = line.split(MOSES_SEP)
                if len(fields) != 2:
                    yield CorpusError(
                        path,
                        line_no,
                        f"expected one ' ||| ' separator, found {len(fields) - 1}",
                        "write each pair as `source ||| target`, or pass --skip-bad",
                        reason="wrong_field_count",
                    )
                    continue
                yield self._pair(str(line_no), fields[0], fields[1], line_no, path)
                continue
            fields = line.split("\t")
            if len(fields) != expected:
                layout = "src<TAB>tgt" if expected == 2 else "id<TAB>src<TAB>tgt"
                yield CorpusError(
                    path,
                    line_no,
                    f"expected {expected} tab-separated fields ({layout}), found {len(fields)}",
                    "make every line follow the same layout (a tab inside a sentence must be "
                    "replaced by a space), or pass --skip-bad",
                    reason="wrong_field_count",
                )
                continue
            if expected == 3:
                pair_id = fields[0].strip()
                if not pair_id:
                    yield CorpusError(
                        path, line_no, "the id field is empty",
                        "give every pair an id, or pass --skip-bad", reason="empty_id",
                    )
                    continue
                if pair_id in first_line:
                    yield CorpusError(
                        path, line_no,
                        f"the id {pair_id!r} is already the id of line {first_line[pair_id]}",
                        "give every pair its own id, or pass --skip-bad to keep the first",
                        reason="duplicate_id",
                    )
                    continue
                first_line[pair_id] = line_no
                yield self._pair(pair_id, fields[1], fields[2], line_no, path)
            else:
                yield self._pair(str(line_no), fields[0], fields[1], line_no, path)

    def _rows_two_files(self) -> Iterator[SentencePair | CorpusError]:
        assert self.tgt_path is not None
        src_lines, tgt_lines = _lines(self.path), _lines(self.tgt_path)
        for (line_no, raw_src), (_, raw_tgt) in zip(src_lines, tgt_lines, strict=True):
            try:
                src = _decode(raw_src, self.path, line_no)
                tgt = _decode(raw_tgt, self.tgt_path, line_no)
            except CorpusError as err:
                yield err
                continue
            yield self._pair(str(line_no), src, tgt, line_no, self.path)


def parse_corpus_spec(spec: str) -> tuple[Path, Path | None]:
    """Parse an ``--extra-corpus`` value: ``PATH`` or ``SRC_PATH::TGT_PATH``."""
    if "::" in spec:
        src, _, tgt = spec.partition("::")
        return Path(src), Path(tgt)
    return Path(spec), None
