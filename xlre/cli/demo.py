"""``xlre demo``: the whole mission on the demo corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    TaskID,
)

from xlre.cli.common import app, new_bar, quiet_hf

DEMO_STAGES = ("annotate", "model", "train", "evaluate", "extract", "export", "query")


@app.command("demo")
def demo_cmd(
    out: Annotated[Path, typer.Option(help="Directory for every output of the demo.")] = Path("demo-out"),
    quick: Annotated[bool, typer.Option(help="A reduced run (600 pairs, 10 epochs, 1 layer), for a first look.")] = False,
) -> None:
    """The whole mission on corpora/demo-en-fr, offline, in a few minutes.

    Annotate (link, distant-label, align, project) -> build a tiny model -> train on
    English and French -> evaluate -> extract triples from held-out sentences -> export
    Turtle and load the SPARQL store -> query it -> a summary.
    """
    from rich.table import Table

    from xlre.demo import run_demo

    quiet_hf()
    bar = new_bar(eta=False)
    stage_task = bar.add_task("demo", total=len(DEMO_STAGES))
    epoch_task: dict[str, TaskID] = {}

    def on_stage(stage: str, message: str) -> None:
        done = DEMO_STAGES.index(stage) if stage in DEMO_STAGES else 0
        bar.update(stage_task, completed=done, description=f"{stage}")
        bar.console.print(f"[bold cyan]{done + 1}/{len(DEMO_STAGES)} {stage}[/]: {message}")

    def on_train(kind: str, n: int, total: int) -> None:
        if kind == "epoch":
            if "train" in epoch_task:
                bar.remove_task(epoch_task.pop("train"))
            epoch_task["train"] = bar.add_task(f"  epoch {n + 1}", total=None)
        elif kind == "train" and "train" in epoch_task:
            bar.update(epoch_task["train"], total=total, advance=n)

    with bar:
        result = run_demo(out, quick=quick, progress=on_stage, train_progress=on_train)
        if "train" in epoch_task:
            bar.remove_task(epoch_task.pop("train"))
        bar.update(stage_task, completed=len(DEMO_STAGES), description="done")
    st = result.stages
    console = Console()
    table = Table(title=f"xlre demo: {result.seconds:.0f} s, outputs in {result.out}")
    table.add_column("stage")
    table.add_column("what came out")
    table.add_column("where")
    rel = st["annotate"]["relations"]
    table.add_row("annotate", f"{st['annotate']['pairs']} pairs; relation labels "
                  + ", ".join(f"{k} {v}" for k, v in rel.items()), st["annotate"]["output"])
    table.add_row("model", f"random XLM-R, {st['model']['shape']['hidden']} hidden, "
                  f"{st['model']['shape']['layers']} layers", st["model"]["output"])
    table.add_row("train", f"best epoch {st['train']['best_epoch']}, "
                  f"{st['train']['seconds']:.0f} s", st["train"]["output"])
    ev = st["evaluate"]
    table.add_row("evaluate", "test micro-F1 " + ", ".join(
        f"{lang} {m['relation_micro_f1']:.3f}" for lang, m in ev.items()
        if isinstance(m, dict) and "relation_micro_f1" in m), ev["output"])
    ex = st["extract"]
    table.add_row("extract", f"{ex['triples']} triples; held-out F1 " + ", ".join(
        f"{lang} {m['f1']:.3f}" for lang, m in ex["heldout_scores"].items()), ex["output"])
    table.add_row("export", f"{st['export']['edges']} edges, {st['export']['nodes']} nodes, "
                  f"{st['export']['quads_in_store']} quads in the store", st["export"]["output"])
    rows = st["query"]["rows"]
    table.add_row("query", "facts per relation: " + ", ".join(
        f"{r[0]} {r[1]}" for r in rows[:8]), str(result.out / "demo.json"))
    console.print(table)

