"""Tokenise a stream of sentence pairs on all cores, in order.

:func:`tokenize_stream` turns a stream of :class:`~alignment.records.SentencePair` and
:class:`~alignment.corpus.BadLine` items into chunks of :class:`TokenizedPair` (bad
lines stay in their place), exactly what tokenising serially with the same tokenizers
gives: the same tokens and character offsets, nothing lost, doubled or reordered.

The corpus is read here, in the calling process, so reading errors are raised as they
are without workers; the text goes to a pool of ``workers`` processes in tasks of
:data:`TASK_PAIRS` pairs, at most two tasks a worker in flight, so memory stays flat
however long the corpus is. Results come back as plain tuples (pickling the record
classes costs more than tokenising) and are rebuilt into records here.
:func:`lines_stream` is the same for a consumer that wants each side only as one line
of text (eflomal's training lines): the workers make the lines, and no record is built.

A small corpus (fewer than :data:`SERIAL_BELOW` pairs) is tokenised serially, without a
pool, so start-up never makes it slower; so is everything when ``workers`` is 1 or
inside a daemonic process (which may not start children). On Linux the workers are
forked, so they start with the tokenizers already loaded (spaCy takes seconds to build
one); elsewhere they are spawned and rebuild them once. An error raised in a worker
(a :class:`~alignment.errors.UserError` such as a missing Chinese dependency) is raised
here as the same exception, with the same one-line message.
"""

from __future__ import annotations

import gc
import itertools
import logging
import multiprocessing
import os
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from alignment.corpus import BadLine
from alignment.errors import SettingError
from alignment.records import SentencePair, TokenizedText
from alignment.spans import spans_text
from alignment.tokenize import Tokenizer

logger = logging.getLogger(__name__)

#: Pairs per task sent to a worker.
TASK_PAIRS = 2000
#: Streams shorter than this are tokenised serially (no pool start-up).
SERIAL_BELOW = 8000
#: The first garbage-collection threshold in worker processes (Python's default: 700).
GC_THRESHOLD = 50_000

Item = SentencePair | BadLine
# One side of a pair as a worker sends it back: tokens, starts, ends, and the text
# only where the tokenizer gave back a text other than the one it was given.
_Packed = tuple[tuple[str, ...], tuple[int, ...], tuple[int, ...], str | None]
#: One pair as :func:`lines_stream` gives it: the two sides' token counts, their lines,
#: and the pair's spans-file line (or ``None``).
PairLines = tuple[int, int, str, str, str | None]


@dataclass(frozen=True, slots=True)
class TokenizedPair:
    """A sentence pair and its two tokenised sides."""

    pair: SentencePair
    src: TokenizedText
    tgt: TokenizedText


def default_workers() -> int:
    """The number of cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def can_fork_helpers() -> bool:
    """Whether work can go to forked helper processes here: fork (Linux), more than one
    core, and a process that may start children."""
    return ("fork" in multiprocessing.get_all_start_methods()
            and default_workers() > 1
            and not multiprocessing.current_process().daemon)


def resolve_workers(workers: int | None) -> int:
    """``workers``, or all cores for ``None``; a value below 1 is a :class:`SettingError`."""
    if workers is None:
        return default_workers()
    if workers < 1:
        raise SettingError(f"the number of tokenizer workers must be at least 1, got {workers}")
    return workers


def tokenize_chunk(chunk: list[Item], src_tok: Tokenizer, tgt_tok: Tokenizer) -> list[TokenizedPair | BadLine]:
    """Tokenise the pairs of ``chunk`` serially; bad lines are kept in their place."""
    pairs = [it for it in chunk if isinstance(it, SentencePair)]
    srcs = src_tok.pipe(p.src_text for p in pairs)
    tgts = tgt_tok.pipe(p.tgt_text for p in pairs)
    done = iter([TokenizedPair(p, s, t) for p, s, t in zip(pairs, srcs, tgts, strict=True)])
    return [it if isinstance(it, BadLine) else next(done) for it in chunk]


def chunked(items: Iterable[Item], size: int | None) -> Iterator[list[Item]]:
    """``items`` in lists of ``size`` (one list of everything for ``None``)."""
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if size is not None and len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def tokenize_stream(
    items: Iterable[Item],
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    chunk_size: int | None,
    workers: int | None = None,
    serial_below: int | None = None,
) -> Iterator[list[TokenizedPair | BadLine]]:
    """``items`` tokenised, in lists of ``chunk_size`` items (``None``: one list).

    Tokenises on ``workers`` processes (``None``: all cores) once the stream holds
    ``serial_below`` items (``None``: :data:`SERIAL_BELOW`) or more, else serially
    (module docstring). Close the generator (``contextlib.closing``) when stopping
    early, so the pool stops at once.
    """
    job = _Job(src_tok, tgt_tok)
    return _stream(job, items, chunk_size, workers, serial_below, _serial_tokens, _unpack)


def lines_stream(
    items: Iterable[Item],
    src_tok: Tokenizer,
    tgt_tok: Tokenizer,
    line_fn: Callable[[tuple[str, ...]], str],
    with_spans: bool,
    chunk_size: int | None,
    workers: int | None = None,
    serial_below: int | None = None,
) -> Iterator[list[tuple[SentencePair, PairLines] | BadLine]]:
    """:func:`tokenize_stream` for a consumer that needs each side's tokens only as one
    line of text: each pair comes as ``(pair, (n_src, n_tgt, src_line, tgt_line,
    spans))``, the lines being ``line_fn(tokens)`` of each side and ``spans`` the pair's
    spans-file line (``None`` unless ``with_spans``). The workers make the lines, so the
    calling process builds no token records (on a 2-core machine it is the busier one).
    ``line_fn`` must pickle where workers are spawned (not on Linux, where they fork)."""
    job = _Job(src_tok, tgt_tok, line_fn, with_spans)
    return _stream(job, items, chunk_size, workers, serial_below, _serial_lines, _unpack_lines)


def _stream(
    job: _Job,
    items: Iterable[Item],
    chunk_size: int | None,
    workers: int | None,
    serial_below: int | None,
    serial_fn: Callable[[list[Item], _Job], list[Any]],
    unpack: Callable[[list[Item], Future], list[Any]],
) -> Iterator[list[Any]]:
    n_workers = resolve_workers(workers)
    if n_workers > 1 and multiprocessing.current_process().daemon:
        logger.debug("tokenizing serially: a daemonic process may not start workers")
        n_workers = 1
    if n_workers == 1:
        for chunk in chunked(items, chunk_size):
            yield serial_fn(chunk, job)
        return
    if serial_below is None:
        serial_below = SERIAL_BELOW
    stream = iter(items)
    head: list[Item] = []
    for item in stream:
        head.append(item)
        if len(head) >= serial_below:
            break
    else:  # the whole stream is short: no pool
        for chunk in chunked(head, chunk_size):
            yield serial_fn(chunk, job)
        return
    task_size = min(TASK_PAIRS, chunk_size or TASK_PAIRS)
    tasks = chunked(itertools.chain(head, stream), task_size)
    out: list[Any] = []
    for done in _map_ordered(tasks, job, n_workers, unpack):
        out.extend(done)
        while chunk_size is not None and len(out) >= chunk_size:
            yield out[:chunk_size]
            out = out[chunk_size:]
    if out:
        yield out


def _mp_context() -> multiprocessing.context.BaseContext:
    # Forked workers share the parent's loaded tokenizers; fork is safe only on Linux.
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context()


def _map_ordered(
    tasks: Iterator[list[Item]], job: _Job, n_workers: int, unpack: Callable[[list[Item], Future], list[Any]]
) -> Iterator[list[Any]]:
    first = next(tasks, None)
    if first is None:
        return
    _warm_up(first, job.src_tok, job.tgt_tok)
    logger.debug("tokenizing on %d worker processes", n_workers)
    pool = ProcessPoolExecutor(n_workers, mp_context=_mp_context(), initializer=_init_worker, initargs=(job,))
    pending: deque[tuple[list[Item], Future]] = deque()
    try:
        for chunk in itertools.chain([first], tasks):
            pairs = [it for it in chunk if isinstance(it, SentencePair)]
            future = pool.submit(_worker_task, [p.src_text for p in pairs], [p.tgt_text for p in pairs])
            pending.append((chunk, future))
            if len(pending) >= 2 * n_workers:
                yield unpack(*pending.popleft())
        while pending:
            yield unpack(*pending.popleft())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _warm_up(chunk: list[Item], src_tok: Tokenizer, tgt_tok: Tokenizer) -> None:
    """Tokenise one pair here, so that what a tokenizer loads on first use (jieba's
    dictionary, the script-folding table) is loaded once, before the workers fork."""
    pair = next((it for it in chunk if isinstance(it, SentencePair)), None)
    if pair is not None:
        src_tok(pair.src_text)
        tgt_tok(pair.tgt_text)


@contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """Within the block, collect cycles every :data:`GC_THRESHOLD` allocations, not
    every 700: a corpus run allocates millions of small records that live until their
    chunk is written, and the default rescans them over and over. Restored on exit."""
    old = gc.get_threshold()
    gc.set_threshold(max(old[0], GC_THRESHOLD), *old[1:])
    try:
        yield
    finally:
        gc.set_threshold(*old)


@dataclass(frozen=True)
class _Job:
    """What a worker does with a task's texts: tokenize them (``line_fn`` None) or make
    lines of them (:func:`lines_stream`)."""

    src_tok: Tokenizer
    tgt_tok: Tokenizer
    line_fn: Callable[[tuple[str, ...]], str] | None = None
    with_spans: bool = False

    def run(self, src_texts: list[str], tgt_texts: list[str]) -> Any:
        if self.line_fn is None:
            return _pack(self.src_tok, src_texts), _pack(self.tgt_tok, tgt_texts)
        return _lines(self, src_texts, tgt_texts)


_worker_job: _Job | None = None


def _init_worker(job: _Job) -> None:
    global _worker_job
    _worker_job = job
    # A worker only makes short-lived token records: collect cycles less often (the
    # default scans every 700 allocations, a good share of the tokenizing time).
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


def _worker_task(src_texts: list[str], tgt_texts: list[str]) -> Any:
    assert _worker_job is not None, "the worker was started without its job"
    return _worker_job.run(src_texts, tgt_texts)


def _pack(tok: Tokenizer, texts: list[str]) -> list[_Packed]:
    return [
        (t.tokens, t.char_starts, t.char_ends, None if t.text == text else t.text)
        for text, t in zip(texts, tok.pipe(texts), strict=True)
    ]


def _lines(job: _Job, src_texts: list[str], tgt_texts: list[str]) -> list[PairLines]:
    line_fn = job.line_fn
    assert line_fn is not None
    out: list[PairLines] = []
    for src, tgt in zip(job.src_tok.pipe(src_texts), job.tgt_tok.pipe(tgt_texts), strict=True):
        spans = f"{spans_text(src)}\t{spans_text(tgt)}" if job.with_spans else None
        out.append((len(src.tokens), len(tgt.tokens), line_fn(src.tokens), line_fn(tgt.tokens), spans))
    return out


def _serial_tokens(chunk: list[Item], job: _Job) -> list[TokenizedPair | BadLine]:
    """:func:`tokenize_stream`'s work on one chunk, in this process."""
    return tokenize_chunk(chunk, job.src_tok, job.tgt_tok)


def _serial_lines(chunk: list[Item], job: _Job) -> list[tuple[SentencePair, PairLines] | BadLine]:
    """:func:`lines_stream`'s work on one chunk, in this process."""
    pairs = [it for it in chunk if isinstance(it, SentencePair)]
    done = iter(zip(pairs, _lines(job, [p.src_text for p in pairs], [p.tgt_text for p in pairs]), strict=True))
    return [it if isinstance(it, BadLine) else next(done) for it in chunk]


def _unpack_lines(chunk: list[Item], future: Future) -> list[tuple[SentencePair, PairLines] | BadLine]:
    rows = future.result()  # a worker's exception is raised here, as it was raised
    pairs = [it for it in chunk if isinstance(it, SentencePair)]
    assert len(rows) == len(pairs), "a worker lost or added pairs"
    done = iter(zip(pairs, rows, strict=True))
    return [it if isinstance(it, BadLine) else next(done) for it in chunk]


def _unpack(chunk: list[Item], future: Future) -> list[TokenizedPair | BadLine]:
    srcs, tgts = future.result()  # a worker's exception is raised here, as it was raised
    n_pairs = sum(isinstance(it, SentencePair) for it in chunk)
    assert len(srcs) == len(tgts) == n_pairs, "a worker lost or added pairs"
    done = zip(srcs, tgts, strict=True)
    out: list[TokenizedPair | BadLine] = []
    append = out.append
    for it in chunk:
        if isinstance(it, BadLine):
            append(it)
            continue
        (s_toks, s_starts, s_ends, s_text), (t_toks, t_starts, t_ends, t_text) = next(done)
        append(TokenizedPair(
            it,
            TokenizedText(it.src_text if s_text is None else s_text, s_toks, s_starts, s_ends),
            TokenizedText(it.tgt_text if t_text is None else t_text, t_toks, t_starts, t_ends),
        ))
    return out
