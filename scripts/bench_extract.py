"""Benchmark triple extraction and knowledge-graph export; prints one JSON object.

* ``quality``: the demo model (``--model``, e.g. ``out/demo/model`` from ``make demo``)
  on ``corpora/demo-en-fr/heldout-gold.jsonl`` (sentences from templates the training
  corpus never uses), KB-linked: triple precision / recall / F1 per language against
  the gold (subject id, relation, object id) sets;
* ``speed``: sentences/s of ``Extractor.extract`` for the demo model (tiny shape) and for
  an XLM-R-base-shaped random model, on the held-out sentences repeated to
  ``--sentences``; on a GPU when one is present (bf16 autocast is not used: fp32);
* ``export``: ``scripts/bench_export.py`` (1M synthetic triples to N-Triples: time
  and peak memory), unless ``--skip-export``;
* ``engines`` (with ``--engines``): ``xlre extract --out DIR/`` over the same held-out
  sentences (``--engine-sentences``, cut into ``--parts`` JSONL parts) with the local
  engine and with Ray (a fresh local Ray instance per run) with 1 actor of all the CPUs
  and with one actor per CPU: wall time, sentences/s, Ray's fixed start-up (Ray itself,
  then the actors loading the model) and the corpus size from which Ray is faster.

Usage: python scripts/bench_extract.py --model out/demo/model [--sentences 2000]
       python scripts/bench_extract.py --model out/demo/model --engines --skip-base --skip-export
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "corpora" / "demo-en-fr"


def load_gold() -> list[dict]:
    with open(DEMO / "heldout-gold.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def quality(model: Path) -> dict:
    from xlre.extraction import Document, Extractor

    gold = load_gold()
    ex = Extractor.from_pretrained(model, kb=DEMO / "kb")
    docs = [Document(f"{g['id']}:{g['lang']}", g["text"], g["lang"]) for g in gold]
    pred: dict[str, set] = {}
    for t in ex.extract(docs):
        pred.setdefault(t.evidence.doc_id, set()).add(
            (t.subject.kb_id, t.relation, t.object.kb_id))
    out = {}
    for lang in sorted({g["lang"] for g in gold}):
        tp = fp = fn = 0
        for g in gold:
            if g["lang"] != lang:
                continue
            truth = {(x["subject"], x["relation"], x["object"]) for x in g["triples"]}
            got = pred.get(f"{g['id']}:{lang}", set())
            tp, fp, fn = tp + len(got & truth), fp + len(got - truth), fn + len(truth - got)
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        out[lang] = {"precision": round(p, 4), "recall": round(r, 4),
                     "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
                     "gold_triples": tp + fn, "sentences": sum(g["lang"] == lang for g in gold)}
    return out


def speed(model_dir: Path, n: int, batch_size: int) -> dict:
    import torch

    from xlre.extraction import Document, Extractor

    gold = load_gold()
    docs = [Document(str(i), gold[i % len(gold)]["text"], gold[i % len(gold)]["lang"])
            for i in range(n)]
    ex = Extractor.from_pretrained(model_dir, batch_size=batch_size)
    list(ex.extract(docs[:64]))  # warm-up
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    start = time.perf_counter()
    triples = sum(1 for _ in ex.extract(docs))
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"sentences": n, "seconds": round(seconds, 2),
            "sentences_per_second": round(n / seconds, 1), "triples": triples,
            "device": str(ex.device), "batch_size": batch_size}


def base_shaped_model(model_dir: Path, tmp: Path) -> Path:
    """A random XLM-R-base-shaped XlreModel with the demo model's labels (speed only)."""
    from transformers import AutoTokenizer

    from xlre.modeling import XlreModel
    from xlre.modeling.tiny import BASE, build_encoder

    texts = [g["text"] for g in load_gold()]
    enc = build_encoder(tmp / "base-encoder", texts * 5, BASE)
    demo = XlreModel.from_pretrained(model_dir)
    model, tok = XlreModel.from_encoder(
        str(enc), demo.config.labels, tokenizer=AutoTokenizer.from_pretrained(enc),
        relation_repr=demo.config.relation_repr, max_seq_length=256)
    out = tmp / "base-model"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def engines(model_dir: Path, n: int, parts: int, batch_size: int, tmp: Path) -> dict:
    """The local engine against Ray with 1 and with N actors on the same parts."""
    import os

    from xlre.extraction.partdir import PartSettings
    from xlre.extraction.parts import extract_parts
    from xlre.extraction.ray_engine import RayOptions

    gold = load_gold()
    files = []
    for k in range(parts):
        path = tmp / f"in/part-{k:03d}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            for i in range(k, n, parts):
                g = gold[i % len(gold)]
                fh.write(json.dumps({"id": f"s{i}", "text": g["text"], "lang": g["lang"]}) + "\n")
        files.append(str(path))
    settings = PartSettings(model=str(model_dir), batch_size=batch_size)
    cpus = os.cpu_count() or 1
    runs = [("local", "local", None), ("ray_1_actor", "ray", RayOptions(actors=1, cpus_per_actor=cpus))]
    if cpus > 1:
        runs.append((f"ray_{cpus}_actors", "ray", RayOptions(actors=cpus, cpus_per_actor=1)))
    out: dict = {"sentences": n, "parts": parts, "cpus": cpus, "batch_size": batch_size}
    lines = None
    for key, engine, options in runs:
        start = time.perf_counter()
        result = extract_parts(files, tmp / key, settings, engine=engine, ray_options=options)
        wall = time.perf_counter() - start
        got = sorted((tmp / key).glob("*.jsonl"))
        text = [p.read_text(encoding="utf-8") for p in got]
        if lines is None:
            lines = text
        row = {"wall_seconds": round(wall, 2), "sentences_per_second": round(n / wall, 1),
               "triples": result["counts"]["triples"], "same_parts_as_local": text == lines}
        info = result.get("engine_info")
        if info:
            startup = info["ray_start_seconds"] + info["actors_ready_seconds"]
            row.update(actors=info["actors"], startup_seconds=round(startup, 2),
                       ray_start_seconds=info["ray_start_seconds"],
                       actors_ready_seconds=info["actors_ready_seconds"],
                       steady_sentences_per_second=round(n / max(wall - startup, 1e-9), 1))
        out[key] = row
        print(json.dumps({key: row}), file=sys.stderr)
    local_rate = out["local"]["sentences_per_second"]
    for key, *_ in runs[1:]:
        row = out[key]
        steady = row["steady_sentences_per_second"]
        # Ray is faster once n / local_rate > startup + n / steady.
        gain = 1 / local_rate - 1 / steady
        row["faster_than_local_from_sentences"] = (
            round(row["startup_seconds"] / gain) if gain > 0 else None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=ROOT / "out" / "demo" / "model")
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--skip-base", action="store_true")
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--export-triples", type=int, default=1_000_000)
    parser.add_argument("--engines", action="store_true",
                        help="also compare the local and Ray engines of `xlre extract --out DIR/`")
    parser.add_argument("--engine-sentences", type=int, default=20000)
    parser.add_argument("--parts", type=int, default=8)
    args = parser.parse_args()
    if not (args.model / "config.json").exists():
        raise SystemExit(f"{args.model}: no trained model; run `make demo` first or pass --model")
    import torch

    report: dict = {"benchmark": "extract", "date": time.strftime("%Y-%m-%d"),
                    "cpu_threads": torch.get_num_threads(),
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
                    "model": str(args.model)}
    report["quality_heldout"] = quality(args.model)
    print(json.dumps({"quality_heldout": report["quality_heldout"]}), file=sys.stderr)
    report["speed"] = {"tiny": speed(args.model, args.sentences, args.batch_size)}
    print(json.dumps(report["speed"]), file=sys.stderr)
    if not args.skip_base:
        with tempfile.TemporaryDirectory() as tmp:
            base = base_shaped_model(args.model, Path(tmp))
            report["speed"]["base"] = speed(base, max(args.sentences // 10, 100),
                                            args.batch_size)
        print(json.dumps(report["speed"]), file=sys.stderr)
    if args.engines:
        with tempfile.TemporaryDirectory() as tmp:
            report["engines"] = engines(args.model, args.engine_sentences, args.parts,
                                        args.batch_size, Path(tmp))
    if not args.skip_export:
        done = subprocess.run([sys.executable, str(ROOT / "scripts" / "bench_export.py"),
                               "--n", str(args.export_triples)],
                              capture_output=True, text=True, check=True)
        report["export"] = json.loads(done.stdout)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
