"""Training settings: validated dataclasses from one TOML file plus dotted overrides.

A settings file has three tables, each optional::

    [train]            # TrainConfig: optimisation, schedule, checkpoints
    epochs = 10
    [model]            # ModelSettings: heads, loss weights
    bag_attention = true
    [data]             # xlre.data.DataConfig: sequence length, splits, representation
    relation_repr = "pooling"

Overrides on the command line name a field as ``table.field=value`` (``train.epochs=3``,
``model.agreement=false``, ``data.relation_repr="markers"``); the value is read as a TOML
value, and a bare word is taken as a string. Unknown tables or fields, and values of the
wrong type, are errors that name the valid choices.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignment.errors import SettingError
from alignment.textfile import strict_lines
from xlre.data import DataConfig
from xlre.modeling.losses import RELATION_LOSSES

MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
MIL_MODES = ("bag", "sentence")
TRACKERS = ("auto", "tensorboard", "none")
#: ``model.peft``: ``none`` fine-tunes the whole encoder; ``lora`` trains low-rank adapters
#: on its linear layers (:mod:`xlre.modeling.lora`) and keeps its weights fixed.
PEFT_METHODS = ("none", "lora")
#: The default ``model.lora_target_modules``: the attention projections (query, key,
#: value, and the attention output's dense layer) of an XLM-R/BERT-shaped encoder.
LORA_TARGETS = ("query", "key", "value", "attention.output.dense")


class SettingsError(SettingError):
    """A settings file or override is invalid; the message names it and the fix."""


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation, schedule, evaluation and checkpoints."""

    seed: int = 13
    epochs: int = 10
    #: Training units (bags, or sentence pairs with ``mil="sentence"``) per step and process.
    batch_size: int = 16
    #: Sequences per evaluation batch.
    eval_batch_size: int = 64
    learning_rate: float = 3e-5
    #: Learning rate of the heads (new, randomly initialised layers).
    head_learning_rate: float = 1e-3
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    gradient_accumulation_steps: int = 1
    max_grad_norm: float = 1.0
    #: ``auto``: bf16 on a GPU that has it, else full precision; ``accelerate launch
    #: --mixed_precision`` wins over ``auto``.
    mixed_precision: str = "auto"
    #: ``bag``: multi-instance learning with bag attention; ``sentence``: every sentence
    #: is one example (the bag head is still scored at evaluation).
    mil: str = "bag"
    #: Keep the encoder's word-embedding matrix fixed. In XLM-R-family encoders it holds
    #: most of the weights (250k x hidden), so steps are about twice as fast on CPU and
    #: the optimizer state is much smaller. Not with ``data.relation_repr = "markers"``,
    #: whose new marker tokens must learn their vectors (``punct`` adds none).
    freeze_word_embeddings: bool = False
    #: Batch units of similar length (sorted within random groups of 50 batches), so
    #: little of a batch is padding: faster steps, a slightly less random order.
    group_by_length: bool = False
    #: Per epoch, at most this many positive bags (units) per relation, each counted
    #: under its rarest relation; a fresh sample each epoch (0: all). Keeps the majority
    #: relations of distant labels (P530, P47 on news) from filling most of the steps.
    max_units_per_relation: int = 0
    #: Per epoch, at most this many negative units (NA pairs, entities only) per
    #: positive unit kept; a fresh sample each epoch (0: all).
    negatives_per_positive: float = 0.0
    #: Weigh each relation's positive loss term by ``(mean count / its count) ** p`` over
    #: the train split's units (0: no weights; 0.5: square root of the inverse frequency).
    relation_class_weight: float = 0.0
    #: At the end of each epoch, before the dev evaluation, refit the relation head
    #: (pair projection and relation matrix, from a fresh start) for this many passes
    #: over the train split's instances, on the encoder's features taken once with no
    #: gradient (0: no refit). On CPU a fine-tuning budget is a few hundred steps, too few
    #: for the head to learn more than the majority relation of distant labels; a refit
    #: costs one forward pass over train and seconds of head steps (issue 19).
    head_refit_epochs: int = 0
    #: Before the first step, fit the relation head the same way on the pretrained
    #: encoder's features for this many passes (0: no warmup), so fine-tuning starts from
    #: a head that already reads the relations (linear probing, then fine-tuning).
    head_warmup_epochs: int = 0
    #: Instances per step of the head refit, and its learning rate (AdamW, weight decay
    #: as in training).
    head_refit_batch_size: int = 256
    head_refit_learning_rate: float = 1e-3
    #: Stop after this many epochs without a better dev score (0: never stop early).
    early_stopping_patience: int = 3
    #: Save a resumable checkpoint every N optimizer steps (0: at the end of each epoch only).
    checkpoint_every_steps: int = 0
    keep_checkpoints: int = 2
    #: Stop after N optimizer steps with the schedule unchanged (0: no limit); continue
    #: later with ``--resume``.
    stop_after_steps: int = 0
    #: Train at most N optimizer steps in all (0: the epochs decide). The schedule is
    #: planned for them, and training then ends as after its last epoch: dev evaluation,
    #: the best model, test. For short benchmark runs.
    max_steps: int = 0
    log_every_steps: int = 10
    tracker: str = "auto"
    #: Choose the relation threshold on the dev split: the one with the best relation
    #: micro-F1 (the best of the grid of gold marked F1 when dev holds marked sentences).
    #: Epochs are compared at their best thresholds, and the best model is stored with
    #: its threshold, so test and extraction use it. ``false``: model.relation_threshold.
    tune_threshold: bool = True

    def __post_init__(self) -> None:
        _choice("train.mixed_precision", self.mixed_precision, MIXED_PRECISION)
        _choice("train.mil", self.mil, MIL_MODES)
        _choice("train.tracker", self.tracker, TRACKERS)
        for name in ("epochs", "batch_size", "eval_batch_size", "gradient_accumulation_steps",
                     "keep_checkpoints", "head_refit_batch_size"):
            if getattr(self, name) < 1:
                raise SettingsError(f"train.{name} must be at least 1, got {getattr(self, name)}")
        for name in ("early_stopping_patience", "checkpoint_every_steps", "stop_after_steps", "max_steps",
                     "log_every_steps", "max_units_per_relation", "negatives_per_positive",
                     "relation_class_weight", "head_refit_epochs",
                     "head_warmup_epochs"):
            if getattr(self, name) < 0:
                raise SettingsError(f"train.{name} must be 0 or more, got {getattr(self, name)}")
        if not 0 <= self.warmup_ratio < 1:
            raise SettingsError(f"train.warmup_ratio must lie in [0, 1), got {self.warmup_ratio}")
        for name in ("learning_rate", "head_learning_rate", "head_refit_learning_rate"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"train.{name} must be > 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class ModelSettings:
    """Which heads are on and how the losses are weighted (stored in the model config)."""

    entity_head: bool = True
    relation_head: bool = True
    bag_attention: bool = True
    agreement: bool = True
    entity_weight: float = 1.0
    sentence_weight: float = 1.0
    bag_weight: float = 1.0
    agreement_weight: float = 0.5
    head_dropout: float = 0.1
    relation_threshold: float = 0.5
    #: ``bce``: one binary cross-entropy per relation; ``adaptive``: each gold relation
    #: must beat a threshold logit fixed at 0, which must beat every other relation
    #: (Zhou et al. 2021's adaptive-thresholding loss; a softmax for one label a pair).
    relation_loss: str = "bce"
    #: ``none``: fine-tune every encoder weight; ``lora``: LoRA adapters (Hu et al. 2021)
    #: on the encoder's ``lora_target_modules``, the encoder's own weights fixed (word
    #: embeddings included, whatever ``train.freeze_word_embeddings`` says); the heads
    #: stay fully trainable. Needs ``pip install 'xlre[peft]'``. The adapters learn at
    #: ``train.learning_rate``, which LoRA usually wants higher (e.g. 5e-4). The saved
    #: model has the adapters merged into the encoder's weights: it loads without peft.
    peft: str = "none"
    #: LoRA's rank r: each adapted ``W`` (out x in) learns ``B A`` with ``A`` r x in.
    lora_rank: int = 8
    #: LoRA's alpha: the update is scaled by ``lora_alpha / lora_rank``.
    lora_alpha: float = 16.0
    #: Dropout on the adapters' input.
    lora_dropout: float = 0.05
    #: Linear layers of the encoder that get adapters: names or dotted name suffixes
    #: (``query`` matches ``encoder.layer.0.attention.self.query``), peft's matching.
    lora_target_modules: tuple[str, ...] = LORA_TARGETS

    def __post_init__(self) -> None:
        _choice("model.relation_loss", self.relation_loss, RELATION_LOSSES)
        _choice("model.peft", self.peft, PEFT_METHODS)
        if self.lora_rank < 1:
            raise SettingsError(f"model.lora_rank must be at least 1, got {self.lora_rank}; "
                                "8 or 16 are usual")
        if self.lora_alpha <= 0:
            raise SettingsError(f"model.lora_alpha must be > 0, got {self.lora_alpha}; "
                                "twice model.lora_rank is usual")
        if not 0 <= self.lora_dropout < 1:
            raise SettingsError(f"model.lora_dropout must lie in [0, 1), got {self.lora_dropout}")
        if not self.lora_target_modules or not all(
                isinstance(t, str) and t.strip() for t in self.lora_target_modules):
            raise SettingsError(
                f"model.lora_target_modules = {list(self.lora_target_modules)!r} should be a "
                f"non-empty list of module names, e.g. {list(LORA_TARGETS)!r}")
        if not (self.entity_head or self.relation_head):
            raise SettingsError("model.entity_head and model.relation_head are both off; "
                                "switch at least one on")
        for name in ("entity_weight", "sentence_weight", "bag_weight", "agreement_weight"):
            if getattr(self, name) < 0:
                raise SettingsError(f"model.{name} must be 0 or more, got {getattr(self, name)}")
        if not 0 < self.relation_threshold < 1:
            raise SettingsError(
                f"model.relation_threshold must lie in (0, 1), got {self.relation_threshold}")
        if not 0 <= self.head_dropout < 1:
            raise SettingsError(f"model.head_dropout must lie in [0, 1), got {self.head_dropout}")


@dataclass(frozen=True)
class Settings:
    train: TrainConfig = field(default_factory=TrainConfig)
    model: ModelSettings = field(default_factory=ModelSettings)
    data: DataConfig = field(default_factory=DataConfig)

    def __post_init__(self) -> None:
        if self.train.freeze_word_embeddings and self.data.relation_repr == "markers":
            raise SettingsError(
                "train.freeze_word_embeddings would leave the new entity-marker tokens of "
                "data.relation_repr=markers at their initial vectors; use "
                "data.relation_repr=punct (markers the encoder already knows), pooling, or "
                "train.freeze_word_embeddings=false"
            )
        if self.model.peft != "none" and self.data.relation_repr == "markers":
            raise SettingsError(
                f"model.peft={self.model.peft} keeps the encoder's word embeddings fixed, which "
                "would leave the new entity-marker tokens of data.relation_repr=markers at "
                "their initial vectors; use data.relation_repr=punct (markers the encoder "
                "already knows) or pooling, or model.peft=none"
            )

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {name: dataclasses.asdict(getattr(self, name)) for name in _TABLES}

    def to_toml(self) -> str:
        import tomli_w

        return tomli_w.dumps(self.to_dict())


_TABLES: dict[str, type] = {"train": TrainConfig, "model": ModelSettings, "data": DataConfig}


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SettingsError(f"{name} = {value!r} is not one of: {', '.join(choices)}")


def _coerce(where: str, value: Any, annotation: Any) -> Any:
    kinds = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (
        annotation,)
    for kind in kinds:
        if kind is bool and isinstance(value, bool):
            return value
        if kind is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if kind is str and isinstance(value, str):
            return value
        if kind is type(None) and value is None:
            return None
        if (typing.get_origin(kind) is tuple and isinstance(value, list | tuple)
                and all(isinstance(v, str) for v in value)):
            return tuple(value)
    names = " or ".join("a list of strings" if typing.get_origin(k) is tuple
                        else getattr(k, "__name__", str(k)) for k in kinds)
    raise SettingsError(f"{where} = {value!r} should be {names}")


def _build(tables: dict[str, dict[str, Any]], source: str) -> Settings:
    built = {}
    for name, cls in _TABLES.items():
        given = dict(tables.get(name, {}))
        hints = typing.get_type_hints(cls)
        valid = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(given) - valid)
        if unknown:
            raise SettingsError(
                f"{source}: unknown field(s) {', '.join(f'{name}.{u}' for u in unknown)}; "
                f"valid fields of [{name}]: {', '.join(sorted(valid))}"
            )
        values = {k: _coerce(f"{source}: {name}.{k}", v, hints[k]) for k, v in given.items()}
        try:
            built[name] = cls(**values)
        except ValueError as exc:
            raise SettingsError(f"{source}: {exc}") from exc
    return Settings(**built)


def parse_override(text: str) -> tuple[str, str, Any]:
    """``"train.epochs=3"`` -> ``("train", "epochs", 3)``."""
    if "=" not in text:
        raise SettingsError(f"override {text!r} has no '='; write it as table.field=value")
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if len(parts) != 2 or parts[0] not in _TABLES:
        raise SettingsError(
            f"override {text!r}: name a field as table.field with table one of "
            f"{', '.join(_TABLES)} (e.g. train.epochs=3)"
        )
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return parts[0], parts[1], value


def load_settings(path: Path | str | None = None, overrides: list[str] | None = None) -> Settings:
    """Settings from the TOML file ``path`` (defaults when ``None``) plus ``overrides``."""
    tables: dict[str, dict[str, Any]] = {}
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.exists():
            raise SettingsError(f"{path}: no such settings file")
        # By the line rules of alignment.textfile: a BOM dropped, CRLF read as LF, a NUL
        # byte or invalid UTF-8 refused with its line.
        text = "\n".join(line for _, line in strict_lines(path))
        try:
            tables = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"{path}: not valid TOML ({exc})") from None
        unknown = sorted(set(tables) - set(_TABLES))
        if unknown:
            raise SettingsError(
                f"{path}: unknown table(s) {', '.join(unknown)}; valid: {', '.join(_TABLES)}"
            )
    for text in overrides or []:
        table, name, value = parse_override(text)
        tables.setdefault(table, {})[name] = value
    if overrides:
        source = f"{source} + overrides"
    return _build(tables, source)
