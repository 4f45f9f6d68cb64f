"""Benchmark the word aligner; prints one JSON object.

* AER of eflomal on the EN-FR Hansards gold (``align-gold/``), trained on the gold text
  plus the shared Tatoeba and Multi30k EN-FR text, over ``--runs`` runs (eflomal
  samples, so runs differ);
* end-to-end eflomal throughput (read, tokenize, align both ways, symmetrise, write)
  over the full Tatoeba file;
* the batched simalign path against simalign's own one-pair-per-call
  ``get_word_aligns`` (see ``bench_neural_align.py``), unless ``--skip-simalign``.

Usage: python scripts/bench_align.py [--data ../shared/data] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from alignment.aligners.eflomal import EflomalAligner
from alignment.corpus import ParallelCorpus
from alignment.metrics import alignment_error_rate
from alignment.pharaoh import read_pharaoh
from alignment.pipeline import add_extra_corpora, align_corpus
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


def bench_throughput(data: Path) -> dict:
    path = data / "parallel" / "tatoeba-en-fr.tsv.gz"
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        corpus = ParallelCorpus(path, "en", "fr")
        summary = align_corpus(corpus, EflomalAligner(), Path(tmp) / "tatoeba.links",
                               Tokenizer("en"), Tokenizer("fr"))
        seconds = time.perf_counter() - start
    return {
        "file": str(path),
        "pairs": summary.input_lines,
        "links": summary.links,
        "seconds": round(seconds, 1),
        "pairs_per_second": round(summary.input_lines / seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stem-prefix", type=int, default=4)
    parser.add_argument("--skip-simalign", action="store_true")
    parser.add_argument("--simalign-pairs", type=int, default=300)
    parser.add_argument("--simalign-model-dir", default=None,
                        help="encoder for the simalign speed test (default: a random XLM-R-base-shaped one)")
    args = parser.parse_args()
    if not (args.data / "align-gold").is_dir():
        raise SystemExit(f"{args.data}: no align-gold/ here; pass --data PATH/TO/shared/data")
    report: dict = {"benchmark": "align", "date": time.strftime("%Y-%m-%d")}
    report["eflomal_hansards_aer"] = bench_aer(args.data, args.runs, args.stem_prefix)
    report["eflomal_tatoeba_throughput"] = bench_throughput(args.data)
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
