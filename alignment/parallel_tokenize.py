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
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass

from alignment.corpus import BadLine
from alignment.errors import SettingError
from alignment.records import SentencePair, TokenizedText
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
    n_workers = resolve_workers(workers)
    if n_workers > 1 and multiprocessing.current_process().daemon:
        logger.debug("tokenizing serially: a daemonic process may not start workers")
        n_workers = 1
    if n_workers == 1:
        for chunk in chunked(items, chunk_size):
            yield tokenize_chunk(chunk, src_tok, tgt_tok)
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
            yield tokenize_chunk(chunk, src_tok, tgt_tok)
        return
    task_size = min(TASK_PAIRS, chunk_size or TASK_PAIRS)
    tasks = chunked(itertools.chain(head, stream), task_size)
    out: list[TokenizedPair | BadLine] = []
    for done in _map_ordered(tasks, src_tok, tgt_tok, n_workers):
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
    tasks: Iterator[list[Item]], src_tok: Tokenizer, tgt_tok: Tokenizer, n_workers: int
) -> Iterator[list[TokenizedPair | BadLine]]:
    first = next(tasks, None)
    if first is None:
        return
    _warm_up(first, src_tok, tgt_tok)
    logger.debug("tokenizing on %d worker processes", n_workers)
    pool = ProcessPoolExecutor(n_workers, mp_context=_mp_context(), initializer=_init_worker,
                               initargs=(src_tok, tgt_tok))
    pending: deque[tuple[list[Item], Future]] = deque()
    try:
        for chunk in itertools.chain([first], tasks):
            pairs = [it for it in chunk if isinstance(it, SentencePair)]
            future = pool.submit(_tokenize_task, [p.src_text for p in pairs], [p.tgt_text for p in pairs])
            pending.append((chunk, future))
            if len(pending) >= 2 * n_workers:
                yield _unpack(*pending.popleft())
        while pending:
            yield _unpack(*pending.popleft())
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


_worker_tokenizers: tuple[Tokenizer, Tokenizer] | None = None


def _init_worker(src_tok: Tokenizer, tgt_tok: Tokenizer) -> None:
    global _worker_tokenizers
    _worker_tokenizers = (src_tok, tgt_tok)
    # A worker only makes short-lived token records: collect cycles less often (the
    # default scans every 700 allocations, a good share of the tokenizing time).
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


def _tokenize_task(src_texts: list[str], tgt_texts: list[str]) -> tuple[list[_Packed], list[_Packed]]:
    assert _worker_tokenizers is not None, "the worker was started without its tokenizers"
    src_tok, tgt_tok = _worker_tokenizers
    return _pack(src_tok, src_texts), _pack(tgt_tok, tgt_texts)


def _pack(tok: Tokenizer, texts: list[str]) -> list[_Packed]:
    return [
        (t.tokens, t.char_starts, t.char_ends, None if t.text == text else t.text)
        for text, t in zip(texts, tok.pipe(texts), strict=True)
    ]


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
