"""The typer app, its shared options and the console helpers of every command."""

from __future__ import annotations

import errno
import logging
import math
import os
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
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
    # The message is text, not markup: "c.tsv:100:" must not become an emoji, nor
    # "[x]" vanish as a style tag.
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True,
                      emoji=False)
    return typer.Exit(code)


#: Seconds between two plain progress lines of one stage when standard error is not a
#: terminal (``nohup xlre train ... > log 2>&1``); ``XLRE_PROGRESS_INTERVAL`` overrides it.
PROGRESS_INTERVAL_S = 30.0
PROGRESS_INTERVAL_ENV = "XLRE_PROGRESS_INTERVAL"


def progress_interval_s() -> float:
    """The plain progress interval: ``XLRE_PROGRESS_INTERVAL`` seconds, else 30."""
    raw = os.environ.get(PROGRESS_INTERVAL_ENV, "").strip()
    if not raw:
        return PROGRESS_INTERVAL_S
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise UserError(f"{PROGRESS_INTERVAL_ENV}={raw!r} is not a number of seconds; set it to "
                        f"e.g. 30 (the default), or 0 for a line at every step")
    return value


def _duration(seconds: float) -> str:
    """``45s``, ``20m26s``, ``3h05m``."""
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def _count(n: float) -> str:
    return str(int(n)) if n == int(n) else f"{n:.1f}"


def _rate(per_s: float) -> str:
    return f"{per_s:.1f}" if per_s >= 1 else f"{per_s:.2g}"


@dataclass
class _PlainTask:
    description: str
    total: float | None
    started_s: float
    completed: float = 0.0
    last_line_s: float = 0.0
    #: ``completed`` when the last final line was written (None: none written yet).
    finished_at: float | None = None
    fields: dict[str, Any] = field(default_factory=dict)


class PlainProgress:
    """Progress as plain lines on a stream that is not a terminal (a log file).

    It takes the calls of :class:`rich.progress.Progress` the CLI makes (``add_task``,
    ``advance``, ``update``, ``remove_task``, use as a context manager, ``console``) and
    writes, per task, at most one line every ``interval_s`` seconds as the task advances::

        train epoch 1/3: 1200/5000 batches (24%), 3.1 batches/s, ETA 20m26s, loss 0.4132

    plus a final line when the task reaches its total, is removed, or the display closes.
    A task's clock starts at the display's last activity (its opening, or the last call
    on any task), since stages run one after another and a stage's first report may come
    only when a batch of its work is done.
    Task fields ``unit`` (what is counted, default ``items``) and ``loss`` (shown when set)
    are read; rich ignores both. ``clock`` gives seconds (``time.monotonic``).
    """

    def __init__(self, stream: IO[str] | None = None, interval_s: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = sys.stderr if stream is None else stream
        self.interval_s = progress_interval_s() if interval_s is None else interval_s
        self.clock = clock
        self.console = err_console
        self._tasks: dict[TaskID, _PlainTask] = {}
        self._next_id = 0
        self._lock = threading.Lock()
        self._last_activity_s = clock()

    def __enter__(self) -> PlainProgress:
        self._last_activity_s = self.clock()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc: object) -> None:
        with self._lock:
            for task in self._tasks.values():
                self._finish(task, "done" if exc_type is None else "stopped")

    def add_task(self, description: str, total: float | None = 100.0, completed: float = 0,
                 **fields: Any) -> TaskID:
        with self._lock:
            task_id = TaskID(self._next_id)
            self._next_id += 1
            start = self._last_activity_s
            self._tasks[task_id] = _PlainTask(description, total, start, completed, start,
                                              fields=dict(fields))
            return task_id

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        self.update(task_id, advance=advance)

    def update(self, task_id: TaskID, *, total: float | None = None,
               completed: float | None = None, advance: float | None = None,
               description: str | None = None, **fields: Any) -> None:
        with self._lock:
            task = self._tasks[task_id]
            if total is not None:
                task.total = total
            if completed is not None:
                task.completed = completed
            if advance is not None:
                task.completed += advance
            if description is not None:
                task.description = description
            task.fields.update(fields)
            self._last_activity_s = now = self.clock()
            if task.total is not None and task.completed >= task.total:
                if task.finished_at is None:
                    self._finish(task)
                return
            moved = bool(advance) or completed is not None
            if moved and now - task.last_line_s >= self.interval_s:
                task.last_line_s = now
                self._write(self._line(task, now))

    def remove_task(self, task_id: TaskID) -> None:
        with self._lock:
            self._finish(self._tasks.pop(task_id))
            self._last_activity_s = self.clock()

    def _finish(self, task: _PlainTask, word: str = "done") -> None:
        if task.finished_at == task.completed:
            return  # its final line is out and it has not moved since
        task.finished_at = task.completed
        now = self.clock()
        task.last_line_s = now
        self._write(self._line(task, now, final=word))

    def _line(self, task: _PlainTask, now: float, final: str = "") -> str:
        """A periodic line, or with ``final`` ("done", "stopped") a task's last one."""
        unit = task.fields.get("unit") or "items"
        elapsed = now - task.started_s
        done, total = task.completed, task.total
        count = f"{_count(done)}/{_count(total)} {unit}" if total else f"{_count(done)} {unit}"
        parts = [f"{count} ({min(100, int(100 * done / total))}%)" if total else count]
        rate = done / elapsed if elapsed > 0 else None
        if final:
            parts[0] = f"{final}, {parts[0]} in {_duration(elapsed)}"
        if rate is not None:
            parts.append(f"{_rate(rate)} {unit}/s")
        if not final:
            if total and rate:
                parts.append(f"ETA {_duration(max(0.0, total - done) / rate)}")
            elif not total:
                parts.append(f"{_duration(elapsed)} elapsed")
        loss = task.fields.get("loss")
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        return f"{task.description}: " + ", ".join(parts)

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()


def new_bar(eta: bool = True, *, stream: IO[str] | None = None,
            clock: Callable[[], float] = time.monotonic) -> Progress | PlainProgress:
    """Progress on standard error (or ``stream``): on a terminal a rich display with
    description, bar, count, time (and ETA); otherwise, as in a job's log file, a
    :class:`PlainProgress` that writes a plain line per task every
    ``XLRE_PROGRESS_INTERVAL`` seconds (30 by default)."""
    out = sys.stderr if stream is None else stream
    if not out.isatty():
        return PlainProgress(out, clock=clock)
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn()]
    if eta:
        columns.append(TimeRemainingColumn())
    return Progress(*columns, console=err_console)


@contextmanager
def progress_bar(total: int | None, stages: dict[str, str], units: dict[str, str] | None = None,
                 *, stream: IO[str] | None = None, clock: Callable[[], float] = time.monotonic):
    """Progress on standard error with one row per stage; yields ``update(stage, n)``.

    ``units`` names what a stage counts (``pairs``; default ``items``) in the plain lines
    written when standard error is not a terminal (:func:`new_bar`)."""
    units = units or {}
    with new_bar(stream=stream, clock=clock) as bar:
        tasks: dict[str, TaskID] = {}

        def update(stage: str, n: float) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stages.get(stage, stage),
                                            total=total if stage != "extra" else None,
                                            unit=units.get(stage, "items"))
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
