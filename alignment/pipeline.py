"""Align a whole parallel corpus: read, tokenize, align, write Pharaoh links.

Consumes a :class:`~alignment.corpus.ParallelCorpus` and a
:class:`~alignment.aligners.base.WordAligner`; produces a links file with exactly one
line per *input* line (an empty line where a pair was skipped or has no links), so the
output never falls out of step with the input.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

from alignment.aligners.base import WordAligner
from alignment.corpus import BadLine, ParallelCorpus
from alignment.errors import CorpusError, SettingError
from alignment.parallel_tokenize import (
    TokenizedPair,
    fewer_gc_passes,
    lines_stream,
    tokenize_stream,
)
from alignment.records import Links, SentencePair
from alignment.spans import spans_text
from alignment.tokenize import Tokenizer

logger = logging.getLogger(__name__)

#: ``progress(stage, n)``: n more input lines went through ``stage``
#: ("tokenize", "align" or "extra").
ProgressFn = Callable[[str, int], None]


@dataclass
class AlignSummary:
    """What an alignment run did; ``as_dict`` is what the CLI reports."""

    input_lines: int = 0
    aligned_pairs: int = 0
    links: int = 0
    extra_pairs: int = 0
    skipped: dict[str, object] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        rate = self.input_lines / self.seconds if self.seconds else 0.0
        return {
            "input_lines": self.input_lines,
            "aligned_pairs": self.aligned_pairs,
            "links": self.links,
            "extra_training_pairs": self.extra_pairs,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 3),
            "pairs_per_second": round(rate, 1),
        }


def _check_length(
    item: TokenizedPair, limit: int | None, corpus: ParallelCorpus
) -> TokenizedPair | BadLine:
    if limit is None or (len(item.src) <= limit and len(item.tgt) <= limit):
        return item
    return _too_long(item.pair, len(item.src), len(item.tgt), limit, corpus)


def _too_long(pair: SentencePair, n_src: int, n_tgt: int, limit: int, corpus: ParallelCorpus) -> BadLine:
    """Refuse a pair over the aligner's limit (raised), or with ``--skip-bad`` count it
    and give the bad line that takes its place."""
    err = CorpusError(
        corpus.path,
        pair.line_no,
        f"the pair has {n_src} source and {n_tgt} target tokens, more than "
        f"the aligner's limit of {limit} tokens a side (it is never cut)",
        "split the pair into shorter sentence pairs, use --aligner simalign (which aligns "
        "long text in windows), or pass --skip-bad to skip it (counted, empty output line)",
        reason="too_long",
    )
    if not corpus.skip_bad:
        raise err
    bad = BadLine(pair.line_no, "too_long", str(err))
    corpus.report.add(bad)
    return bad


def corpus_tokenizer(corpus: ParallelCorpus, tok: Tokenizer) -> Tokenizer:
    """The tokenizer for ``corpus`` in ``tok``'s language: ``tok`` itself when it reads
    text as the corpus is written (``corpus.pretokenized``), else one of the same kind
    (a :class:`~alignment.script.FoldingTokenizer` stays one) that does."""
    if tok.pretokenized == corpus.pretokenized:
        return tok
    return type(tok)(tok.lang, pretokenized=corpus.pretokenized)


def add_extra_corpora(
    aligner: WordAligner,
    extra: Sequence[ParallelCorpus],
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    progress: ProgressFn | None = None,
    workers: int | None = None,
) -> int:
    """Feed extra parallel text to an aligner that trains on text (eflomal).

    ``src_tok`` and ``tgt_tok`` (the main corpus's) give the two languages; each extra
    corpus is tokenised as its own layout says (:func:`corpus_tokenizer`): split on
    whitespace when it is ``pretokenized``, else by the language's tokenizer (jieba for
    Chinese), even when the main corpus is pretokenized. ``workers``: tokenizer
    processes (:mod:`alignment.parallel_tokenize`; ``None``: all cores).
    """
    add = getattr(aligner, "add_training_text", None)
    if add is None:
        raise SettingError(
            f"the {aligner.name} aligner does not train on text, so extra corpora do not "
            "apply to it; drop --extra-corpus or use --aligner eflomal"
        )
    add_rows = getattr(aligner, "add_training_rows", None)
    line_function = getattr(aligner, "line_function", None)
    total = 0
    for corpus in extra:
        src_c, tgt_c = corpus_tokenizer(corpus, src_tok), corpus_tokenizer(corpus, tgt_tok)
        if add_rows is not None and line_function is not None:
            # eflomal: the workers make the training lines (lines_stream), as for the corpus.
            with closing(lines_stream(corpus, src_c, tgt_c, line_function(), False, 20000, workers)) as rows:
                for chunk in rows:
                    total += add_rows([it[1][:4] for it in chunk if not isinstance(it, BadLine)])
                    if progress:
                        progress("extra", len(chunk))
            if corpus.report.total:
                logger.warning("extra corpus %s: skipped %s", corpus.path, corpus.report.as_dict())
            continue
        with closing(tokenize_stream(corpus, src_c, tgt_c, 20000, workers)) as chunks:
            for chunk in chunks:
                items = [it for it in chunk if not isinstance(it, BadLine)]
                total += add([it.src.tokens for it in items], [it.tgt.tokens for it in items])
                if progress:
                    progress("extra", len(chunk))
        if corpus.report.total:
            logger.warning("extra corpus %s: skipped %s", corpus.path, corpus.report.as_dict())
    return total


def align_corpus(
    corpus: ParallelCorpus,
    aligner: WordAligner,
    out_path: Path | str,
    src_tokenizer: Tokenizer,
    tgt_tokenizer: Tokenizer,
    scores_path: Path | str | None = None,
    extra_corpora: Sequence[ParallelCorpus] = (),
    chunk_size: int = 20000,
    progress: ProgressFn | None = None,
    workers: int | None = None,
    spans_path: Path | str | None = None,
) -> AlignSummary:
    """Align every pair of ``corpus`` and write 0-indexed Pharaoh links to ``out_path``.

    ``corpus`` is tokenised by ``src_tokenizer`` and ``tgt_tokenizer``; each of
    ``extra_corpora`` as its own layout says (:func:`add_extra_corpora`).

    Aligners that must see the whole corpus to learn from it (eflomal without priors)
    get it in one piece; others get chunks of ``chunk_size`` pairs, so memory stays
    bounded. Outputs are written to a temporary name and renamed when complete, so a
    failed run never leaves a half-written links file behind.

    ``workers``: processes that tokenize (:mod:`alignment.parallel_tokenize`; ``None``:
    all cores, 1: serial); the tokens, and so the links, are the same for any number.
    An aligner with ``align_stream_pharaoh`` (eflomal) gives its links as Pharaoh text
    directly, which saves building a record for every link.

    ``spans_path``: also write each pair's token offsets there, one line per input
    line like the links: ``start-end`` items of the source, a tab, those of the target
    (:func:`alignment.spans.spans_text`), or an empty line for a line the corpus skipped.
    A later stage rebuilds the very same tokens from it
    (:func:`alignment.spans.tokens_from_spans`) instead of tokenizing again. It is
    renamed into place before the links file, so complete links mean complete spans.
    """
    with fewer_gc_passes():
        return _align_corpus(corpus, aligner, out_path, src_tokenizer, tgt_tokenizer, scores_path,
                             extra_corpora, chunk_size, progress, workers, spans_path)


def _align_corpus(
    corpus: ParallelCorpus,
    aligner: WordAligner,
    out_path: Path | str,
    src_tokenizer: Tokenizer,
    tgt_tokenizer: Tokenizer,
    scores_path: Path | str | None,
    extra_corpora: Sequence[ParallelCorpus],
    chunk_size: int,
    progress: ProgressFn | None,
    workers: int | None,
    spans_path: Path | str | None,
) -> AlignSummary:
    start = time.perf_counter()
    summary = AlignSummary()
    summary.extra_pairs = add_extra_corpora(
        aligner, extra_corpora, src_tokenizer, tgt_tokenizer, progress, workers
    ) if extra_corpora else 0
    whole = getattr(aligner, "needs_whole_corpus", False)
    limit = getattr(aligner, "max_tokens", None)
    out_path = Path(out_path)
    tmp_out = out_path.with_name(out_path.name + ".part")
    tmp_scores = Path(str(scores_path) + ".part") if scores_path else None
    tmp_spans = Path(str(spans_path) + ".part") if spans_path else None
    out_path.parent.mkdir(parents=True, exist_ok=True)

    tokenized = tokenize_stream(corpus, src_tokenizer, tgt_tokenizer, chunk_size, workers)
    lines_aligner = getattr(aligner, "align_lines_pharaoh", None) if whole else None
    # eflomal: the workers make its training lines and the spans text, so this process
    # builds no token records at all (on two cores it is the busier process).
    rows = lines_stream(corpus, src_tokenizer, tgt_tokenizer, aligner.line_function(),  # type: ignore[attr-defined]
                        tmp_spans is not None, chunk_size, workers) if lines_aligner is not None else None

    def tokenized_chunks() -> Iterator[list[TokenizedPair | BadLine]]:
        for chunk in tokenized:
            if tmp_spans is not None:  # before the length check: a pair too long to align keeps its tokens
                spans_out.write("".join([
                    f"{spans_text(it.src)}\t{spans_text(it.tgt)}\n" if isinstance(it, TokenizedPair) else "\n"
                    for it in chunk]))
            items = [
                _check_length(it, limit, corpus) if isinstance(it, TokenizedPair) else it
                for it in chunk
            ]
            if progress:
                progress("tokenize", len(chunk))
            yield items

    try:
        with open(tmp_out, "w", encoding="utf-8") as out, (
            open(tmp_scores, "w", encoding="utf-8") if tmp_scores else _NullWriter()
        ) as scores_out, (
            open(tmp_spans, "w", encoding="utf-8") if tmp_spans else _NullWriter()
        ) as spans_out:

            def write(items_good: Iterable[bool], lines: Iterator[PharaohLine]) -> None:
                n = 0
                for good in items_good:
                    text, scores, n_links = next(lines) if good else _NO_LINKS
                    out.write(text + "\n")
                    scores_out.write(scores + "\n")
                    summary.links += n_links
                    summary.input_lines += 1
                    summary.aligned_pairs += good
                    n += 1
                    if progress and n % 1000 == 0:
                        progress("align", 1000)
                if progress and n % 1000:
                    progress("align", n % 1000)

            text_stream = getattr(aligner, "align_stream_pharaoh", None)
            stream = getattr(aligner, "align_stream", None)
            if rows is not None and lines_aligner is not None:
                flags = bytearray()

                def good_rows() -> Iterator[tuple[int, int, str, str]]:
                    for chunk in rows:
                        if tmp_spans is not None:
                            spans_out.write("".join([
                                "\n" if isinstance(it, BadLine) else f"{it[1][4]}\n" for it in chunk]))
                        for it in chunk:
                            if isinstance(it, BadLine):
                                flags.append(0)
                                continue
                            pair, (n_src, n_tgt, src_line, tgt_line, _) = it
                            if limit is not None and (n_src > limit or n_tgt > limit):
                                _too_long(pair, n_src, n_tgt, limit, corpus)
                                flags.append(0)
                                continue
                            flags.append(1)
                            yield n_src, n_tgt, src_line, tgt_line
                        if progress:
                            progress("tokenize", len(chunk))

                write((bool(f) for f in flags), lines_aligner(good_rows()))
            elif whole and (text_stream is not None or stream is not None):
                # One pass that learns from everything: stream the text to the aligner,
                # keeping one flag per input line so bad lines keep their place.
                flags = bytearray()

                def good_pairs() -> Iterator[tuple[tuple[str, ...], tuple[str, ...]]]:
                    for items in tokenized_chunks():
                        for it in items:
                            flags.append(isinstance(it, TokenizedPair))
                            if isinstance(it, TokenizedPair):
                                yield it.src.tokens, it.tgt.tokens

                # Either call consumes the stream and aligns it.
                lines = (text_stream(good_pairs()) if text_stream is not None
                         else _pharaoh_lines(stream(good_pairs())))  # type: ignore[misc]
                write((bool(f) for f in flags), lines)
            else:
                batches: Iterable[list[TokenizedPair | BadLine]] = tokenized_chunks()
                if whole:  # an aligner that must see everything, given as one batch
                    batches = [[it for chunk in batches for it in chunk]]
                for items in batches:
                    good = [it for it in items if isinstance(it, TokenizedPair)]
                    aligned = aligner.align([g.src.tokens for g in good], [g.tgt.tokens for g in good])
                    write((isinstance(it, TokenizedPair) for it in items), _pharaoh_lines(aligned))
        if tmp_spans:
            tmp_spans.replace(Path(spans_path))  # type: ignore[arg-type]
        tmp_out.replace(out_path)
        if tmp_scores:
            tmp_scores.replace(Path(scores_path))  # type: ignore[arg-type]
    finally:
        tokenized.close()  # stops the tokenizer workers at once if the run failed
        if rows is not None:
            rows.close()
        for tmp in (tmp_out, tmp_scores, tmp_spans):
            if tmp is not None and tmp.exists():
                tmp.unlink()
    summary.skipped = corpus.report.as_dict()
    summary.seconds = time.perf_counter() - start
    logger.info("aligned %s", summary.as_dict())
    return summary


#: One pair's links as written: Pharaoh text, scores text, number of links.
PharaohLine = tuple[str, str, int]
_NO_LINKS: PharaohLine = ("", "", 0)


def _pharaoh_lines(links: Iterable[Links]) -> Iterator[PharaohLine]:
    for pair_links in links:
        yield pair_links.to_pharaoh(), pair_links.scores_text(), len(pair_links)


class _NullWriter:
    def __enter__(self) -> _NullWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def write(self, text: str) -> int:
        return 0
