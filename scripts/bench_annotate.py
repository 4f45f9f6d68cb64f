"""Benchmark annotation runs and projection; prints one JSON object.

* ``xlre annotate`` (gazetteer linking + eflomal) with the shared Wikidata KB over the
  first 20k pairs and over the whole shared Tatoeba EN-FR file: pairs/s and peak RSS
  (each run in its own process, so RSS figures do not mix);
* end to end against eflomal (issue 22): ``xlre annotate --workers N`` on the first
  ``--pairs-vs-eflomal`` (60k) Tatoeba pairs, over the in-memory KB and over a prebuilt
  ``--kb-index``, against eflomal's own Python API aligning the same pairs pre-tokenised
  and lowercased (only that call timed): pairs/s of each and their ratio, on the
  annotate process's wall time (start-up included) and on the run's own total;
* news-en-zh with ``kb-wikidata-v2``: pairs/s, the run's stage timings and where the
  shard stage's time goes (``counts.step_seconds``);
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
                  "step_seconds": m["counts"].get("step_seconds", {}),
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


def eflomal_own_seconds(corpus: Path, prefix_len: int = 4) -> tuple[int, float]:
    """eflomal's own ``Aligner.align`` on ``corpus`` tokenised (spaCy, as xlre does) and
    lowercased into two files; only that call is timed. xlre's eflomal defaults."""
    import eflomal

    from alignment.corpus import ParallelCorpus
    from alignment.records import SentencePair
    from alignment.tokenize import Tokenizer

    en, fr = Tokenizer("en"), Tokenizer("fr")
    pairs = [p for p in ParallelCorpus(corpus, "en", "fr") if isinstance(p, SentencePair)]
    with tempfile.TemporaryDirectory() as tmp:
        src, tgt = Path(tmp) / "src.lc", Path(tmp) / "tgt.lc"
        src.write_text("".join(" ".join(t.tokens).lower() + "\n" for t in en.pipe(p.src_text for p in pairs)),
                       encoding="utf-8")
        tgt.write_text("".join(" ".join(t.tokens).lower() + "\n" for t in fr.pipe(p.tgt_text for p in pairs)),
                       encoding="utf-8")
        aligner = eflomal.Aligner(n_samplers=3, null_prior=0.2, source_prefix_len=prefix_len,
                                  target_prefix_len=prefix_len)
        with open(src, encoding="utf-8") as fs, open(tgt, encoding="utf-8") as ft:
            start = time.perf_counter()
            aligner.align(fs, ft, links_filename_fwd=str(Path(tmp) / "fwd"),
                          links_filename_rev=str(Path(tmp) / "rev"), quiet=True)
            return len(pairs), time.perf_counter() - start


def against_eflomal(tatoeba: Path, kb: Path, workers: int, n_pairs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        corpus = head(tatoeba, tmp_dir / "corpus.tsv", n_pairs)
        subprocess.run([sys.executable, "-m", "xlre.cli", "kb", "index", str(kb), "--out",
                        str(tmp_dir / "index"), "--langs", "en,fr"], check=True, capture_output=True)
        out: dict = {"pairs": n_pairs, "workers": workers}
        pairs, own = eflomal_own_seconds(corpus)
        out["eflomal_own"] = {"seconds": round(own, 2), "pairs_per_second": round(pairs / own, 1)}
        for label, extra in (("in_memory_kb", {}), ("kb_index", {"kb_index": str(tmp_dir / "index")})):
            got = run_annotate(corpus, kb, tmp_dir / f"run-{label}", workers, **extra)
            got["wall_pairs_per_second"] = round(got["pairs"] / got["wall_seconds"], 1)
            got["ratio_to_eflomal_wall"] = round(got["wall_pairs_per_second"] / (pairs / own), 3)
            got["ratio_to_eflomal_run_total"] = round(got["pairs_per_second"] / (pairs / own), 3)
            out[label] = got
        return out


def news_breakdown(data: Path, workers: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        got = run_annotate(data / "parallel" / "news-en-zh.tsv.gz", data / "kb-wikidata-v2",
                           Path(tmp) / "run", workers, tgt_lang="zh")
    got["wall_pairs_per_second"] = round(got["pairs"] / got["wall_seconds"], 1)
    return got


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
    parser.add_argument("--pairs-vs-eflomal", type=int, default=60000)
    parser.add_argument("--only-issue-22", action="store_true",
                        help="only the eflomal comparison and the news-en-zh breakdown")
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
    report["end_to_end_vs_eflomal"] = against_eflomal(tatoeba, kb, args.workers, args.pairs_vs_eflomal)
    print(json.dumps(report["end_to_end_vs_eflomal"]), file=sys.stderr)
    report["news_en_zh"] = news_breakdown(args.data, args.workers)
    if args.only_issue_22:
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
