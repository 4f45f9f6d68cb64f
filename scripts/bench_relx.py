"""KBP37 -> RELX: train on gold English, score zero-shot on RELX English and French.

Trains xlre's relation head (and the encoder) on ``kbp37/train.txt`` with
``kbp37/dev.txt`` for model selection, through ``xlre.training.train`` with the two files
as marked sources, then scores the best model on ``relx/RELX_en.txt`` and
``relx/RELX_fr.txt`` with ``xlre.evaluation.evaluate_model``. The figure is the RELX
paper's: for each of the 18 relation types, F1 micro over its two directed labels, then
the mean over types (``no_relation`` excluded); reported as mean and spread over seeds.
Dirty records (empty entity markers exist in both datasets) are skipped and counted.

Needs a real pretrained encoder (e.g. multilingual-e5-small built offline by
``../shared/tools/me5-small/make.sh DIR``) and ``../shared/data``; prints
``{"skipped": ...}`` when the data is absent.

Usage: python scripts/bench_relx.py --model DIR [--seeds 13,14,15] [--out DIR]
       [--data ../shared/data] [--resume] [override ...]   (overrides as for ``xlre train``)

``--resume`` continues each seed's interrupted run in ``--out`` from its last
checkpoint, starts the seeds that have none, and takes a finished seed's result from its
``bench.json`` (written when the seed was scored) as it stands; either way the seed must
have the same settings, encoder and data (``xlre.training.check_same_run``).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Settings measured on 2 CPU cores (see BENCHMARKS.md): 55 to 70 minutes a seed there.
DEFAULTS = [
    "train.epochs=4", "train.batch_size=16", "train.learning_rate=5e-5",
    "train.head_learning_rate=1e-3", "train.warmup_ratio=0.1",
    "train.freeze_word_embeddings=true", "train.tracker='none'",
    "train.early_stopping_patience=0", "train.group_by_length=true",
    "data.max_seq_length=256", "data.relation_repr='punct'", "model.relation_loss='adaptive'",
    "model.entity_head=false",
]


class Progress:
    """Training progress on standard error, every 100 batches."""

    def __init__(self, seed: int) -> None:
        self.seed, self.done, self.start = seed, 0, time.perf_counter()

    def __call__(self, kind: str, advance: int, total: int) -> None:
        if kind == "epoch":
            self.done = 0
            print(f"seed {self.seed}: epoch {advance + 1}/{total}", file=sys.stderr, flush=True)
        elif kind == "train":
            self.done += advance
            if self.done % 100 == 0 or self.done == total:
                print(f"seed {self.seed}: batch {self.done}/{total}, "
                      f"{time.perf_counter() - self.start:.0f} s", file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="pretrained encoder directory or hub name")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--seeds", default="13,14,15")
    ap.add_argument("--out", type=Path, default=Path("out/bench-relx"))
    ap.add_argument("--resume", action="store_true",
                    help="continue the seeds' runs in --out from their last checkpoints")
    ap.add_argument("overrides", nargs="*", help="settings overrides, e.g. train.epochs=3")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    kbp, relx = args.data / "kbp37", args.data / "relx"
    needed = [kbp / "train.txt", kbp / "dev.txt", relx / "RELX_en.txt", relx / "RELX_fr.txt"]
    if not all(p.exists() for p in needed):
        print(json.dumps({"skipped": f"data not found under {args.data}"}))
        return

    from xlre.data.gold import MarkedSource
    from xlre.evaluation import evaluate_model
    from xlre.training import TrainError, check_same_run, latest_checkpoint, train
    from xlre.training.settings import load_settings

    overrides = [*DEFAULTS, *args.overrides]
    train_sources = [MarkedSource(kbp / "train.txt", "en", "train"),
                     MarkedSource(kbp / "dev.txt", "en", "dev")]
    test_sources = [MarkedSource(relx / "RELX_en.txt", "en", "test"),
                    MarkedSource(relx / "RELX_fr.txt", "fr", "test")]
    runs = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        settings = load_settings(None, [*overrides, f"train.seed={seed}"])
        out = args.out / f"seed-{seed}"
        done = out / "bench.json"
        if args.resume and done.exists():
            # Scored already: training it "again" would only redo the final evaluation and
            # overwrite the run's history (its training time) with a near-zero session.
            # train's own check against the run's train.toml and train_inputs.json: the
            # same settings (not spelling: defaults move), encoder and data files.
            try:
                check_same_run(out, args.model, settings, marked=train_sources)
            except TrainError as exc:
                sys.exit(f"{exc}; use another --out for these")
            runs.append(json.loads(done.read_text(encoding="utf-8")))
            print(f"seed {seed}: finished earlier, result from {done}", file=sys.stderr)
            continue
        start = time.perf_counter()
        # train's own notion of a resumable run: a seed stopped before its first
        # checkpoint starts over instead of failing with "no checkpoint to resume from".
        resume = args.resume and latest_checkpoint(out) is not None
        metrics = train(None, args.model, out, settings, resume=resume, marked=train_sources,
                        skip_bad=True, progress=Progress(seed))
        trained = time.perf_counter()
        dev = metrics["dev"]["en"]
        # train chose the relation threshold on KBP37 dev (train.tune_threshold: the best
        # of the marked grid) and wrote it into the model's config, so RELX is scored
        # with it; RELX never chooses anything.
        grid = dev["marked_f1_at_threshold"]
        threshold = f"{json.loads((out / 'config.json').read_text(encoding='utf-8'))['relation_threshold']:g}"
        default_threshold = settings.model.relation_threshold
        result = evaluate_model(out, None, "test", out_dir=out, marked=test_sources,
                                skip_bad=True)
        m = result["metrics"]
        runs.append({
            "seed": seed,
            "threshold": float(threshold),
            "kbp37_dev_f1": round(100 * grid[threshold], 2),
            "kbp37_dev_f1_at_default_threshold": round(100 * dev["marked_f1"], 2),
            "relx_en_f1": round(100 * m["en"]["marked_f1"], 2),
            "relx_fr_f1": round(100 * m["fr"]["marked_f1"], 2),
            "relx_en_f1_at_default_threshold": round(
                100 * m["en"]["marked_f1_at_threshold"][f"{default_threshold:g}"], 2),
            "relx_fr_f1_at_default_threshold": round(
                100 * m["fr"]["marked_f1_at_threshold"][f"{default_threshold:g}"], 2),
            "relx_en_per_type_f1": {t: round(100 * v["f1"], 1)
                                    for t, v in m["en"]["marked_per_type"].items()},
            "relx_fr_per_type_f1": {t: round(100 * v["f1"], 1)
                                    for t, v in m["fr"]["marked_per_type"].items()},
            "train_s": round(trained - start, 1),
            "eval_s": round(time.perf_counter() - trained, 1),
        })
        done.write_text(json.dumps(runs[-1], indent=2) + "\n", encoding="utf-8")
        print(json.dumps(runs[-1]), file=sys.stderr, flush=True)

    def summary(key: str) -> dict[str, float]:
        vals = [r[key] for r in runs]
        return {"mean": round(statistics.mean(vals), 2),
                "stdev": round(statistics.stdev(vals), 2) if len(vals) > 1 else 0.0,
                "min": min(vals), "max": max(vals)}

    print(json.dumps({
        "model": args.model, "overrides": overrides, "seeds": [r["seed"] for r in runs],
        "relx_en_f1": summary("relx_en_f1"), "relx_fr_f1": summary("relx_fr_f1"),
        "kbp37_dev_f1": summary("kbp37_dev_f1"),
        "targets": {"relx_en_f1": 61.8, "relx_fr_f1": 58.3}, "runs": runs,
    }, indent=2))


if __name__ == "__main__":
    main()
