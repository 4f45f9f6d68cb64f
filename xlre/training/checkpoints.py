"""Training runs on disk: checkpoints, the trainer's state, and the same-run check of
``--resume``.

::

    OUT/checkpoints/step-00000120/   accelerator.save_state + trainer_state.json
    OUT/train.toml                   the resolved settings
    OUT/train_inputs.json            the encoder, run and marked files trained on
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignment.errors import UserError
from xlre.data import MarkedSource, Runs, run_dirs
from xlre.training.settings import Settings, load_settings

CHECKPOINTS = "checkpoints"
STATE_FILE = "trainer_state.json"


class TrainError(UserError, RuntimeError):
    """Training cannot start or go on; the message says why and what to do."""


@dataclass
class TrainerState:
    """Where training stands; saved in every checkpoint."""

    epoch: int = 0
    batches_done: int = 0  # in the current epoch
    global_step: int = 0   # optimizer steps
    best_score: float = -1.0
    best_epoch: int = -1
    bad_epochs: int = 0
    finished: bool = False
    #: Loss sums over the batches of the current epoch so far (for the epoch means).
    running: dict[str, float] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    #: ``train.head_warmup_epochs``' summary, once the warmup has run (None: not run).
    head_warmup: dict[str, Any] | None = None


def latest_checkpoint(out_dir: Path) -> Path | None:
    ckpts = sorted((out_dir / CHECKPOINTS).glob("step-*"))
    ckpts = [c for c in ckpts if (c / STATE_FILE).exists()]
    return ckpts[-1] if ckpts else None


def run_inputs(model_name_or_path: str | Path, run_dir: Runs,
               marked: Sequence[MarkedSource]) -> dict[str, Any]:
    """What a run was trained from, as ``train_inputs.json`` records it (``run``: one
    directory, a list of several, or ``None``)."""
    runs = [str(r) for r in run_dirs(run_dir)]
    return {"model": str(model_name_or_path),
            "run": (runs[0] if len(runs) == 1 else runs) if runs else None,
            "marked": [m.describe() for m in marked]}


def check_same_run(out_dir: Path, model_name_or_path: str | Path, settings: Settings,
                   run_dir: Runs = None,
                   marked: Sequence[MarkedSource] = ()) -> None:
    """Raise :class:`TrainError` unless the run in ``out_dir`` was trained with these
    settings (``train.stop_after_steps`` aside), model, annotation run and marked files:
    the check ``train(..., resume=True)`` makes before it continues a run."""
    check_resume(out_dir, settings, run_inputs(model_name_or_path, run_dir, marked))


def check_resume(out_dir: Path, settings: Settings, inputs: dict[str, Any]) -> None:
    saved = out_dir / "train.toml"
    if not saved.exists():
        raise TrainError(f"{out_dir}: nothing to resume (no train.toml); start without --resume")
    before = load_settings(saved)
    now, was = settings.to_dict(), before.to_dict()
    now["train"].pop("stop_after_steps")
    was["train"].pop("stop_after_steps")
    if now != was:
        diff = [f"{t}.{k}: {was[t][k]!r} -> {now[t][k]!r}"
                for t in now for k in now[t] if now[t][k] != was[t][k]]
        raise TrainError(
            f"{out_dir}: the settings differ from the earlier run's ({'; '.join(diff)}); "
            "resume with the same settings (only train.stop_after_steps may change)"
        )
    meta = json.loads((out_dir / "train_inputs.json").read_text(encoding="utf-8"))
    meta.setdefault("marked", [])
    if meta != inputs:
        raise TrainError(
            f"{out_dir}: the earlier run trained {meta['model']} on run {meta['run']} "
            f"and marked files {meta['marked']}; resume with the same --model, --run and "
            "--marked"
        )

