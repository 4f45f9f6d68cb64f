"""Training: settings and the Accelerate loop.

Consumes an annotation run and/or gold marked files (:mod:`xlre.data`) and an encoder;
produces a model directory (:mod:`xlre.modeling`) with its metrics, history and
resumable checkpoints. :func:`train` runs the steps of :class:`Trainer`.
"""

from xlre.training.checkpoints import (
    CHECKPOINTS,
    STATE_FILE,
    TrainError,
    TrainerState,
    check_same_run,
    latest_checkpoint,
)
from xlre.training.loop import Trainer, dev_score, final_evaluation, relation_names, train
from xlre.training.settings import (
    ModelSettings,
    Settings,
    SettingsError,
    TrainConfig,
    load_settings,
    parse_override,
)

__all__ = [
    "CHECKPOINTS",
    "STATE_FILE",
    "ModelSettings",
    "Settings",
    "SettingsError",
    "TrainConfig",
    "TrainError",
    "Trainer",
    "TrainerState",
    "check_same_run",
    "dev_score",
    "final_evaluation",
    "latest_checkpoint",
    "load_settings",
    "parse_override",
    "relation_names",
    "train",
]
