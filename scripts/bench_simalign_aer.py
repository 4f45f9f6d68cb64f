"""Sweep the neural aligner's layer, method and token level on the EN-FR Hansards gold.

Prints one JSON object: AER, precision and recall per (layer, method, token level) of
``alignment.aligners.neural.NeuralAligner`` (the batched simalign path of ``xlre align
--aligner simalign``) with a real encoder, e.g. multilingual-e5-small built by
``../shared/tools/me5-small/make.sh DIR``.

Usage: python scripts/bench_simalign_aer.py --model DIR [--layers 4,6,7,8,9,10,12]
       [--methods argmax,itermax,match] [--token-levels subword,word]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from alignment.aligners.neural import NeuralAligner
from alignment.corpus import ParallelCorpus
from alignment.metrics import alignment_error_rate
from alignment.pharaoh import read_pharaoh

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--layers", default="4,6,7,8,9,10,12")
    parser.add_argument("--methods", default="argmax,itermax,match")
    parser.add_argument("--token-levels", default="subword,word")
    args = parser.parse_args()
    gold_dir = args.data / "align-gold"
    pairs = list(ParallelCorpus(gold_dir / "enfr.src-tgt", "en", "fr", fmt="moses"))
    src = [p.src_text.split() for p in pairs]
    tgt = [p.tgt_text.split() for p in pairs]
    gold = list(read_pharaoh(gold_dir / "enfr.gold", one_indexed=True))
    results = []
    for level in args.token_levels.split(","):
        for layer in map(int, args.layers.split(",")):
            for method in args.methods.split(","):
                aligner = NeuralAligner(args.model, layer=layer, method=method,
                                        token_level=level)
                start = time.perf_counter()
                pred = aligner.align(src, tgt)
                seconds = time.perf_counter() - start
                aer = alignment_error_rate(gold, [{(k.src_tok, k.tgt_tok) for k in links.links}
                                                  for links in pred]).as_dict()
                results.append({"token_level": level, "layer": layer, "method": method,
                                **{k: round(v, 4) for k, v in aer.items() if k != "pairs"},
                                "seconds": round(seconds, 1)})
    best = min(results, key=lambda r: r["aer"])
    print(json.dumps({"benchmark": "simalign_aer", "date": time.strftime("%Y-%m-%d"),
                      "model": args.model, "pairs": len(pairs), "best": best,
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
