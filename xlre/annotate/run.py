"""Annotation runs: distant labels on the source side, projected to the target.

Consumes a parallel corpus and a KB; produces a run directory
(:mod:`xlre.annotate.rundir`). Word links of the whole corpus are computed once and
stored before any shard is written, so a resumed run projects through the very same
links; then the shards are annotated (:mod:`xlre.annotate.annotator`) by the local
engine or on Ray, and the manifest sums their counts. Runs stream shard by shard with
bounded memory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import platform
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from alignment.aligners.base import WordAligner
from alignment.aligners.eflomal import eflomal_parts
from alignment.corpus import BadLine, ParallelCorpus, parse_corpus_spec
from alignment.forked import ForkedJob, HelperDied
from alignment.parallel_tokenize import can_fork_helpers
from alignment.pipeline import align_corpus
from alignment.records import SentencePair
from alignment.spacy_import import import_spacy
from xlre.annotate import local_engine, ray_engine
from xlre.annotate.annotator import Annotator
from xlre.annotate.config import AnnotateConfig, RunError, make_aligner
from xlre.annotate.rundir import (
    LINKS_FILE,
    PRIORS_FILE,
    SHARD_DIR,
    SPANS_FILE,
    check_corpus,
    check_resume,
    finished_shards,
    merge_stats,
    part_suffix,
    shard_name,
    stale_temporaries,
    write_shard,
)
from xlre.kb import KnowledgeBase, load_kb
from xlre.kb.casing import CASING_FILE, CaseStats, count_casing
from xlre.kb.index import KBIndex, ensure_index

ProgressFn = Callable[[str, int], None]

logger = logging.getLogger(__name__)


def _family_layer(model: str) -> int:
    """The neural aligner's default layer for ``model`` (written into the run's config)."""
    from transformers import AutoConfig

    from alignment.aligners.neural import family_defaults

    try:
        return int(family_defaults(AutoConfig.from_pretrained(model))["layer"])
    except OSError as err:
        raise RunError(f"cannot read the encoder config of {model!r}: {err}. Fix: give "
                       "--model a local encoder directory") from None



def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in ("xlre", "eflomal", "spacy", "pyahocorasick", "transformers", "torch"):
        with contextlib.suppress(PackageNotFoundError):
            out[pkg] = version(pkg)
    return out



def _shards(
    corpus: ParallelCorpus, size: int, links_path: Path | None, spans_path: Path | None
) -> Iterator[tuple[int, list[SentencePair | BadLine], list[str] | None, list[str] | None]]:
    """The corpus in shards of ``size`` items, each with its lines of the links and
    spans files (``None`` for a file not given), read in step with it."""
    with contextlib.ExitStack() as stack:
        links_fh = stack.enter_context(open(links_path, encoding="utf-8")) if links_path else None
        spans_fh = stack.enter_context(open(spans_path, encoding="utf-8")) if spans_path else None
        chunk: list[SentencePair | BadLine] = []
        shard_no = 0
        for item in corpus:
            chunk.append(item)
            if len(chunk) == size:
                yield shard_no, chunk, _take(links_fh, len(chunk)), _take(spans_fh, len(chunk))
                chunk, shard_no = [], shard_no + 1
        if chunk:
            yield shard_no, chunk, _take(links_fh, len(chunk)), _take(spans_fh, len(chunk))


def _take(fh: Any, n: int) -> list[str] | None:
    if fh is None:
        return None
    lines = []
    for _ in range(n):
        line = fh.readline()
        if not line:  # an empty pair's links are "\n"; "" is the end of the file
            raise RunError(f"{fh.name}: the file ends before the corpus does. Fix: "
                           "start the run again in a new --out")
        lines.append(line.rstrip("\n"))
    return lines


#: The background casing count's niceness: it yields the cores to the alignment.
CASING_NICENESS = 19


def _run_corpus(config: AnnotateConfig) -> ParallelCorpus:
    """The run's corpus, read afresh from the start."""
    return ParallelCorpus(config.corpus, config.src_lang, config.tgt_lang, tgt_path=config.tgt_file,
                          fmt=config.corpus_format, skip_bad=config.skip_bad)  # type: ignore[arg-type]


def _source_casing(config: AnnotateConfig, words: frozenset[str]) -> CaseStats:
    """:func:`count_casing` of ``words`` over the source side of the run's corpus."""
    return count_casing((p.src_text for p in _run_corpus(config) if isinstance(p, SentencePair)), words)


class _BackgroundCasing:
    """The source casing counted by a forked helper at low priority, so that it takes
    the cycles the alignment leaves idle. :meth:`get` waits for the :class:`CaseStats`
    or raises the helper's error; :meth:`close` stops a helper still running, so a run
    that fails meanwhile does not wait for it."""

    def __init__(self, config: AnnotateConfig, words: frozenset[str]) -> None:
        # the words are inherited, not pickled
        self._job = ForkedJob(_source_casing, config, words, niceness=CASING_NICENESS)

    def get(self) -> CaseStats:
        try:
            return self._job.result()
        except HelperDied as died:
            raise RunError(f"the casing count's helper process stopped with exit code {died.exitcode} "
                           "before it sent its counts (out of memory?). Fix: free memory and resume the "
                           "run (--resume)") from None

    def close(self) -> None:
        self._job.close()


def annotate(config: AnnotateConfig, resume: bool = False, progress: ProgressFn | None = None) -> dict[str, Any]:
    """Run (or resume) an annotation run; returns the manifest (also written to disk)."""
    config.validate()
    if config.layer is None and config.aligner in ("simalign", "combined"):
        config = replace(config, layer=_family_layer(config.model))
    start = time.perf_counter()
    run_dir = Path(config.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_resume(run_dir, config, resume)
    (run_dir / f"config{part_suffix(config)}.json").write_text(json.dumps(asdict(config), indent=2) + "\n", encoding="utf-8")
    shard_dir = run_dir / SHARD_DIR
    shard_dir.mkdir(exist_ok=True)
    timings: dict[str, float] = {}

    t0 = time.perf_counter()
    if config.ner:  # before anything imports spaCy without torch (alignment.spacy_import)
        import_spacy(with_torch=True)
    kb: KnowledgeBase | KBIndex
    if config.kb_index is not None:
        specs = [(lang, config.min_alias_chars, config.case, config.zh_script)
                 for lang in dict.fromkeys((config.src_lang, config.tgt_lang))]
        kb = ensure_index(config.kb, config.kb_index, specs)
    else:
        kb = load_kb(config.kb)
    annotator = Annotator(config, kb)
    timings["load_kb_and_gazetteers"] = time.perf_counter() - t0

    # Stage 1b's casing count starts first, in a background process at low priority: it
    # takes the cycles the alignment leaves idle, and the run waits for it only after.
    words = annotator.linker.gazetteer.single_words
    casing_path = run_dir / CASING_FILE
    use_casing = config.linking == "rank" and bool(words)
    with contextlib.ExitStack() as stack:
        casing_job = None
        if use_casing and not casing_path.exists() and can_fork_helpers():
            casing_job = _BackgroundCasing(config, words)
            stack.callback(casing_job.close)

        # Stage 1: whole-corpus word links, computed once (eflomal learns from all the text).
        whole = config.aligner in ("eflomal", "combined") and config.priors is None
        links_path = run_dir / LINKS_FILE if whole else None
        spans_path = run_dir / SPANS_FILE if whole else None
        t0 = time.perf_counter()
        check_corpus(run_dir, config, links_path, spans_path)
        timings["check_corpus"] = time.perf_counter() - t0
        aligned: WordAligner | None = None
        if links_path is not None and not links_path.exists():
            t0 = time.perf_counter()
            aligned = make_aligner(config)
            for part in eflomal_parts(aligned):
                # counted in the background while the links are read; saved below, and
                # stopped if the run fails first
                part.save_priors_when_trained(run_dir / PRIORS_FILE)
                stack.callback(part.stop_background_priors)
            extras = [ParallelCorpus(p, config.src_lang, config.tgt_lang, tgt_path=t, skip_bad=config.skip_bad)
                      for p, t in map(parse_corpus_spec, config.extra_corpora)]
            align_corpus(_run_corpus(config), aligned, links_path, annotator.src_tok, annotator.tgt_tok,
                         extra_corpora=extras, progress=progress, spans_path=spans_path)
            timings["align_corpus"] = time.perf_counter() - t0

        # Stage 1b: how the source side writes the gazetteer's one-word aliases, counted
        # once and kept, so a resumed run and every worker judge common words alike
        # (xlre.kb.casing).
        if use_casing:
            t0 = time.perf_counter()
            if casing_path.exists():
                casing = CaseStats.read(casing_path)
            else:
                casing = casing_job.get() if casing_job is not None else _source_casing(config, words)
                casing.write(casing_path)
            annotator.linker.casing = casing
            timings["count_casing"] = time.perf_counter() - t0
        if aligned is not None:
            t0 = time.perf_counter()
            aligned.save_priors(run_dir / PRIORS_FILE)  # type: ignore[attr-defined]
            timings["save_priors"] = time.perf_counter() - t0

    # Stage 2: shards, on the stage-1 tokens where the run kept them (a run begun by an
    # xlre that did not keep them tokenizes again, with the same tokenizers).
    if spans_path is not None and not spans_path.exists():
        logger.info("%s: no %s (the run began before xlre kept it); the shards tokenize "
                    "the corpus again", run_dir, SPANS_FILE)
        spans_path = None
    t0 = time.perf_counter()
    done = finished_shards(run_dir) if resume else set()
    for stale in stale_temporaries(shard_dir, config):
        stale.unlink()
    todo = (
        (n, items, lines, spans, str(shard_dir))
        for n, items, lines, spans in _shards(_run_corpus(config), config.shard_size, links_path, spans_path)
        if n % config.num_shards == config.shard_index and n not in done
    )
    if config.engine == "ray":
        redone = ray_engine.run_shards(config, annotator, todo, write_shard, progress)
    else:
        redone = local_engine.run_shards(annotator, todo, config.workers, progress)
    timings["annotate_shards"] = time.perf_counter() - t0

    mine = sorted(n for n in finished_shards(run_dir) if n % config.num_shards == config.shard_index)
    stats = [json.loads((shard_dir / f"{shard_name(n)}.stats.json").read_text(encoding="utf-8")) for n in mine]
    totals = merge_stats(stats)
    timings["total"] = time.perf_counter() - start
    manifest = {
        "config": asdict(config),
        "versions": _versions(),
        "kb": kb.summary(),
        "shards": [f"{SHARD_DIR}/{shard_name(n)}.jsonl" for n in mine],
        "shards_written_this_time": redone,
        "shards_kept_from_before": len(done & set(mine)),
        "counts": totals,
        "gazetteer_dropped_aliases": {config.src_lang: dict(annotator.linker.gazetteer.dropped)},
        "timings_seconds": {k: round(v, 2) for k, v in timings.items()},
        "pairs_per_second": round(totals.get("pairs", 0) / timings["total"], 1) if timings["total"] else 0.0,
    }
    name = f"manifest{part_suffix(config)}.json"
    tmp = run_dir / (name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    tmp.replace(run_dir / name)
    return manifest

