"""The losses of the relation, bag and agreement heads."""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: ``model.relation_loss``: binary cross-entropy per relation, or adaptive threshold.
RELATION_LOSSES = ("bce", "adaptive")


def multilabel_loss(logits: torch.Tensor, targets: torch.Tensor,
                    pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Binary cross-entropy summed over relations, averaged over instances (or bags).

    Summing over relations (not averaging) keeps a rare relation's gradient as large as
    it would be under a softmax, whatever the number of relations. ``pos_weight``: per
    relation, the weight of its positive term (:func:`class_weights`).
    """
    if pos_weight is not None:
        pos_weight = pos_weight.to(device=logits.device, dtype=torch.float32)
    return F.binary_cross_entropy_with_logits(
        logits.float(), targets.float(), reduction="none", pos_weight=pos_weight).sum(-1).mean()


def class_weights(counts: list[int], power: float) -> torch.Tensor | None:
    """Per relation, ``(mean count / count) ** power`` over the relations that occur.

    The weight of a relation's positive term in the loss, so the few labels of a rare
    relation are not drowned by the majority ones (P530, P47 on news). ``power`` 0: no
    weights (``None``); 0.5: the square root of the inverse frequency; 1: the inverse
    frequency. A relation with no label keeps weight 1 (it has no positive term).
    """
    if power < 0:
        raise ValueError(f"class weight power must be 0 or more, got {power}")
    if not power:
        return None
    seen = [c for c in counts if c > 0]
    if not seen:
        return None
    mean = sum(seen) / len(seen)
    return torch.tensor([(mean / c) ** power if c > 0 else 1.0 for c in counts],
                        dtype=torch.float32)


def adaptive_threshold_loss(logits: torch.Tensor, targets: torch.Tensor,
                            pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    """Adaptive-thresholding loss (Zhou et al. 2021, ATLOP) with the threshold logit at 0.

    For each row: every gold relation is pushed above the threshold, by a softmax over
    the gold relations and the threshold; the threshold is pushed above every other
    relation, by a softmax over the threshold and the non-gold relations. With no gold
    relation only the second term is left. A logit above 0 (sigmoid above 0.5) is the
    natural decision, as with the binary loss. Averaged over rows. ``pos_weight``: per
    relation, the weight of its gold term.
    """
    logits = logits.float()
    gold = targets.bool()
    zero = logits.new_zeros((logits.shape[0], 1))
    full = torch.cat([zero, logits], dim=1)  # column 0: the threshold
    neg_inf = torch.finfo(full.dtype).min
    threshold = torch.ones_like(zero, dtype=torch.bool)

    def log_softmax_over(members: torch.Tensor) -> torch.Tensor:
        keep = torch.cat([threshold, members], dim=1)
        return torch.log_softmax(full.masked_fill(~keep, neg_inf), dim=1)

    pos_terms = -(log_softmax_over(gold)[:, 1:] * gold)
    if pos_weight is not None:
        pos_terms = pos_terms * pos_weight.to(device=logits.device, dtype=torch.float32)
    pos_loss = pos_terms.sum(-1)
    neg_loss = -log_softmax_over(~gold)[:, 0]
    return (pos_loss + neg_loss).mean()


def relation_loss(kind: str, logits: torch.Tensor, targets: torch.Tensor,
                  pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    """The relation loss ``kind`` (``bce`` or ``adaptive``; see ``XlreConfig``)."""
    if kind == "adaptive":
        return adaptive_threshold_loss(logits, targets, pos_weight)
    return multilabel_loss(logits, targets, pos_weight)


def bernoulli_symmetric_kl(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean over relations of KL(p||q) + KL(q||p) for independent Bernoulli logits."""
    pa, pb = torch.sigmoid(a), torch.sigmoid(b)
    la, lb = F.logsigmoid(a), F.logsigmoid(b)
    na, nb = F.logsigmoid(-a), F.logsigmoid(-b)
    kl = (pa - pb) * (la - lb) + ((1 - pa) - (1 - pb)) * (na - nb)
    return kl.mean()
