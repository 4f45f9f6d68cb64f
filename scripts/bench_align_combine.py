"""Combine neural and eflomal word links on the EN-FR Hansards gold; prints JSON.

eflomal (trained on the gold text plus the shared Tatoeba and Multi30k text, 4-character
prefixes) gives directional links; the neural aligner (``--model``, layer and method
from ``--layer``/``--method``, word level) gives links with similarities. Reported, as
AER / precision / recall: each alone, and these combinations:

* ``union_intersect``: neural links or eflomal intersect links;
* ``intersect_and_neural``: links both the neural aligner and eflomal
  grow-diag-final-and propose (high precision);
* ``intersect_plus_confident_X``: eflomal intersect, plus neural links whose similarity
  score is at least X (``--confident``);
* ``gdfa_filtered_by_neural_or_intersect``: eflomal intersect, plus the
  grow-diag-final-and links the neural aligner confirms.

Usage: python scripts/bench_align_combine.py --model DIR [--layer 7] [--method argmax]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from alignment.aligners.eflomal import EflomalAligner
from alignment.aligners.neural import NeuralAligner
from alignment.corpus import ParallelCorpus
from alignment.metrics import alignment_error_rate
from alignment.pharaoh import read_pharaoh
from alignment.pipeline import add_extra_corpora
from alignment.symmetrize import symmetrize
from alignment.tokenize import Tokenizer

ROOT = Path(__file__).resolve().parent.parent


def score(gold, pred) -> dict:
    return {k: round(v, 4) for k, v in alignment_error_rate(gold, pred).as_dict().items()
            if k != "pairs"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--layer", type=int, default=7)
    parser.add_argument("--method", default="argmax")
    parser.add_argument("--confident", type=float, default=0.8)
    args = parser.parse_args()
    gold_dir, par = args.data / "align-gold", args.data / "parallel"
    pairs = list(ParallelCorpus(gold_dir / "enfr.src-tgt", "en", "fr", fmt="moses"))
    src = [p.src_text.split() for p in pairs]
    tgt = [p.tgt_text.split() for p in pairs]
    gold = list(read_pharaoh(gold_dir / "enfr.gold", one_indexed=True))

    eflomal = EflomalAligner(prefix_len=4)
    add_extra_corpora(eflomal, [
        ParallelCorpus(par / "tatoeba-en-fr.tsv.gz", "en", "fr"),
        ParallelCorpus(par / "multi30k-train.en.gz", "en", "fr",
                       tgt_path=par / "multi30k-train.fr.gz"),
    ], Tokenizer("en"), Tokenizer("fr"))
    eflomal.align(src, tgt)
    directional = list(eflomal.directional_links())
    inter = [symmetrize(f, r, "intersect") for f, r in directional]
    gdfa = [symmetrize(f, r, "grow-diag-final-and") for f, r in directional]

    neural = NeuralAligner(args.model, layer=args.layer, method=args.method,
                           token_level="word").align(src, tgt)
    nset = [{(k.src_tok, k.tgt_tok) for k in links.links} for links in neural]
    confident = [{(k.src_tok, k.tgt_tok) for k in links.links
                  if k.score is not None and k.score >= args.confident} for links in neural]
    report = {
        "benchmark": "align_combine", "date": time.strftime("%Y-%m-%d"), "model": args.model,
        "layer": args.layer, "method": args.method, "pairs": len(pairs),
        "eflomal_intersect": score(gold, inter),
        "eflomal_gdfa": score(gold, gdfa),
        "neural": score(gold, nset),
        "union_intersect": score(gold, [a | b for a, b in zip(nset, inter, strict=True)]),
        "intersect_and_neural": score(gold, [a & b for a, b in zip(nset, gdfa, strict=True)]),
        f"intersect_plus_confident_{args.confident}": score(
            gold, [i | c for i, c in zip(inter, confident, strict=True)]),
        "gdfa_filtered_by_neural_or_intersect": score(
            gold, [(g & a) | i for a, g, i in zip(nset, gdfa, inter, strict=True)]),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
