"""LoRA against full fine-tuning on the RELX bench's settings: trainable parameters, step
time and peak memory; prints one JSON object.

Each mode trains ``--steps`` optimizer steps on KBP37's training file (as
``scripts/bench_relx.py`` does, with its settings; LoRA adds ``model.peft=lora`` and
LoRA's learning rate) in a child process of its own, so that its peak resident memory
(the child's own ``ru_maxrss``, CPU memory: on a GPU it would be the CUDA peak that counts) is its own. Step time is the training loop's seconds over
its steps (``history.json``: data preparation and saving excluded); the first
``--warmup`` steps are a separate session and are not counted. F1 is not measured here:
it comes from ``scripts/bench_relx.py`` runs (BENCHMARKS.md).

Usage: python scripts/bench_lora.py --model DIR [--data ../shared/data] [--steps 40]
       [--warmup 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

MODES = {"full": [], "lora": ["model.peft='lora'", "train.learning_rate=5e-4"]}


def child(model: str, data: Path, out: Path, mode: str, steps: int, warmup: int) -> None:
    import logging

    from bench_relx import DEFAULTS

    from xlre.data.gold import MarkedSource
    from xlre.training import train
    from xlre.training.settings import load_settings

    logging.basicConfig(level=logging.WARNING)
    kbp = data / "kbp37"
    sources = [MarkedSource(kbp / "train.txt", "en", "train"),
               MarkedSource(kbp / "dev.txt", "en", "dev")]
    base = [*DEFAULTS, *MODES[mode], "train.epochs=1", "train.tune_threshold=false"]
    # A session of `warmup` steps, then one that resumes and runs `steps` more: the
    # second's history.json times only warm steps.
    base.append(f"train.max_steps={warmup + steps}")
    train(None, model, out, load_settings(None, [*base, f"train.stop_after_steps={warmup}"]),
          marked=sources, skip_bad=True)
    train(None, model, out, load_settings(None, base), resume=True, marked=sources,
          skip_bad=True)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # Linux: KiB
    (out / "peak_rss.json").write_text(json.dumps({"peak_rss_mib": round(peak_kib / 1024, 1)}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="pretrained encoder directory")
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--child", nargs=2, metavar=("MODE", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.model, args.data, Path(args.child[1]), args.child[0], args.steps, args.warmup)
        return
    if not (args.data / "kbp37" / "train.txt").exists():
        print(json.dumps({"skipped": f"data not found under {args.data}"}))
        return
    report: dict = {"benchmark": "lora", "model": args.model, "steps": args.steps,
                    "settings": "scripts/bench_relx.py DEFAULTS", "modes": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in MODES:
            out = Path(tmp) / mode
            subprocess.run([sys.executable, __file__, "--model", args.model, "--data",
                            str(args.data), "--steps", str(args.steps), "--warmup",
                            str(args.warmup), "--child", mode, str(out)], check=True)
            summary = json.loads((out / "history.json").read_text())["summary"]
            report["modes"][mode] = {
                "trainable_parameters": summary["trainable_parameters"],
                "total_parameters": summary["total_parameters"],
                "trainable_share": summary["trainable_share"],
                "step_s": round(summary["train_seconds_this_session"] / args.steps, 3),
                "tokens_per_s": round(summary["train_tokens_this_session"]
                                      / summary["train_seconds_this_session"], 1),
                **json.loads((out / "peak_rss.json").read_text()),
            }
            print(mode, json.dumps(report["modes"][mode]), file=sys.stderr, flush=True)
    full, lora = report["modes"]["full"], report["modes"]["lora"]
    report["lora_vs_full"] = {
        "trainable_parameters": round(lora["trainable_parameters"]
                                      / full["trainable_parameters"], 4),
        "step_time": round(lora["step_s"] / full["step_s"], 3),
        "peak_rss": round(lora["peak_rss_mib"] / full["peak_rss_mib"], 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
