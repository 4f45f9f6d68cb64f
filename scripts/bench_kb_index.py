"""Benchmark the on-disk KB index (xlre.kb.index); prints one JSON object.

* **Build:** a synthetic KB of ``--entities`` generated names (two aliases each, so 5M
  aliases at the default) and two facts per entity; the seconds to load it as text and
  to write the index with an English gazetteer, and aliases indexed per minute.
* **Memory of N workers:** for N in ``--workers`` (1, 2, 4), N forked processes each link
  the same ``--sentences`` synthetic sentences, once over the in-memory KB and gazetteer
  built in the parent (today's path) and once over the index opened by path. While all
  N wait, each process's PSS (``/proc/PID/smaps_rollup``) is read: the parent's, the
  workers' sum, and the total; PSS splits shared pages among the processes that map them.
* **Annotation speed** (``--news``): ``xlre annotate`` on news-en-zh with
  ``kb-wikidata-v2``, in memory and with ``--kb-index``, from the same word links, each in
  its own process: pairs/s of the shard stage (link, label, project, write).

Usage: python scripts/bench_kb_index.py [--work DIR] [--entities 2500000]
       [--workers 1,2,4] [--sentences 20000] [--news] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SYLLABLES = [a + b for a in "bdfgklmnprstvz" for b in ("a", "e", "i", "o", "u", "an", "el", "or")]


def word(k: int, parts: int) -> str:
    out = []
    for _ in range(parts):
        k, r = divmod(k, len(SYLLABLES))
        out.append(SYLLABLES[r])
    return "".join(out).capitalize()


def name(i: int) -> tuple[str, str]:
    """Two distinct aliases of entity ``i``: a two-word name and its three-word form."""
    first, last = word(i % 9973, 2), word(i // 9973 + 7, 3)
    return f"{first} {last}", f"{first} {word(i % 7919, 2)} {last}"


def write_synthetic_kb(kb_dir: Path, n: int, seed: int = 13) -> None:
    if (kb_dir / "triples.tsv").exists():
        return  # made by an earlier run with the same --work
    tmp = kb_dir.with_name(kb_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    rng = random.Random(seed)
    rels = [f"P{k}" for k in range(1, 21)]
    with open(tmp / "relations.jsonl", "w", encoding="utf-8") as fh:
        for r in rels:
            fh.write(json.dumps({"id": r, "labels": {"en": f"relation {r}"}}) + "\n")
    with open(tmp / "entities.jsonl", "w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"Q{i + 1}", "type": ("PER", "LOC", "ORG")[i % 3],
                                 "labels": {"en": list(name(i))}, "popularity": rng.randrange(200)}) + "\n")
    with open(tmp / "triples.tsv", "w", encoding="utf-8") as fh:
        for i in range(n):
            for _ in range(2):
                fh.write(f"Q{i + 1}\t{rng.choice(rels)}\tQ{rng.randrange(n) + 1}\n")
    tmp.rename(kb_dir)


def sentences(n_entities: int, count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        a, b = (name(rng.randrange(n_entities))[rng.randrange(2)] for _ in range(2))
        out.append(f"Yesterday {a} met {b} in the old town hall .")
    return out


def pss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    raise RuntimeError(f"no Pss line in /proc/{pid}/smaps_rollup")


_LINKER = None


def _work(texts: list[str], done: multiprocessing.Queue, release: multiprocessing.Event) -> None:
    from alignment.tokenize import Tokenizer

    tok = Tokenizer("en", pretokenized=True)
    start = time.perf_counter()
    linked = sum(len(_LINKER.link(t)) for t in tok.pipe(texts))
    done.put((linked, time.perf_counter() - start))
    release.wait()


def measure_workers(make_linker, n_workers: int, texts: list[str]) -> dict:
    """PSS of the parent and ``n_workers`` forked workers that each link ``texts``."""
    global _LINKER
    _LINKER = make_linker()
    gc.collect()
    ctx = multiprocessing.get_context("fork")
    done, release = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_work, args=(texts, done, release)) for _ in range(n_workers)]
    for p in procs:
        p.start()
    results = [done.get() for _ in procs]
    parent = pss_kib(multiprocessing.current_process().pid or 0)
    workers = [pss_kib(p.pid) for p in procs]  # type: ignore[arg-type]
    release.set()
    for p in procs:
        p.join()
    _LINKER = None
    gc.collect()
    mib = 1024
    return {"workers": n_workers, "parent_pss_mib": round(parent / mib), "workers_pss_mib": [round(w / mib) for w in workers],
            "total_pss_mib": round((parent + sum(workers)) / mib),
            "linked_per_worker": results[0][0],
            "sentences_per_second_per_worker": round(len(texts) / max(r[1] for r in results), 1)}


def memory_child(variant: str, kb_dir: Path, index_dir: Path, n: int, count: int, n_entities: int) -> dict:
    """One measurement, in a fresh process so that no earlier KB lingers in its heap."""
    from xlre.kb import EntityLinker, Gazetteer, load_kb
    from xlre.kb.index import KBIndex

    texts = sentences(n_entities, count)
    start = time.perf_counter()
    if variant == "index":
        index = KBIndex(index_dir)
        def make():
            return EntityLinker(index, index.gazetteer("en"))
    elif variant == "in_memory":
        kb = load_kb(kb_dir)
        gaz = Gazetteer(kb, "en")
        def make():
            return EntityLinker(kb, gaz)
    else:  # the interpreter and imports alone: what every process costs anyway
        from alignment.tokenize import Tokenizer
        from xlre.kb import stop_words

        stop_words("en")
        Tokenizer("en", pretokenized=True)

        def make():
            return None
    got = measure_workers(make, n, texts) if variant != "baseline" else {
        "parent_pss_mib": round(pss_kib(multiprocessing.current_process().pid or 0) / 1024)}
    got["open_seconds"] = round(time.perf_counter() - start, 1)
    return got


def bench_memory(kb_dir: Path, index_dir: Path, worker_counts: list[int], memory_counts: list[int],
                 count: int, n_entities: int) -> dict:
    def child(variant: str, n: int) -> dict:
        res = subprocess.run([sys.executable, __file__, "--memory-child", variant, "--work", str(kb_dir.parent),
                              "--entities", str(n_entities), "--sentences", str(count), "--workers", str(n)],
                             capture_output=True, text=True)
        if res.returncode:
            raise SystemExit(f"memory child failed:\n{res.stderr[-3000:]}")
        got = json.loads(res.stdout.strip().splitlines()[-1])
        print(json.dumps({variant: got}), file=sys.stderr)  # as it comes: a long run
        return got

    out: dict = {"baseline_process": child("baseline", 1)}
    out["index"] = [child("index", n) for n in worker_counts]
    out["in_memory"] = [child("in_memory", n) for n in memory_counts]
    return out


CHILD = """
import json, sys, time
from xlre.annotate import AnnotateConfig, annotate
m = annotate(AnnotateConfig(**json.loads(sys.argv[1])))
print(json.dumps({"pairs": m["counts"]["pairs"], "timings_seconds": m["timings_seconds"],
                  "relations": m["counts"]["relations"], "linking": m["counts"]["linking"]}))
"""


def run_child(cfg: dict) -> dict:
    res = subprocess.run([sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True)
    if res.returncode:
        raise SystemExit(f"annotate failed:\n{res.stderr[-3000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def bench_news(data: Path, work: Path, workers: int) -> dict:
    corpus, kb = data / "parallel" / "news-en-zh.tsv.gz", data / "kb-wikidata-v2"
    base = {"corpus": str(corpus), "src_lang": "en", "tgt_lang": "zh", "kb": str(kb), "workers": workers}
    first = work / "news-links"
    if not (first / "manifest.json").exists():
        shutil.rmtree(first, ignore_errors=True)
        run_child({**base, "out": str(first)})  # the word links both runs reuse
    out: dict = {"corpus": str(corpus), "kb": str(kb), "workers": workers}
    for label, extra in (("in_memory", {}), ("index", {"kb_index": str(work / "v2-index")}),
                         ("in_memory_again", {})):
        run = work / f"news-{label}"
        shutil.rmtree(run, ignore_errors=True)
        run.mkdir(parents=True)
        for name_ in ("alignment.links", "priors.txt", "corpus.json", "casing.tsv"):
            if (first / name_).exists():
                shutil.copy(first / name_, run / name_)
        got = run_child({**base, "out": str(run), **extra})
        got["shard_stage_pairs_per_second"] = round(got["pairs"] / got["timings_seconds"]["annotate_shards"], 1)
        out[label] = got
    out["index_over_in_memory"] = round(
        out["index"]["shard_stage_pairs_per_second"]
        / ((out["in_memory"]["shard_stage_pairs_per_second"] + out["in_memory_again"]["shard_stage_pairs_per_second"]) / 2), 3)
    out["same_labels"] = all(out["index"][k] == out["in_memory"][k] for k in ("relations", "linking"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=ROOT / "out" / "bench-kb-index")
    parser.add_argument("--entities", type=int, default=2_500_000)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--in-memory-workers", default=None,
                        help="worker counts for the in-memory KB (default: --workers); each forked "
                             "worker may copy the whole KB, so large KBs need fewer")
    parser.add_argument("--sentences", type=int, default=20000)
    parser.add_argument("--news", action="store_true", help="also time annotation of news-en-zh")
    parser.add_argument("--news-workers", type=int, default=1)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--rebuild", action="store_true",
                        help="build (and time) the index again even when --work has one")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    from xlre.kb import load_kb
    from xlre.kb.index import build_index

    args.work.mkdir(parents=True, exist_ok=True)
    kb_dir, index_dir = args.work / f"synthetic-{args.entities}", args.work / f"synthetic-{args.entities}.index"
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, kb_dir, index_dir, int(args.workers),
                                      args.sentences, args.entities)))
        return
    report: dict = {"benchmark": "kb_index", "date": time.strftime("%Y-%m-%d"), "entities": args.entities}
    start = time.perf_counter()
    write_synthetic_kb(kb_dir, args.entities)
    report["write_kb_seconds"] = round(time.perf_counter() - start, 1)
    build_file = args.work / f"build-{args.entities}.json"
    if args.rebuild or not build_file.exists():
        start = time.perf_counter()
        kb = load_kb(kb_dir)
        load_s = time.perf_counter() - start
        start = time.perf_counter()
        index = build_index(kb_dir, index_dir, [("en", 2, "smart", "fold")], kb)
        build_s = time.perf_counter() - start
        n_aliases = index.gazetteer("en").n_aliases
        del kb
        gc.collect()
        size = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())
        build_file.write_text(json.dumps({
            "aliases": n_aliases, "triples": index.summary()["triples"],
            "load_text_kb_seconds": round(load_s, 1), "index_seconds": round(build_s, 1),
            "aliases_per_minute_index": round(n_aliases / build_s * 60),
            "aliases_per_minute_with_load": round(n_aliases / (build_s + load_s) * 60),
            "index_mib": round(size / 2**20), "date": time.strftime("%Y-%m-%d %H:%M"),
        }))
    report["build"] = json.loads(build_file.read_text())  # this run's, or the last --rebuild's
    print(json.dumps(report["build"]), file=sys.stderr)
    if not args.skip_memory:
        counts = [int(w) for w in args.workers.split(",")]
        mem_counts = [int(w) for w in (args.in_memory_workers or args.workers).split(",")]
        report["memory"] = bench_memory(kb_dir, index_dir, counts, mem_counts, args.sentences, args.entities)
    if args.news:
        report["news_en_zh"] = bench_news(args.data, args.work, args.news_workers)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
