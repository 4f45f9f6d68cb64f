"""Benchmark annotation runs and projection; prints one JSON object.

* ``xlre annotate`` (gazetteer linking + eflomal) with the shared Wikidata KB over the
  first 20k pairs and over the whole shared Tatoeba EN-FR file: pairs/s and peak RSS
  (each run in its own process, so RSS figures do not mix);
* ``xlre eval-projection`` on RELX EN->FR, eflomal trained with the shared EN-FR text;
* ``--engine ray``: instead, the local engine against ``--engine ray`` (a local Ray
  instance with ``--workers`` CPUs) on the same corpus (``--pairs``, default 100k) and the
  same eflomal priors (trained once on the first 20k pairs, as a cluster run would):
  pairs/s of each over the whole run and over the shard stage, and their ratio.

Usage: python scripts/bench_annotate.py [--data ../shared/data] [--workers 2]
       [--engine ray [--pairs 100000]]
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD = """
import json, resource, sys
from xlre.annotate import AnnotateConfig, annotate
m = annotate(AnnotateConfig(**json.loads(sys.argv[1])))
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"pairs": m["counts"]["pairs"], "pairs_per_second": m["pairs_per_second"],
                  "timings_seconds": m["timings_seconds"], "peak_rss_mb": round(max(rss, kids) / 1024),
                  "relations": m["counts"]["relations"], "projection": m["counts"]["projection"]}))
"""


def run_annotate(corpus: Path, kb: Path, out: Path, workers: int, **extra: object) -> dict:
    cfg = {"corpus": str(corpus), "src_lang": "en", "tgt_lang": "fr", "kb": str(kb),
           "out": str(out), "workers": workers, **extra}
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True,
                         text=True, check=True)
    got = json.loads(res.stdout.strip().splitlines()[-1])
    got["wall_seconds"] = round(time.perf_counter() - start, 1)
    got["relations"] = {lang: sum(v for k, v in c.items() if k != "NA") for lang, c in got["relations"].items()}
    return got


def head(src_gz: Path, dst: Path, n: int) -> Path:
    with gzip.open(src_gz, "rt", encoding="utf-8") as src, open(dst, "w", encoding="utf-8") as out:
        for k, line in enumerate(src):
            if k == n:
                break
            out.write(line)
    return dst


def compare_engines(tatoeba: Path, kb: Path, workers: int, pairs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        sample = head(tatoeba, tmp_dir / "sample.tsv", 20000)
        corpus = head(tatoeba, tmp_dir / "corpus.tsv", pairs)
        run_annotate(sample, kb, tmp_dir / "priors-run", 1)
        priors = str(tmp_dir / "priors-run" / "priors.txt")
        out: dict = {}
        for engine in ("local", "ray"):
            got = run_annotate(corpus, kb, tmp_dir / f"run-{engine}", workers, priors=priors,
                               engine=engine)
            got["shard_stage_pairs_per_second"] = round(
                got["pairs"] / got["timings_seconds"]["annotate_shards"], 1)
            out[f"engine_{engine}"] = got
        out["ray_over_local"] = {
            key: round(out["engine_ray"][key] / out["engine_local"][key], 3)
            for key in ("pairs_per_second", "shard_stage_pairs_per_second")}
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-projection", action="store_true")
    parser.add_argument("--engine", choices=["local", "ray"], default="local")
    parser.add_argument("--pairs", type=int, default=100000)
    args = parser.parse_args()
    tatoeba = args.data / "parallel" / "tatoeba-en-fr.tsv.gz"
    kb = args.data / "kb-wikidata-mtrex"
    if not tatoeba.exists() or not kb.is_dir():
        raise SystemExit(f"{args.data}: shared data not found; pass --data PATH/TO/shared/data")
    report: dict = {"benchmark": "annotate", "date": time.strftime("%Y-%m-%d"), "workers": args.workers}
    if args.engine == "ray":
        report.update(compare_engines(tatoeba, kb, args.workers, args.pairs))
        print(json.dumps(report, indent=2))
        return
    with tempfile.TemporaryDirectory() as tmp:
        small = head(tatoeba, Path(tmp) / "tatoeba-20k.tsv", 20000)
        report["annotate_20k"] = run_annotate(small, kb, Path(tmp) / "run20k", args.workers)
        report["annotate_full"] = run_annotate(tatoeba, kb, Path(tmp) / "runfull", args.workers)
    if not args.skip_projection:
        from alignment.aligners import build_aligner
        from alignment.corpus import ParallelCorpus
        from xlre.evaluation.projection import evaluate_projection

        par = args.data / "parallel"
        extras = [ParallelCorpus(tatoeba, "en", "fr"),
                  ParallelCorpus(par / "multi30k-train.en.gz", "en", "fr", tgt_path=par / "multi30k-train.fr.gz")]
        result = evaluate_projection(args.data / "relx" / "RELX_en.txt", args.data / "relx" / "RELX_fr.txt",
                                     "en", "fr", build_aligner("eflomal", symmetrize="grow-diag-final-and"), extras)
        report["relx_projection_en_fr"] = result
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
