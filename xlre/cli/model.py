"""``xlre init-model``, ``xlre train`` and ``xlre evaluate``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    TaskID,
)

from xlre.cli.common import app, err_console, fail, new_bar, progress_bar, quiet_hf


@app.command("init-model")
def init_model_cmd(
    run: Annotated[Path, typer.Option(help="Annotation run whose text trains the tokenizer.")],
    out: Annotated[Path, typer.Option(help="Directory to write the encoder and tokenizer to.")],
    tiny: Annotated[bool, typer.Option("--tiny", help="Build a small random XLM-R (the only kind for now).")] = False,
    hidden: Annotated[int, typer.Option(help="Hidden size.")] = 128,
    layers: Annotated[int, typer.Option(help="Transformer layers.")] = 2,
    heads: Annotated[int, typer.Option(help="Attention heads.")] = 4,
    vocab_size: Annotated[int, typer.Option(help="Tokenizer vocabulary size.")] = 4000,
    max_positions: Annotated[int, typer.Option(help="Position table size (the model takes 2 fewer tokens).")] = 258,
    seed: Annotated[int, typer.Option(help="Seed of the random initialisation.")] = 0,
) -> None:
    """Build a randomly initialised XLM-R encoder and a tokenizer trained on a run's text.

    The result loads with from_pretrained like any hub checkpoint, so `xlre train --model
    OUT` works with no download.
    """
    from xlre.annotate import iter_records
    from xlre.modeling.tiny import EncoderShape, build_encoder

    quiet_hf()
    if not tiny:
        raise fail("only --tiny models can be built here; pass --tiny, or give xlre train a "
                    "pretrained encoder (a hub name such as xlm-roberta-base, or a local path)")
    shape = EncoderShape(hidden=hidden, layers=layers, heads=heads, intermediate=4 * hidden,
                         max_positions=max_positions, vocab_size=vocab_size)
    texts = (rec["text"] for rec in iter_records(run))
    build_encoder(out, texts, shape, seed=seed)
    err_console.print(f"wrote a random XLM-R encoder ({hidden} hidden, {layers} layers) to {out}")


#: Progress kinds of xlre.training besides "epoch", "loss" and "train": label and unit.
TRAINING_TASKS = {"eval": ("evaluating", "batches"),
                  "refit features": ("head refit: features", "batches"),
                  "refit": ("head refit", "epochs")}


def _training_progress():
    """Progress driven by xlre.training's ``progress(kind, advance, total)``: a rich bar on
    a terminal, else plain lines with the epoch's mean loss (:func:`new_bar`)."""
    bar = new_bar()
    tasks: dict[str, TaskID] = {}
    loss: dict[str, float] = {}

    def update(kind: str, n: float, total: int) -> None:
        if kind == "epoch":
            if "train" in tasks:
                bar.remove_task(tasks.pop("train"))
            loss.clear()
            # Added now, its total set by the first batch: the epoch's clock starts here.
            tasks["train"] = bar.add_task(f"train epoch {int(n) + 1}/{total}", total=None,
                                          unit="batches")
            return
        if kind == "loss":
            loss["train"] = n
            return
        if kind not in tasks:
            label, unit = TRAINING_TASKS.get(kind, (kind, "batches"))
            tasks[kind] = bar.add_task(label, total=total, unit=unit)
        fields = {"loss": loss["train"]} if kind == "train" and "train" in loss else {}
        bar.update(tasks[kind], total=total, advance=n, **fields)

    return bar, update


@app.command("train")
def train_cmd(
    run: Annotated[list[Path] | None, typer.Option(help="Annotation run directory (xlre annotate); repeatable: several runs (e.g. en-zh and en-fr over one KB) train one model.")] = None,
    marked: Annotated[list[str] | None, typer.Option(help="Gold marked-sentence file (KBP37/RELX/SemEval <e1> format) as SPLIT:LANG:PATH, e.g. train:en:kbp37/train.txt; repeatable; alone or with --run.")] = None,
    skip_bad: Annotated[bool, typer.Option(help="Leave out bad marked records (counted in data_report.json) instead of stopping.")] = False,
    model: Annotated[str, typer.Option(help="Encoder: a Hugging Face name or a local directory.")] = "xlm-roberta-base",
    out: Annotated[Path, typer.Option(help="Model directory to write.")] = Path("model"),
    config: Annotated[Path | None, typer.Option(help="Settings file (TOML with tables train, model and data).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the interrupted run in --out from its newest checkpoint.")] = False,
    overrides: Annotated[list[str] | None, typer.Argument(help="Dotted overrides, e.g. train.epochs=3 model.agreement=false.")] = None,
) -> None:
    """Train the multitask model on a run's distant labels (both languages) and/or gold
    marked sentences.

    Runs on CPU, one GPU, or many GPUs and machines with
    `accelerate launch -m xlre.cli train ...`.
    """
    from xlre.data.gold import MarkedSource
    from xlre.training import train
    from xlre.training.settings import load_settings

    quiet_hf()
    settings = load_settings(config, overrides or [])
    sources = [MarkedSource.parse(spec) for spec in marked or []]
    if not run and not sources:
        raise fail("give training data: --run RUN_DIR, --marked SPLIT:LANG:PATH, or both")
    bar, update = _training_progress()
    with bar:
        metrics = train(run or None, model, out, settings, resume=resume, progress=update,
                        marked=sources, skip_bad=skip_bad)
    from accelerate import PartialState

    from xlre.evaluation import headline

    if not PartialState().is_main_process:
        return  # under accelerate launch / torchrun, the main process reports
    if "stopped_at_step" in metrics:
        err_console.print(f"stopped after step {metrics['stopped_at_step']}; continue with --resume")
        return
    sys.stdout.write(json.dumps({split: headline(m) for split, m in metrics.items()}, indent=2) + "\n")


@app.command("evaluate")
def evaluate_cmd(
    model: Annotated[Path, typer.Option(help="A model directory written by xlre train.")],
    run: Annotated[list[Path] | None, typer.Option(help="Annotation run to evaluate on; repeatable (the runs a model was trained on together).")] = None,
    marked: Annotated[list[str] | None, typer.Option(help="Gold marked-sentence file as LANG:PATH (every record is evaluated); repeatable; alone or with --run.")] = None,
    skip_bad: Annotated[bool, typer.Option(help="Leave out bad marked records (counted) instead of stopping.")] = False,
    split: Annotated[str, typer.Option(help="train, dev, test (as the model was trained), or all.")] = "test",
    out: Annotated[Path | None, typer.Option(help="Write metrics JSON and the PR-curve PNG here.")] = None,
    batch_size: Annotated[int, typer.Option(help="Sequences per batch.")] = 64,
    optimize: Annotated[str | None, typer.Option(help="Evaluate the CPU route xlre extract --optimize takes: onnx-int8 or int8.")] = None,
) -> None:
    """Entity P/R/F1 per type, relation micro/macro F1 and held-out PR curves, per language;
    with --marked also the KBP37/RELX score (F1 per relation type over its two directions,
    averaged over types)."""
    from xlre.data.gold import MarkedSource
    from xlre.evaluation import EvaluateError, evaluate_model

    quiet_hf()
    eval_split = "test" if split == "all" else split
    sources = [MarkedSource.parse(spec, default_split=eval_split) for spec in marked or []]
    if not run and not sources:
        raise EvaluateError("give data to evaluate on: --run RUN_DIR, --marked LANG:PATH, or both")
    with progress_bar(None, {"eval": "evaluating (sequences)"}) as update:
        result = evaluate_model(model, run or None, split, out_dir=out, batch_size=batch_size,
                                progress=lambda n: update("eval", n), marked=sources,
                                skip_bad=skip_bad, optimize=optimize)
    sys.stdout.write(json.dumps(result, indent=2) + "\n")

