"""Benchmark the word aligner; prints one JSON object.

* AER of eflomal on the EN-FR Hansards gold (``align-gold/``), trained on the gold text
  plus the shared Tatoeba and Multi30k EN-FR text, over ``--runs`` runs (eflomal
  samples, so runs differ);
* end-to-end eflomal throughput (read, tokenize, align both ways, symmetrise, write)
  over the full Tatoeba file, on raw text and ``--pretokenized``, against eflomal's own
  Python API on the same pairs pre-tokenised and lowercased, and the ratio of the two
  (``bench_throughput``; ``--speed-runs`` rounds, ``--skip-aer`` for this part only);
* xlre's tokens (stored tokenizer, chunk cache) against a fresh ``spacy.blank`` tokenizer
  on each whole text, over the Tatoeba and news EN-FR files (``check_chunk_cache``: they
  must not differ);
* the batched simalign path against simalign's own one-pair-per-call
  ``get_word_aligns`` (see ``bench_neural_align.py``), unless ``--skip-simalign``.

Usage: python scripts/bench_align.py [--data ../shared/data] [--runs 3] [--skip-aer]
       [--speed-runs 3] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from alignment.aligners.eflomal import EflomalAligner
from alignment.corpus import ParallelCorpus
from alignment.metrics import alignment_error_rate
from alignment.parallel_tokenize import resolve_workers, tokenize_stream
from alignment.pharaoh import read_pharaoh
from alignment.pipeline import add_extra_corpora, align_corpus
from alignment.records import SentencePair
from alignment.symmetrize import symmetrize
from alignment.tokenize import Tokenizer

ROOT = Path(__file__).resolve().parent.parent


def bench_aer(data: Path, runs: int, prefix_len: int) -> dict:
    gold_dir, par = data / "align-gold", data / "parallel"
    gold_text = ParallelCorpus(gold_dir / "enfr.src-tgt", "en", "fr", fmt="moses")
    pairs = list(gold_text)
    src = [p.src_text.split() for p in pairs]
    tgt = [p.tgt_text.split() for p in pairs]
    gold = list(read_pharaoh(gold_dir / "enfr.gold", one_indexed=True))
    extras = [
        ParallelCorpus(par / "tatoeba-en-fr.tsv.gz", "en", "fr"),
        ParallelCorpus(par / "multi30k-train.en.gz", "en", "fr", tgt_path=par / "multi30k-train.fr.gz"),
    ]
    methods = ("intersect", "grow-diag", "grow-diag-final-and")
    results: dict[str, list[dict]] = {m: [] for m in methods}
    seconds = []
    en, fr = Tokenizer("en"), Tokenizer("fr")
    for _ in range(runs):
        aligner = EflomalAligner(prefix_len=prefix_len)
        n_extra = add_extra_corpora(aligner, extras, en, fr)
        start = time.perf_counter()
        aligner.align(src, tgt)
        seconds.append(time.perf_counter() - start)
        # Each directional result is symmetrised every way, from the same sampler run.
        directional = list(aligner.directional_links())
        for m in methods:
            pred = [symmetrize(f, r, m) for f, r in directional]
            results[m].append(alignment_error_rate(gold, pred).as_dict())
    out: dict = {"pairs": len(pairs), "extra_training_pairs": n_extra, "runs": runs,
                 "stem_prefix": prefix_len, "align_seconds_mean": round(statistics.mean(seconds), 1)}
    for m, rs in results.items():
        aers = [r["aer"] for r in rs]
        out[m] = {
            "aer_mean": round(statistics.mean(aers), 4),
            "aer_min": round(min(aers), 4),
            "aer_max": round(max(aers), 4),
            "precision_mean": round(statistics.mean(r["precision"] for r in rs), 4),
            "recall_mean": round(statistics.mean(r["recall"] for r in rs), 4),
        }
    return out


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


def bench_throughput(data: Path, runs: int, prefix_len: int, workers: int | None) -> dict:
    """xlre's end-to-end eflomal alignment of the whole Tatoeba file against eflomal's
    own Python API on the same pairs, pre-tokenised and lowercased (issue 22, item 1).

    Per round: eflomal's own ``Aligner.align`` on two pre-tokenised, lowercased files
    (only that call is timed; same settings as xlre's defaults: 3 samplers, null prior
    0.2, prefix length ``prefix_len``); ``align_corpus`` on the raw TSV (read, tokenize
    on ``workers`` processes, align both ways, symmetrise, write); ``align_corpus`` on a
    pre-tokenised TSV of the same tokens (``--pretokenized``). Medians over ``runs``
    rounds; building the spaCy tokenizers (a few seconds, once per CLI run) is not timed.
    """
    import eflomal

    path = data / "parallel" / "tatoeba-en-fr.tsv.gz"
    en, fr = Tokenizer("en"), Tokenizer("fr")  # built once, as in one CLI run (not timed)
    times: dict[str, list[float]] = {"eflomal_own": [], "xlre_raw": [], "xlre_pretokenized": []}
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        n_pairs = 0
        with open(tmp / "src.lc", "w", encoding="utf-8") as fs, open(
            tmp / "tgt.lc", "w", encoding="utf-8"
        ) as ft, open(tmp / "pretok.tsv", "w", encoding="utf-8") as fp:
            for chunk in tokenize_stream(ParallelCorpus(path, "en", "fr"), en, fr, 20000, workers):
                for it in chunk:
                    src, tgt = " ".join(it.src.tokens), " ".join(it.tgt.tokens)
                    fs.write(src.lower() + "\n")
                    ft.write(tgt.lower() + "\n")
                    fp.write(f"{src}\t{tgt}\n")
                    n_pairs += 1
        en_ws, fr_ws = Tokenizer("en", pretokenized=True), Tokenizer("fr", pretokenized=True)
        for _ in range(runs):
            aligner = eflomal.Aligner(n_samplers=3, null_prior=0.2, source_prefix_len=prefix_len,
                                      target_prefix_len=prefix_len)
            with open(tmp / "src.lc", encoding="utf-8") as fs, open(tmp / "tgt.lc", encoding="utf-8") as ft:
                start = time.perf_counter()
                aligner.align(fs, ft, links_filename_fwd=str(tmp / "own.fwd"),
                              links_filename_rev=str(tmp / "own.rev"), quiet=True)
                times["eflomal_own"].append(time.perf_counter() - start)

            # Fresh tokenizers, as in a CLI run: their chunk caches start empty.
            en_run, fr_run = Tokenizer("en"), Tokenizer("fr")
            start = time.perf_counter()
            raw = align_corpus(ParallelCorpus(path, "en", "fr"), EflomalAligner(prefix_len=prefix_len),
                               tmp / "raw.links", en_run, fr_run, workers=workers)
            times["xlre_raw"].append(time.perf_counter() - start)

            start = time.perf_counter()
            pre = align_corpus(ParallelCorpus(tmp / "pretok.tsv", "en", "fr", pretokenized=True),
                               EflomalAligner(prefix_len=prefix_len), tmp / "pre.links", en_ws, fr_ws,
                               workers=workers)
            times["xlre_pretokenized"].append(time.perf_counter() - start)
            assert raw.input_lines == pre.input_lines == n_pairs
    med = {k: statistics.median(v) for k, v in times.items()}
    rate = {k: n_pairs / v for k, v in med.items()}
    return {
        "file": str(path),
        "pairs": n_pairs,
        "runs": runs,
        "workers": resolve_workers(workers),
        "links_raw": raw.links,
        "seconds_median": {k: round(v, 2) for k, v in med.items()},
        "seconds_all": {k: [round(x, 2) for x in v] for k, v in times.items()},
        "pairs_per_second": {k: round(v, 1) for k, v in rate.items()},
        "ratio_xlre_raw_to_eflomal_own": round(rate["xlre_raw"] / rate["eflomal_own"], 3),
        "ratio_xlre_pretokenized_to_eflomal_own": round(
            rate["xlre_pretokenized"] / rate["eflomal_own"], 3),
    }


def check_chunk_cache(data: Path) -> dict:
    """xlre's tokens (the stored tokenizer of ``alignment.tokenizer_cache`` through the
    chunk cache of ``alignment.tokenize.ChunkCache``) against a tokenizer fresh from
    ``spacy.blank`` run on each whole text, over every text of the Tatoeba and news
    EN-FR files: the count of texts whose tokens or offsets differ (it must be 0), and
    both routes' seconds on one core, each starting cold."""
    import spacy

    from alignment.tokenize import _doc_tokens

    par = data / "parallel"
    texts: dict[str, list[str]] = {"en": [], "fr": []}
    for name in ("tatoeba-en-fr", "news-en-fr"):
        for pair in ParallelCorpus(par / f"{name}.tsv.gz", "en", "fr"):
            if isinstance(pair, SentencePair):
                texts["en"].append(pair.src_text)
                texts["fr"].append(pair.tgt_text)
    out: dict = {"files": ["tatoeba-en-fr.tsv.gz", "news-en-fr.tsv.gz"]}
    for lang, items in texts.items():
        start = time.perf_counter()
        cached = Tokenizer(lang)
        got = [(t.tokens, t.char_starts, t.char_ends) for t in cached.pipe(items)]
        cached_s = time.perf_counter() - start
        start = time.perf_counter()
        fresh = spacy.blank(lang).tokenizer
        ref = [tuple(map(tuple, _doc_tokens(fresh(text)))) for text in items]
        whole_s = time.perf_counter() - start
        out[lang] = {"texts": len(items), "texts_differing": sum(a != b for a, b in zip(got, ref, strict=True)),
                     "seconds_xlre_with_build": round(cached_s, 2),
                     "seconds_spacy_blank_whole_texts_with_build": round(whole_s, 2)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stem-prefix", type=int, default=4)
    parser.add_argument("--skip-simalign", action="store_true")
    parser.add_argument("--skip-aer", action="store_true", help="speed only (quick iteration)")
    parser.add_argument("--speed-runs", type=int, default=1,
                        help="rounds of the speed comparison (medians are reported)")
    parser.add_argument("--workers", type=int, default=None,
                        help="tokenizer processes for xlre (default: all cores)")
    parser.add_argument("--simalign-pairs", type=int, default=300)
    parser.add_argument("--simalign-model-dir", default=None,
                        help="encoder for the simalign speed test (default: a random XLM-R-base-shaped one)")
    args = parser.parse_args()
    if not (args.data / "align-gold").is_dir():
        raise SystemExit(f"{args.data}: no align-gold/ here; pass --data PATH/TO/shared/data")
    report: dict = {"benchmark": "align", "date": time.strftime("%Y-%m-%d")}
    report["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    if not args.skip_aer:
        report["eflomal_hansards_aer"] = bench_aer(args.data, args.runs, args.stem_prefix)
    report["chunk_cache_against_spacy"] = check_chunk_cache(args.data)
    report["eflomal_tatoeba_throughput"] = bench_throughput(
        args.data, args.speed_runs, args.stem_prefix, args.workers)
    report["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if not args.skip_simalign:
        import bench_neural_align  # sibling script: scripts/ is sys.path[0]

        pairs = bench_neural_align.load_tatoeba_pairs(
            args.data / "parallel" / "tatoeba-en-fr.tsv.gz", args.simalign_pairs
        )
        report["simalign_batched_vs_per_pair"] = bench_neural_align.bench_simalign(
            pairs, bench_neural_align.ensure_model(args.simalign_model_dir)
        )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
