"""The typer app, its shared options and the console helpers of every command."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

app = typer.Typer(
    name="xlre",
    help="Cross-lingual distant-supervision relation extraction.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True)
logger = logging.getLogger("xlre")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(name)s: %(message)s",
        handlers=[RichHandler(console=err_console, show_time=False, show_path=False)],
        force=True,
    )


def quiet_hf() -> None:
    """Silence the progress bars transformers and datasets draw; xlre draws its own."""
    import datasets
    import transformers

    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()


def fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def new_bar(eta: bool = True) -> Progress:
    """A rich progress display on standard error: description, bar, count, time (and ETA)."""
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn()]
    if eta:
        columns.append(TimeRemainingColumn())
    return Progress(*columns, console=err_console)


@contextmanager
def progress_bar(total: int | None, stages: dict[str, str]):
    """A progress bar on standard error with one row per stage; yields ``update``."""
    with new_bar() as bar:
        tasks: dict[str, TaskID] = {}

        def update(stage: str, n: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stages.get(stage, stage), total=total if stage != "extra" else None)
            bar.advance(tasks[stage], n)

        yield update


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug messages.")] = False,
) -> None:
    """Cross-lingual distant-supervision relation extraction."""
    _setup_logging(verbose)


LAYER_HELP = (
    "simalign/combined: encoder layer whose vectors are compared; default: by encoder "
    "family, 7 for 12-layer 384-wide encoders such as multilingual-e5-small (measured), "
    "else two thirds of its depth (8 of 12, as simalign)."
)


# Options every aligning command shares (align, annotate, eval-projection): one spelling
# and one help text, read by the one aligner factory, alignment.build_aligner.
AlignerOpt = Annotated[str, typer.Option(help="eflomal (statistical), simalign (neural encoder), or combined (eflomal plus confident neural links).")]
SymmetrizeOpt = Annotated[str, typer.Option(help="eflomal: intersect, union, grow-diag, grow-diag-final or grow-diag-final-and.")]
StemPrefixOpt = Annotated[int, typer.Option(help="eflomal: train on the first N characters of each word (0: whole words).")]
ExtraCorpusOpt = Annotated[list[str] | None, typer.Option(help="eflomal: extra parallel text for training only (PATH, or SRC_PATH::TGT_PATH); repeatable.")]
ModelOpt = Annotated[str, typer.Option(help="simalign/combined: Hugging Face encoder name or local path.")]
LayerOpt = Annotated[int | None, typer.Option(help=LAYER_HELP)]
TgtFileOpt = Annotated[Path | None, typer.Option(help="Target file when the corpus is two line-aligned files.")]
FormatOpt = Annotated[str, typer.Option("--format", help="Corpus layout: auto, tsv, tsv-id or moses.")]
ConfidentOpt = Annotated[float, typer.Option(help="combined: add neural links whose similarity is at least this.")]
