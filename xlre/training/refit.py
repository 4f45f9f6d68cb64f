"""Refit the relation head on frozen encoder features (``train.head_refit_epochs``).

Distant labels on news are dominated by one or two relations (P530, P47). With the few
hundred fine-tuning steps a CPU affords, the relation head learns little more than the
majority relation, although the encoder's features separate the relations: a linear
probe fitted for many passes over the same instances reads them (``scripts/
bench_probe.py``, issue 19). A refit gives the head those passes cheaply:

1. one forward pass over the train split with no gradient, in eval mode, keeping each
   relation instance's :meth:`XlreModel.span_features` (2H floats) and its labels;
2. ``pair_proj`` and ``relation_matrix`` start afresh and are fitted for ``epochs``
   passes over the cached features, with the model's own relation loss and class weights
   (sentence level; the bag head reads the same matrix), AdamW at ``train.head_refit_learning_rate``,
   dropout as in training.

Every process computes the same features and makes the same seeded steps, so replicas
stay equal; the encoder is not touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import torch

from xlre.evaluation.model_eval import eval_loader
from xlre.modeling.losses import relation_loss

logger = logging.getLogger(__name__)


@torch.no_grad()
def instance_features(model: Any, seqs: Any, num_relations: int, pad_id: int,
                      batch_size: int, progress: Callable[[int, int], None] | None = None,
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(features, labels)`` of every relation instance of ``seqs``: N x 2H span
    features (float32, on the CPU) and N x R multi-hot labels."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    feats: list[torch.Tensor] = []
    labels: list[torch.Tensor] = []
    loader = eval_loader(seqs, num_relations, pad_id, batch_size)
    try:
        for batch in loader:
            if batch["inst_seq"].numel():
                batch = {k: v.to(device) for k, v in batch.items()}
                hidden = model.encoder(input_ids=batch["input_ids"],
                                       attention_mask=batch["attention_mask"]).last_hidden_state
                feats.append(model.span_features(hidden, batch["inst_seq"], batch["inst_head"],
                                                 batch["inst_tail"]).float().cpu())
                labels.append(batch["inst_labels"].cpu())
            if progress is not None:
                progress(1, len(loader))
    finally:
        model.train(was_training)
    if not feats:
        return torch.zeros((0, model.pair_proj.in_features)), torch.zeros((0, num_relations))
    return torch.cat(feats), torch.cat(labels)


def refit_relation_head(model: Any, seqs: Any, num_relations: int, pad_id: int, *,
                        epochs: int, learning_rate: float, weight_decay: float,
                        batch_size: int, feature_batch_size: int, seed: int,
                        progress: Callable[[str, float, int], None] | None = None,
                        ) -> dict[str, Any]:
    """Refit ``model``'s pair projection and relation matrix on the train split ``seqs``
    (see the module); returns a summary (instances, positives, steps, last epoch's loss)."""
    feat_progress = (lambda n, total: progress("refit features", n, total)) if progress else None
    x, y = instance_features(model, seqs, num_relations, pad_id, feature_batch_size,
                             feat_progress)
    summary: dict[str, Any] = {"instances": len(x), "positive": int((y.sum(1) > 0).sum()),
                               "epochs": epochs, "steps": 0, "loss": None}
    if not len(x) or not summary["positive"]:
        logger.warning("head refit skipped: the train split has %d relation instances, %d "
                       "with a relation", len(x), summary["positive"])
        return summary
    head = [model.pair_proj, model.relation_matrix]
    device = model.pair_proj.weight.device
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in head:
            layer.weight.normal_(0.0, 0.02, generator=generator)
            layer.bias.zero_()
    params = [p for layer in head for p in layer.parameters()]
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)
    kind, pos_weight = model.config.relation_loss, model.relation_pos_weight
    was_training = model.training
    model.train()  # dropout in the head, as in training; the encoder is not run
    try:
        for epoch in range(epochs):
            order = torch.randperm(len(x), generator=generator)
            total, batches = 0.0, 0
            for start in range(0, len(x), batch_size):
                idx = order[start:start + batch_size]
                logits = model.relation_scores(model.project_pairs(x[idx].to(device)))
                loss = relation_loss(kind, logits, y[idx].to(device), pos_weight)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += float(loss.detach())
                batches += 1
            summary["steps"] += batches
            summary["loss"] = round(total / batches, 6)
            logger.info("head refit epoch %d/%d: loss %.4f", epoch + 1, epochs, summary["loss"])
            if progress is not None:
                progress("refit", 1, epochs)
    finally:
        model.train(was_training)
        for p in params:
            p.grad = None
    return summary
