"""Word-alignment AER on the shared gold sets, every route in one run; prints one JSON object.

Gold sets (``align-gold/`` of the shared data, both pre-tokenised, links 1-indexed):

* ``zhen-dev``: ZH-EN (Tsinghua news), the dev half, 225 pairs, Chinese pre-segmented.
  Extra training text for eflomal: ``parallel/news-en-zh.tsv.gz``, raw, its columns
  swapped to ZH<TAB>EN (written to a temporary file), tokenised by xlre (jieba).
* ``enfr``: EN-FR Hansards, 447 pairs. Extra text: Tatoeba and Multi30k EN-FR, raw.

Routes, each through the same factory and pipeline as ``xlre align`` (the gold text is
the main corpus, ``pretokenized``; each extra corpus is tokenised as its layout says):

* ``eflomal``: default settings (intersect); ``eflomal_grow_diag``: the same sampler run
  symmetrised with grow-diag;
* ``neural``: ``--aligner simalign`` with ``--model`` at the family defaults;
* ``combined``: eflomal intersect plus neural links of similarity >= 0.8;
  ``combined_softmax``: the same with the neural links extracted by ``--method softmax``
  at ``--softmax-threshold`` (links whose smaller probability is >= 0.8);
* ``tuned_*``: on an encoder fine-tuned by ``xlre align-tune``'s code
  (:mod:`alignment.finetune`, its defaults) on the extra text of that pair
  (``--tune-pairs`` pairs, one epoch): the neural aligner with ``argmax`` and
  ``softmax`` extraction, and ``tuned_combined`` (as ``combined_softmax``). The encoder
  is written under ``--work``; with ``--resume`` one already there, tuned on as many
  pairs with the same settings, is reused (its recorded cost is reported) instead of
  trained again.

``--softmax-threshold`` defaults to 0.1, chosen on zhen-dev itself among 1e-3, 0.01,
0.1 and 0.3 (there is no second ZH-EN half here to choose on): with
multilingual-e5-small, awesome-align's 1e-3 links far too much.

Usage: python scripts/bench_align_gold.py --model DIR [--data ../shared/data]
       [--sets zhen-dev,enfr] [--tune-pairs 8000] [--work DIR] [--resume] [--skip-tune]
"""

from __future__ import annotations

import argparse
import gzip
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from alignment.aligners import build_aligner
from alignment.aligners.eflomal import EflomalAligner
from alignment.corpus import ParallelCorpus
from alignment.finetune import TUNE_INFO, TuneConfig, fine_tune
from alignment.metrics import alignment_error_rate
from alignment.pharaoh import read_pharaoh
from alignment.pipeline import align_corpus
from alignment.script import make_tokenizer
from alignment.symmetrize import symmetrize

ROOT = Path(__file__).resolve().parent.parent


def swapped_news(data: Path, tmp: Path) -> Path:
    """news-en-zh.tsv.gz with its columns swapped to ZH<TAB>EN."""
    out = tmp / "news-zh-en.tsv"
    with (
        gzip.open(data / "parallel" / "news-en-zh.tsv.gz", "rt", encoding="utf-8") as fin,
        out.open("w", encoding="utf-8") as fout,
    ):
        for line in fin:
            en, zh = line.rstrip("\n").split("\t")
            fout.write(f"{zh}\t{en}\n")
    return out


def gold_set(name: str, data: Path, tmp: Path) -> dict:
    par = data / "parallel"
    if name == "zhen-dev":
        return {
            "langs": ("zh", "en"),
            "extra": [ParallelCorpus(swapped_news(data, tmp), "zh", "en")],
        }
    if name == "enfr":
        return {
            "langs": ("en", "fr"),
            "extra": [
                ParallelCorpus(par / "tatoeba-en-fr.tsv.gz", "en", "fr"),
                ParallelCorpus(
                    par / "multi30k-train.en.gz", "en", "fr", tgt_path=par / "multi30k-train.fr.gz"
                ),
            ],
        }
    raise SystemExit(f"unknown gold set {name!r}; choose zhen-dev or enfr")


def score(gold: list, links_path: Path) -> dict:
    pred = [g.possible for g in read_pharaoh(links_path)]
    r = alignment_error_rate(gold, pred).as_dict()
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in r.items()}


def run_route(corpus_path: Path, langs: tuple[str, str], aligner, extra, out: Path) -> float:
    corpus = ParallelCorpus(corpus_path, *langs, fmt="moses", pretokenized=True)
    src_tok = make_tokenizer(langs[0], pretokenized=True)
    tgt_tok = make_tokenizer(langs[1], pretokenized=True)
    start = time.perf_counter()
    align_corpus(corpus, aligner, out, src_tok, tgt_tok, extra_corpora=extra)
    return round(time.perf_counter() - start, 1)


def tuned_encoder(
    model: str,
    extra: list[ParallelCorpus],
    langs: tuple[str, str],
    n_pairs: int,
    out: Path,
    resume: bool,
) -> dict:
    """Fine-tune ``model`` on the first ``n_pairs`` of the extra text; its recorded summary."""
    if resume and (out / TUNE_INFO).is_file():
        info = json.loads((out / TUNE_INFO).read_text(encoding="utf-8"))
        defaults = asdict(TuneConfig()) | {"layer": info["config"]["layer"]}
        if info["pairs"] == n_pairs and info["config"] == defaults:
            return info | {"reused": True}
        raise SystemExit(
            f"{out} was tuned on {info['pairs']} pairs with {info['config']}, not "
            f"{n_pairs} with the defaults; remove it or pass the same --tune-pairs"
        )
    pairs = []
    for corpus in extra:
        for item in corpus:
            if len(pairs) >= n_pairs:
                break
            pairs.append(item)
    src_tok, tgt_tok = make_tokenizer(langs[0]), make_tokenizer(langs[1])
    src = [t.tokens for t in src_tok.pipe(p.src_text for p in pairs)]
    tgt = [t.tokens for t in tgt_tok.pipe(p.tgt_text for p in pairs)]
    if out.exists():
        import shutil

        shutil.rmtree(out)
    summary = fine_tune(model, src, tgt, out, TuneConfig())
    return summary.as_dict() | {"reused": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument(
        "--model", required=True, help="encoder directory (e.g. multilingual-e5-small)"
    )
    parser.add_argument("--sets", default="zhen-dev,enfr")
    parser.add_argument("--tune-pairs", type=int, default=8000)
    parser.add_argument("--tune-sets", default="zhen-dev", help="gold sets to fine-tune for")
    parser.add_argument("--work", type=Path, default=ROOT / "runs" / "bench_align_gold")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--skip-tune", action="store_true")
    parser.add_argument("--softmax-threshold", type=float, default=0.1)
    args = parser.parse_args()
    gold_dir = args.data / "align-gold"
    if not gold_dir.is_dir():
        raise SystemExit(f"{args.data}: no align-gold/ here; pass --data PATH/TO/shared/data")
    args.work.mkdir(parents=True, exist_ok=True)
    report: dict = {
        "benchmark": "align_gold",
        "date": time.strftime("%Y-%m-%d"),
        "model": args.model,
        "tune_pairs": args.tune_pairs,
    }
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name in args.sets.split(","):
            spec = gold_set(name, args.data, tmp)
            langs, extra = spec["langs"], spec["extra"]
            corpus_path = gold_dir / f"{name}.src-tgt"
            gold = list(read_pharaoh(gold_dir / f"{name}.gold", one_indexed=True))
            res: dict = {"pairs": len(gold)}
            # eflomal: one sampler run, symmetrised both ways
            eflomal = build_aligner("eflomal")
            assert isinstance(eflomal, EflomalAligner)
            out = tmp / f"{name}.eflomal"
            secs = run_route(corpus_path, langs, eflomal, extra, out)
            res["eflomal"] = score(gold, out) | {"seconds": secs}
            gd = [symmetrize(f, r, "grow-diag") for f, r in eflomal.directional_links()]
            res["eflomal_grow_diag"] = {
                k: round(v, 4) if isinstance(v, float) else v
                for k, v in alignment_error_rate(gold, gd).as_dict().items()
            }
            neural = build_aligner("simalign", model=args.model)
            out = tmp / f"{name}.neural"
            secs = run_route(corpus_path, langs, neural, [], out)
            res["neural"] = score(gold, out) | {"seconds": secs}
            combined = build_aligner("combined", model=args.model)
            out = tmp / f"{name}.combined"
            secs = run_route(corpus_path, langs, combined, extra, out)
            res["combined"] = score(gold, out) | {"seconds": secs}
            combined = build_aligner(
                "combined", model=args.model, method="softmax", threshold=args.softmax_threshold
            )
            out = tmp / f"{name}.combined-softmax"
            secs = run_route(corpus_path, langs, combined, extra, out)
            res["combined_softmax"] = score(gold, out) | {"seconds": secs}
            if not args.skip_tune and name in args.tune_sets.split(","):
                enc = args.work / f"tuned-{name}-{args.tune_pairs}"
                res["tuning"] = tuned_encoder(
                    args.model, extra, langs, args.tune_pairs, enc, args.resume
                )
                for method in ("argmax", "softmax"):
                    aligner = build_aligner(
                        "simalign", model=str(enc), method=method, threshold=args.softmax_threshold
                    )
                    out = tmp / f"{name}.tuned-{method}"
                    secs = run_route(corpus_path, langs, aligner, [], out)
                    res[f"tuned_{method}"] = score(gold, out) | {"seconds": secs}
                combined = build_aligner(
                    "combined", model=str(enc), method="softmax", threshold=args.softmax_threshold
                )
                out = tmp / f"{name}.tuned-combined"
                secs = run_route(corpus_path, langs, combined, extra, out)
                res["tuned_combined"] = score(gold, out) | {"seconds": secs}
            report[name] = res
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
