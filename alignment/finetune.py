"""Fine-tune a neural aligner's encoder on the user's own parallel text.

The self-training objective of awesome-align (Dou & Neubig, 2021, "Word Alignment by
Fine-tuning Embeddings on Parallel Corpora"): for each sentence pair, the encoder's
layer-``layer`` subword vectors give a matrix of dot products; softmaxed over the
targets it gives ``P(tgt | src)``, over the sources ``P(src | tgt)``. The links the
model itself extracts from them (both probabilities at least ``threshold``, or mutual
argmax: ``guide``) are taken as targets, without gradient, and the loss is their mean
negative log-probability in both directions. The model so learns to make its own
confident links sharper, which is what the ``softmax`` extraction of
:class:`~alignment.aligners.neural.NeuralAligner` reads. No labelled alignments are
needed: only sentence pairs.

What is trained: the encoder layers up to ``layer`` (those above it do not touch the
loss, and the forward pass stops there); the word-embedding table (a quarter of a
million XLM-R pieces) is frozen, which keeps an optimiser step cheap on a CPU. The
output directory is an ordinary Hugging Face encoder (``save_pretrained``, with its
tokenizer), to pass as ``--model`` to ``xlre align --aligner simalign``, plus
``xlre-align-tune.json`` recording the source model, layer, objective and counts.
Written under a temporary name and renamed when complete, so a killed run leaves no
half-written encoder.

Pairs whose either side has more subwords than ``max_subwords`` are left out of training
(never cut) and counted in the summary.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from alignment.aligners.base import AlignerError
from alignment.aligners.neural import (
    _LAYER_STACKS,
    _load,
    _pad_id,
    _special_tokens,
    family_defaults,
)
from alignment.aligners.similarity import SOFTMAX_THRESHOLD
from alignment.errors import SettingError

logger = logging.getLogger(__name__)

GUIDES: tuple[str, ...] = ("softmax", "argmax")
TUNE_INFO = "xlre-align-tune.json"


@dataclass(frozen=True, slots=True)
class TuneConfig:
    """Settings of a fine-tuning run (defaults: awesome-align's, where it states them).

    ``guide`` defaults to ``argmax``, not awesome-align's ``softmax``: on
    multilingual-e5-small, whose off-the-shelf softmax is flat, the softmax guide at 1e-3
    links nearly every pair, teaches the encoder a uniform distribution and collapsed it
    (zhen-dev AER 0.24 to 0.76 after 4,000 pairs); mutual argmax links are few and
    precise and improved it (BENCHMARKS.md, "Chinese end to end").
    """

    layer: int | None = None  # None: the encoder family's default (family_defaults)
    epochs: int = 1
    batch_size: int = 8
    lr: float = 2e-5
    threshold: float = SOFTMAX_THRESHOLD
    guide: str = "argmax"
    max_subwords: int = 128
    seed: int = 0

    def validate(self) -> None:
        if self.guide not in GUIDES:
            raise SettingError(f"unknown guide {self.guide!r}; choose {' or '.join(GUIDES)}")
        if self.epochs < 1 or self.batch_size < 1 or self.max_subwords < 1:
            raise SettingError("epochs, batch_size and max_subwords must be at least 1")
        if not 0.0 < self.lr < 1.0:
            raise SettingError(f"lr must be in (0, 1), got {self.lr}")
        if not 0.0 < self.threshold < 1.0:
            raise SettingError(f"threshold must be in (0, 1), got {self.threshold}")


@dataclass
class TuneSummary:
    """What a fine-tuning run did; written to ``xlre-align-tune.json`` in the output."""

    base_model: str
    layer: int
    pairs: int = 0
    trained_pairs: int = 0
    too_long: int = 0
    empty: int = 0
    steps: int = 0
    first_loss: float | None = None
    last_loss: float | None = None
    seconds: float = 0.0
    config: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressFn = Callable[[int], None]


class _Encoder:
    """The encoder cut to its first ``layer`` layers, for training, and restorable."""

    def __init__(self, model: Any, layer: int) -> None:
        self.model = model
        self._stack: tuple[Any, str, Any] | None = None
        n_layers = model.config.num_hidden_layers
        for path in _LAYER_STACKS:
            parent: Any = model
            *head, last = path.split(".")
            for attr in head:
                parent = getattr(parent, attr, None)
            stack = getattr(parent, last, None)
            if isinstance(stack, torch.nn.ModuleList) and len(stack) == n_layers:
                self._stack = (parent, last, stack)
                setattr(parent, last, torch.nn.ModuleList(list(stack)[:layer]))
                break
        else:
            logger.info("align-tune: no known layer stack; running all %d layers", n_layers)

    def restore(self) -> None:
        if self._stack is not None:
            parent, last, stack = self._stack
            setattr(parent, last, stack)


def pair_loss(x: torch.Tensor, y: torch.Tensor, threshold: float, guide: str) -> torch.Tensor | None:
    """The self-training loss of one pair from its subword vectors (module docstring);
    ``None`` when the model extracts no link to learn from."""
    dot = x @ y.T
    log_fwd = torch.log_softmax(dot, dim=1)  # P(tgt | src), rows
    log_bwd = torch.log_softmax(dot, dim=0)  # P(src | tgt), columns
    with torch.no_grad():
        if guide == "softmax":
            target = (log_fwd.exp() >= threshold) & (log_bwd.exp() >= threshold)
        else:
            target = torch.zeros_like(dot, dtype=torch.bool)
            best_tgt = dot.argmax(dim=1)
            rows = torch.arange(dot.shape[0], device=dot.device)
            mutual = dot.argmax(dim=0)[best_tgt] == rows
            target[rows[mutual], best_tgt[mutual]] = True
        n = int(target.sum())
    if n == 0:
        return None
    return -(log_fwd[target].sum() + log_bwd[target].sum()) / (2 * n)


def fine_tune(
    model: str,
    src: Sequence[Sequence[str]],
    tgt: Sequence[Sequence[str]],
    out_dir: Path | str,
    config: TuneConfig | None = None,
    progress: ProgressFn | None = None,
) -> TuneSummary:
    """Fine-tune ``model`` on the tokenised pairs ``src[k]``/``tgt[k]``; write it to
    ``out_dir`` (module docstring) and return what was done.

    Raises:
        AlignerError: the encoder cannot be loaded, or ``out_dir`` exists and is not empty.
        ValueError: a bad setting, or no pair left to train on.
    """
    import time

    config = config or TuneConfig()
    config.validate()
    if len(src) != len(tgt):
        raise ValueError(f"{len(src)} source sentences but {len(tgt)} target sentences")
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise AlignerError(f"{out} exists and is not an empty directory; choose a new --out")
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    tokenizer, encoder = _load(model)
    n_layers = int(encoder.config.num_hidden_layers)
    layer = family_defaults(encoder.config)["layer"] if config.layer is None else config.layer
    if not 1 <= layer <= n_layers:
        raise SettingError(f"layer {layer} is out of range for {model!r}: choose 1 to {n_layers}")
    prefix, suffix = _special_tokens(tokenizer, model)
    pad = _pad_id(tokenizer, encoder)
    unk = tokenizer.unk_token_id
    summary = TuneSummary(base_model=model, layer=layer, pairs=len(src),
                          config=asdict(config) | {"layer": layer})

    cache: dict[str, tuple[int, ...]] = {}

    def ids_of(words: Sequence[str]) -> tuple[int, ...]:
        missing = [w for w in dict.fromkeys(words) if w not in cache]
        if missing:
            for w, ids in zip(missing, tokenizer(missing, add_special_tokens=False)["input_ids"], strict=True):
                cache[w] = tuple(ids) if ids else (unk,)
        return tuple(i for w in words for i in cache[w])

    examples: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
    for s, t in zip(src, tgt, strict=True):
        if not s or not t:
            summary.empty += 1
            continue
        si, ti = ids_of(s), ids_of(t)
        if len(si) > config.max_subwords or len(ti) > config.max_subwords:
            summary.too_long += 1
            continue
        examples.append((si, ti))
    if not examples:
        raise SettingError("no sentence pair to train on (all empty or over max_subwords)")
    summary.trained_pairs = len(examples)

    cut = _Encoder(encoder, layer)
    embeddings = encoder.get_input_embeddings()
    embeddings.weight.requires_grad_(False)
    params = [p for p in encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr)
    encoder.train()
    rng = random.Random(config.seed)
    n_batches = (len(examples) + config.batch_size - 1) // config.batch_size
    total_steps = n_batches * config.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: max(0.0, 1.0 - step / total_steps))
    recent: list[float] = []
    for _epoch in range(config.epochs):
        order = list(range(len(examples)))
        rng.shuffle(order)
        for b in range(0, len(order), config.batch_size):
            batch = [examples[k] for k in order[b : b + config.batch_size]]
            seqs = [side for pair in batch for side in pair]
            width = len(prefix) + max(len(q) for q in seqs) + len(suffix)
            input_ids = torch.full((len(seqs), width), pad, dtype=torch.long)
            mask = torch.zeros((len(seqs), width), dtype=torch.long)
            for row, q in enumerate(seqs):
                full = [*prefix, *q, *suffix]
                input_ids[row, : len(full)] = torch.tensor(full)
                mask[row, : len(full)] = 1
            hidden = encoder(input_ids=input_ids, attention_mask=mask,
                             output_hidden_states=True).hidden_states[layer]
            losses = []
            off = len(prefix)
            for k, (si, ti) in enumerate(batch):
                x = hidden[2 * k, off : off + len(si)]
                y = hidden[2 * k + 1, off : off + len(ti)]
                loss = pair_loss(x, y, config.threshold, config.guide)
                if loss is not None:
                    losses.append(loss)
            if losses:
                loss = torch.stack(losses).mean()
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                optimizer.step()
                value = float(loss.detach())
                if summary.first_loss is None:
                    summary.first_loss = value
                recent = ([*recent, value])[-100:]
            scheduler.step()
            summary.steps += 1
            if summary.steps % 200 == 0 and recent:
                logger.info("align-tune: step %d of %d, loss %.4f (mean of the last %d)",
                            summary.steps, total_steps, sum(recent) / len(recent), len(recent))
            if progress:
                progress(len(batch))
    summary.last_loss = sum(recent) / len(recent) if recent else None
    cut.restore()
    embeddings.weight.requires_grad_(True)
    encoder.eval()
    summary.seconds = round(time.perf_counter() - start, 1)

    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    encoder.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / TUNE_INFO).write_text(json.dumps(summary.as_dict(), indent=2) + "\n", encoding="utf-8")
    if out.exists():
        out.rmdir()
    tmp.rename(out)
    return summary
