"""The typer app, its shared options and the console helpers of every command."""

from __future__ import annotations

import errno
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
from typer.core import TyperGroup

from alignment.errors import UserError

# OSErrors that blame the user's files or disk, not xlre: a missing or unreadable path,
# a file where a directory belongs (or the reverse), a full or read-only disk.
_FILE_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
                PermissionError)
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


def _user_os_error(err: OSError) -> bool:
    return isinstance(err, _FILE_ERRORS) or err.errno in _DISK_ERRNOS


def _os_error_line(err: OSError) -> str:
    if err.strerror is None:  # raised by xlre with its own message, which names the fix
        return str(err)
    where = f"{err.filename}: " if err.filename else ""
    return f"{where}{err.strerror}; check the path, its permissions and the free space"


class XlreGroup(TyperGroup):
    """The ``xlre`` group: sorts what escapes a command into the user's fault or xlre's.

    - a :class:`~alignment.errors.UserError` (bad input, files or settings; every stage
      error derives from it) or a file-system error is one line and exit 2;
    - anything else is a bug: exit 1, with the traceback under ``-v`` and otherwise a
      line saying to rerun with ``-v``.
    """

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except (typer.TyperException, typer.Exit, typer.Abort):
            raise  # usage errors, exits and Ctrl-C: typer reports them itself
        except UserError as err:
            raise fail(str(err)) from None
        except OSError as err:
            if _user_os_error(err):
                raise fail(_os_error_line(err)) from None
            raise _bug(ctx, err) from None
        except Exception as err:
            raise _bug(ctx, err) from None


def _bug(ctx: typer.Context, err: Exception) -> typer.Exit:
    if ctx.params.get("verbose"):
        err_console.print_exception()
    else:
        err_console.print(f"[bold red]unexpected {type(err).__name__}:[/] {err}; this is a bug "
                          "in xlre: rerun with -v for the traceback", highlight=False, soft_wrap=True)
    return typer.Exit(1)


app = typer.Typer(
    cls=XlreGroup,
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
