"""What a training session is built from: precision and trackers for Accelerate, the
optimizer's parameter groups, the encoder's length limit, the relation names and training
languages a model stores."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from accelerate.logging import get_logger

from alignment.languages import LanguageError, by_base_language, normalize_lang
from xlre.annotate import read_manifest
from xlre.kb import RELATIONS_FILE, load_relations
from xlre.training.checkpoints import TrainError
from xlre.training.settings import Settings

logger = get_logger(__name__)


def mixed_precision(setting: str) -> str | None:
    if setting != "auto":
        return setting
    if os.environ.get("ACCELERATE_MIXED_PRECISION"):
        return None  # accelerate launch --mixed_precision decides
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16"
    return "no"


def tracker_names(setting: str) -> list[str]:
    if setting == "none":
        return []
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        if setting == "tensorboard":
            raise TrainError(
                "train.tracker = 'tensorboard' but tensorboard is not installed; "
                "pip install 'xlre[tracking]' or set train.tracker=none"
            ) from None
        return []
    return ["tensorboard"]



def param_groups(model: Any, settings: Settings) -> list[dict[str, Any]]:
    cfg = settings.train
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_head = not name.startswith("encoder.")
        no_decay = param.ndim < 2 or "LayerNorm" in name or "layer_norm" in name
        groups.setdefault((is_head, no_decay), []).append(param)
    return [
        {"params": params,
         "lr": cfg.head_learning_rate if is_head else cfg.learning_rate,
         "weight_decay": 0.0 if no_decay else cfg.weight_decay}
        for (is_head, no_decay), params in sorted(groups.items())
    ]




def relation_names(runs: Sequence[Path]) -> dict[str, dict[str, str]]:
    """Relation names per base language from the KBs the runs were annotated with (if
    reachable; the first run's name wins), stored in the model so extraction names
    relations without the KB.

    The KB's language keys are normalised (:func:`alignment.languages.by_base_language`:
    ``zh-hans`` -> ``zh``; the key that is the base code itself wins over variants).
    """
    names: dict[str, dict[str, str]] = {}
    for run_dir in reversed(runs):
        try:
            kb_dir = read_manifest(run_dir).get("config", {}).get("kb")
        except (OSError, ValueError, RuntimeError):
            kb_dir = None
        path = Path(kb_dir) / RELATIONS_FILE if kb_dir else None
        if path is None or not path.exists():
            logger.warning("the KB relations file of %s is not reachable (%s): the model "
                           "will know its relation ids but not their names", run_dir, path)
            continue
        names.update({rel.id: by_base_language(rel.labels)
                      for rel in load_relations(path).values()})
    return names


def training_languages(train_split: Any) -> list[str]:
    """Base codes of the languages of the training split's sentences (its ``lang``
    column), sorted; a code that is no language tag is kept as it is."""
    if train_split is None or "lang" not in getattr(train_split, "column_names", ()):
        return []
    out = set()
    for code in train_split.unique("lang"):
        try:
            out.add(normalize_lang(code))
        except LanguageError:
            out.add(code)
    return sorted(out)


def encoder_max_tokens(model: Any) -> int:
    enc = model.config.encoder
    positions = enc.get("max_position_embeddings", 512)
    offset = enc.get("pad_token_id", 0) + 1 if enc.get("model_type") in (
        "xlm-roberta", "roberta", "camembert") else 0
    return positions - offset


def flat_settings(tables: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return {f"{t}.{k}": v for t, fields_ in tables.items() for k, v in fields_.items()}
