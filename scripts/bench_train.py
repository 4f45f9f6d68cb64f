"""Benchmark training; prints one JSON object.

* ``demo``: ``xlre train`` end to end on the demo run with a tiny random XLM-R built by
  ``xlre init-model --tiny`` and ``corpora/demo-en-fr/train-tiny.toml``: wall time and
  the test-split relation micro-F1 per language (target: >= 0.90 in under 10 minutes
  on 2 CPU cores);
* ``throughput``: training steps (forward, backward, AdamW) of the real model on real
  demo batches and on fixed-length batches (sequence length 128), for the tiny shape and
  for an XLM-R-base-shaped encoder (random init): tokens/s; on a GPU with bf16, also the
  fraction of the GPU's bf16 peak (estimated from 6 FLOPs per parameter per token plus
  attention).

Usage: python scripts/bench_train.py [--run out/demo/run] [--skip-demo] [--steps 20]
       [--shapes tiny,base] [--peak-tflops 989]
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


def ensure_run(run: Path) -> Path:
    if (run / "manifest.json").exists():
        return run
    subprocess.run([sys.executable, "-m", "xlre.cli", "annotate", "--corpus",
                    str(DEMO / "parallel.tsv"), "--src-lang", "en", "--tgt-lang", "fr",
                    "--kb", str(DEMO / "kb"), "--out", str(run), "--shard-size", "1000"],
                   check=True, capture_output=True)
    return run


def bench_demo(run: Path, tmp: Path) -> dict:
    enc = tmp / "tiny-encoder"
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "xlre.cli", "init-model", "--tiny", "--run", str(run),
                    "--out", str(enc)], check=True, capture_output=True)
    built = time.perf_counter()
    out = tmp / "demo-model"
    subprocess.run([sys.executable, "-m", "xlre.cli", "train", "--run", str(run), "--model",
                    str(enc), "--out", str(out), "--config", str(DEMO / "train-tiny.toml")],
                   check=True, capture_output=True)
    done = time.perf_counter()
    metrics = json.loads((out / "metrics.json").read_text())
    history = json.loads((out / "history.json").read_text())["summary"]
    keys = ("relation_micro_f1", "relation_macro_f1", "entity_f1", "pr_auc")
    return {
        "init_model_seconds": round(built - start, 1),
        "train_seconds": round(done - built, 1),
        "best_epoch": history["best_epoch"],
        "test": {lg: {k: round(m[k], 4) for k in keys} for lg, m in metrics["test"].items()},
        "dev": {lg: {k: round(m[k], 4) for k in keys} for lg, m in metrics["dev"].items()},
    }


def flops_per_token(model, seq_len: int) -> float:
    """Training FLOPs per token: 6 x non-embedding parameters + attention scores."""
    enc = model.encoder.config
    params = sum(p.numel() for n, p in model.named_parameters() if "embeddings" not in n)
    attention = 12 * enc.num_hidden_layers * enc.hidden_size * seq_len
    return 6 * params + attention


def bench_throughput(run: Path, shape_name: str, steps: int, tmp: Path,
                     peak_tflops: float | None, batch_units: int, batch_seqs: int) -> dict:
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from xlre.annotate import iter_records
    from xlre.data import Collator, DataConfig, TrainUnits, build_relation_data, scan_run
    from xlre.modeling import XlreModel
    from xlre.modeling.tiny import BASE, TINY, build_encoder

    shape = {"tiny": TINY, "base": BASE}[shape_name]
    texts = [r["text"] for r in iter_records(run)]
    enc = build_encoder(tmp / f"enc-{shape_name}", texts, shape)
    gpu = torch.cuda.is_available()
    accelerator = Accelerator(mixed_precision="bf16" if gpu else "no")
    set_seed(0)
    config = DataConfig(max_seq_length=min(256, shape.max_positions - 2))
    from xlre.annotate import load_run

    labels, _, _ = scan_run(load_run(run), config)
    model, tok = XlreModel.from_encoder(str(enc), labels)
    data = build_relation_data(run, tok, config, labels)
    train = data.splits["train"]
    units = TrainUnits(train, "bag", config.max_bag_pairs, seed=0)
    collate = Collator(train, len(labels.relations), tok.pad_token_id)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    real_batches = [collate([units[(b * batch_units + i) % len(units)] for i in range(batch_units)])
                    for b in range(steps + 3)]

    def step(batch) -> None:
        batch = {k: v.to(accelerator.device) for k, v in batch.items() if k != "rows"}
        out = model(**batch)
        accelerator.backward(out.loss)
        optimizer.step()
        optimizer.zero_grad()

    def timed(batches) -> tuple[float, int]:
        for b in batches[:3]:  # warm-up
            step(b)
        if gpu:
            torch.cuda.synchronize()
        start = time.perf_counter()
        tokens = 0
        for b in batches[3:]:
            step(b)
            tokens += int(b["attention_mask"].sum())
        if gpu:
            torch.cuda.synchronize()
        return time.perf_counter() - start, tokens

    seconds, tokens = timed(real_batches)
    report = {
        "shape": {"hidden": shape.hidden, "layers": shape.layers, "heads": shape.heads,
                  "vocab": len(tok)},
        "device": str(accelerator.device), "mixed_precision": accelerator.mixed_precision,
        "demo_batches": {"steps": steps, "units_per_batch": batch_units,
                         "tokens_per_second": round(tokens / seconds),
                         "mean_sequences": round(sum(len(b["rows"]) for b in real_batches)
                                                 / len(real_batches), 1),
                         "mean_tokens": round(tokens / steps)},
    }
    # Fixed length 128: batch_seqs full sequences with their instances (no bags).
    fixed = []
    for k in range(steps + 3):
        b = collate([(k * batch_seqs + i) % len(train) for i in range(batch_seqs)])
        n = b["input_ids"].shape[0]
        ids = torch.randint(5, len(tok), (n, 128))
        ids[:, 0], ids[:, -1] = tok.cls_token_id, tok.sep_token_id
        b["input_ids"], b["attention_mask"] = ids, torch.ones_like(ids)
        ent = torch.full_like(ids, -100)
        ent[:, 1:-1] = 0
        b["entity_labels"] = ent
        fixed.append(b)
    seconds, tokens = timed(fixed)
    fixed_rate = tokens / seconds
    core = accelerator.unwrap_model(model)
    fpt = flops_per_token(core, 128)
    report["seq128"] = {"steps": steps, "sequences_per_batch": batch_seqs,
                        "tokens_per_second": round(fixed_rate),
                        "tflops_achieved": round(fixed_rate * fpt / 1e12, 3),
                        "flops_per_token": fpt}
    if gpu and peak_tflops:
        report["seq128"]["fraction_of_bf16_peak"] = round(fixed_rate * fpt / (peak_tflops * 1e12), 3)
        report["seq128"]["peak_tflops_assumed"] = peak_tflops
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, default=ROOT / "out" / "demo" / "run")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--shapes", default="tiny,base")
    parser.add_argument("--batch-units", default="tiny=16,base=4",
                        help="training units (bags) per demo batch, per shape")
    parser.add_argument("--batch-seqs", type=int, default=32,
                        help="sequences per fixed-length (128) batch")
    parser.add_argument("--peak-tflops", type=float, default=989.0,
                        help="GPU dense bf16 peak in TFLOP/s (H100 SXM: 989)")
    args = parser.parse_args()
    import os

    import torch

    report: dict = {"benchmark": "train", "date": time.strftime("%Y-%m-%d"),
                    "cpu_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = ensure_run(args.run)
        if not args.skip_demo:
            report["demo"] = bench_demo(run, tmp)
            print(json.dumps({"demo": report["demo"]}), file=sys.stderr)
        if not args.skip_throughput:
            units = dict(kv.split("=") for kv in args.batch_units.split(","))
            report["throughput"] = {}
            for name in args.shapes.split(","):
                report["throughput"][name] = bench_throughput(
                    run, name, args.steps, tmp, args.peak_tflops, int(units.get(name, 4)),
                    args.batch_seqs)
                print(json.dumps({name: report["throughput"][name]}), file=sys.stderr)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
