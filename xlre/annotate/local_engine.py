"""The local engine: shards annotated in this machine's processes (``--workers N``).

The annotator is built once in the parent; with several workers, forked processes share
it (no pickling) and each writes its finished shards itself. At most ``2 x workers``
shards are in memory at once.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from alignment.corpus import BadLine
from alignment.records import SentencePair
from xlre.annotate.annotator import Annotator
from xlre.annotate.rundir import write_shard

#: ``(shard_no, items, link_lines, span_lines, shard_dir)``: one shard to annotate
#: (the lines of ``alignment.links`` and ``tokens.spans`` in step with ``items``, or
#: ``None`` where the run has no such file).
Task = tuple[int, list[SentencePair | BadLine], list[str] | None, list[str] | None, str]

_WORKER: Annotator | None = None


def _work(task: Task) -> tuple[int, dict[str, Any]]:
    shard_no, items, link_lines, span_lines, shard_dir = task
    assert _WORKER is not None
    data, stats = _WORKER.annotate_and_encode(items, link_lines, span_lines)
    write_shard(Path(shard_dir), shard_no, data, stats.as_dict())
    return shard_no, stats.as_dict()


def run_shards(annotator: Annotator, tasks: Iterator[Task], workers: int,
               progress: Callable[[str, int], None] | None = None) -> int:
    """Annotate and write every shard of ``tasks``; return how many were written."""
    global _WORKER
    _WORKER = annotator
    written = 0
    try:
        if workers == 1:
            results: Iterator[tuple[int, dict[str, Any]]] = map(_work, tasks)
            for _n, stats in results:
                written += 1
                if progress:
                    progress("annotate", stats["pairs"])
        else:
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(workers) as pool:
                for _n, stats in _bounded_imap(pool, tasks, 2 * workers):
                    written += 1
                    if progress:
                        progress("annotate", stats["pairs"])
    finally:
        _WORKER = None
    return written


def _bounded_imap(pool: Any, tasks: Iterator[Task], limit: int) -> Iterator[Any]:
    """Like ``pool.imap`` but with at most ``limit`` shards in memory at once."""
    pending: deque[Any] = deque()
    for task in tasks:
        pending.append(pool.apply_async(_work, (task,)))
        if len(pending) >= limit:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()
