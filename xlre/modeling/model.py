"""The multitask model: an encoder with entity, relation and bag-attention heads.

``XlreModel`` is one ``PreTrainedModel`` over any Hugging Face encoder. Its config
(``XlreConfig``) holds the encoder's config, the label maps and every head setting, so a
checkpoint directory is self-describing: ``XlreModel.from_pretrained(dir)`` rebuilds it
with no other input, from safetensors.

Heads:

* **entities**: BIO tags on the first subword of every word (linear layer);
* **relations**: an entity pair is the concatenation of its head and tail vectors (mean
  of the span's subwords with ``relation_repr="pooling"``; the opening typed marker with
  ``"markers"`` and ``"punct"``), projected to the hidden size. Relations are scored
  one by one with a sigmoid (multi-label; "no relation" is no label above threshold),
  through a relation matrix ``M`` (``R x H``) and a bias, and trained with a binary
  cross-entropy per relation or, with ``relation_loss="adaptive"``, an adaptive-threshold
  loss in which "no relation" is a logit fixed at 0;
* **bags** (multi-instance learning, Lin et al. 2016): for relation ``r`` the bag vector
  is ``s_r = sum_i a_ir x_i`` with ``a_ir = softmax_i(x_i . M_r)`` over the bag's
  instances (sentences in both languages that mention the same KB pair), and the bag's
  score is ``M_r . s_r + b_r``;
* **agreement**: a symmetric KL divergence between the relation probabilities of a
  source instance and of its projected target instance.

The loss is ``w_entity L_entity + w_sentence L_sentence + w_bag L_bag + w_agreement
L_agreement``; a weight of 0 (or a head switched off) drops the term.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import AutoConfig, AutoModel, AutoTokenizer, PreTrainedModel
from transformers.utils import ModelOutput

from alignment.errors import UserError
from xlre.data import LabelMaps
from xlre.modeling.config import XlreConfig
from xlre.modeling.losses import bernoulli_symmetric_kl, relation_loss

logger = logging.getLogger(__name__)


@dataclass
class XlreOutput(ModelOutput):
    loss: torch.Tensor | None = None
    entity_loss: torch.Tensor | None = None
    sentence_loss: torch.Tensor | None = None
    bag_loss: torch.Tensor | None = None
    agreement_loss: torch.Tensor | None = None
    entity_logits: torch.Tensor | None = None
    relation_logits: torch.Tensor | None = None
    bag_logits: torch.Tensor | None = None
    pair_repr: torch.Tensor | None = None


class XlreModel(PreTrainedModel):
    """Encoder + entity tagging + relation classification + bag attention (see module)."""

    config_class = XlreConfig
    base_model_prefix = "xlre"

    def __init__(self, config: XlreConfig) -> None:
        super().__init__(config)
        if not config.encoder:
            raise ValueError(
                "XlreConfig.encoder is empty; build a new model with "
                "XlreModel.from_encoder(name_or_path, labels)"
            )
        enc_config = AutoConfig.for_model(**config.encoder)
        self.encoder = AutoModel.from_config(enc_config)
        if getattr(self.encoder, "pooler", None) is not None:
            # Unused: dropping it keeps DDP from waiting on gradients that never come.
            self.encoder.pooler = None
        hidden = enc_config.hidden_size
        self.dropout = nn.Dropout(config.head_dropout)
        self.entity_classifier = nn.Linear(hidden, len(config.bio_labels))
        self.pair_proj = nn.Linear(2 * hidden, hidden)
        self.relation_matrix = nn.Linear(hidden, max(len(config.relations), 1))
        #: Per relation, the weight of its positive loss term, set by the trainer from
        #: the train split (``train.relation_class_weight``); not saved: only training
        #: uses it. ``None``: every relation weighs 1.
        self.relation_pos_weight: torch.Tensor | None = None
        self.post_init()

    def _init_weights(self, module: nn.Module) -> None:
        if module is self.encoder or not isinstance(module, nn.Linear):
            return
        if module in (self.entity_classifier, self.pair_proj, self.relation_matrix):
            nn.init.normal_(module.weight, std=0.02)
            nn.init.zeros_(module.bias)

    @classmethod
    def from_encoder(
        cls,
        name_or_path: str,
        labels: LabelMaps,
        tokenizer: Any | None = None,
        **settings: Any,
    ) -> tuple[XlreModel, Any]:
        """A new model over the pretrained encoder ``name_or_path`` (hub name or path).

        Returns ``(model, tokenizer)``. With ``relation_repr="markers"`` the typed entity
        markers are added to the tokenizer as special tokens and the embeddings resized.
        """
        tokenizer = tokenizer or AutoTokenizer.from_pretrained(name_or_path)
        encoder = AutoModel.from_pretrained(name_or_path)
        config = XlreConfig(
            encoder=encoder.config.to_dict(),
            encoder_name=str(name_or_path),
            entity_types=list(labels.entity_types),
            relations=list(labels.relations),
            na_label=labels.na,
            **settings,
        )
        if config.relation_repr == "markers":
            added = tokenizer.add_special_tokens(
                {"additional_special_tokens": labels.marker_tokens()})
            if added:
                encoder.resize_token_embeddings(len(tokenizer))
                config.encoder = encoder.config.to_dict()
        model = cls(config)
        missing, unexpected = model.encoder.load_state_dict(
            {k: v for k, v in encoder.state_dict().items() if not k.startswith("pooler.")},
            strict=False,
        )
        if missing or unexpected:
            raise RuntimeError(
                f"encoder weights of {name_or_path} do not fit: missing {missing[:5]}, "
                f"unexpected {unexpected[:5]}"
            )
        return model, tokenizer

    # ------------------------------------------------------------------ pieces
    def span_features(
        self, hidden: torch.Tensor, inst_seq: torch.Tensor, inst_head: torch.Tensor,
        inst_tail: torch.Tensor,
    ) -> torch.Tensor:
        """The head's input (N x 2H): the pooled head span and tail span ``[start, end)``
        of each instance in ``hidden``, concatenated."""
        if inst_seq.numel() == 0:
            return hidden.new_zeros((0, 2 * hidden.shape[-1]))
        seq_len = hidden.shape[1]
        positions = torch.arange(seq_len, device=hidden.device)[None, :]

        def pool(spans: torch.Tensor) -> torch.Tensor:
            mask = (positions >= spans[:, :1]) & (positions < spans[:, 1:])
            mask = mask.to(hidden.dtype)
            summed = torch.einsum("nt,nth->nh", mask, hidden[inst_seq])
            return summed / mask.sum(dim=1, keepdim=True).clamp(min=1.0)

        return torch.cat([pool(inst_head), pool(inst_tail)], dim=-1)

    def project_pairs(self, features: torch.Tensor) -> torch.Tensor:
        """Instance vectors ``x_i`` (N x H) from :meth:`span_features`."""
        return torch.tanh(self.pair_proj(self.dropout(features)))

    def pair_vectors(
        self, hidden: torch.Tensor, inst_seq: torch.Tensor, inst_head: torch.Tensor,
        inst_tail: torch.Tensor,
    ) -> torch.Tensor:
        """Instance vectors ``x_i`` (N x H) from spans ``[start, end)`` in ``hidden``."""
        return self.project_pairs(self.span_features(hidden, inst_seq, inst_head, inst_tail))

    def relation_scores(self, x: torch.Tensor) -> torch.Tensor:
        """Sentence-level relation logits (N x R) for instance vectors ``x``."""
        return self.relation_matrix(self.dropout(x))

    def bag_scores(
        self, x: torch.Tensor, bag_index: torch.Tensor, return_attention: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Bag logits (B x R) by selective attention; ``bag_index`` is B x L, -1 padded.

        With ``return_attention`` also the weights ``a`` (B x L x R; 0 on padding).
        """
        weight = self.relation_matrix.weight  # R x H
        bias = self.relation_matrix.bias
        mask = bag_index >= 0
        members = x[bag_index.clamp(min=0)]  # B x L x H
        scores = torch.einsum("blh,rh->blr", members, weight)
        scores = scores.masked_fill(~mask[..., None], torch.finfo(scores.dtype).min)
        attn = torch.softmax(scores, dim=1) * mask[..., None].to(scores.dtype)
        bag_vec = torch.einsum("blr,blh->brh", attn, members)  # B x R x H
        logits = (self.dropout(bag_vec) * weight[None]).sum(-1) + bias
        return (logits, attn) if return_attention else logits

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        entity_labels: torch.Tensor | None = None,
        inst_seq: torch.Tensor | None = None,
        inst_head: torch.Tensor | None = None,
        inst_tail: torch.Tensor | None = None,
        inst_labels: torch.Tensor | None = None,
        bag_index: torch.Tensor | None = None,
        bag_labels: torch.Tensor | None = None,
        agree_index: torch.Tensor | None = None,
        **unused: Any,
    ) -> XlreOutput:
        cfg = self.config
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        out = XlreOutput()
        losses: list[torch.Tensor] = []
        if cfg.entity_head:
            out.entity_logits = self.entity_classifier(self.dropout(hidden))
            if entity_labels is not None and cfg.entity_weight > 0:
                flat = entity_labels.reshape(-1)
                if (flat != -100).any():
                    out.entity_loss = F.cross_entropy(
                        out.entity_logits.reshape(-1, out.entity_logits.shape[-1]).float(),
                        flat, ignore_index=-100,
                    )
                    losses.append(cfg.entity_weight * out.entity_loss)
        if cfg.relation_head and inst_seq is not None and inst_seq.numel() > 0:
            x = self.pair_vectors(hidden, inst_seq, inst_head, inst_tail)
            out.pair_repr = x
            out.relation_logits = self.relation_scores(x)
            if inst_labels is not None and cfg.sentence_weight > 0:
                out.sentence_loss = relation_loss(cfg.relation_loss, out.relation_logits,
                                                  inst_labels, self.relation_pos_weight)
                losses.append(cfg.sentence_weight * out.sentence_loss)
            if cfg.bag_attention and bag_index is not None and bag_index.numel() > 0:
                out.bag_logits = self.bag_scores(x, bag_index)
                if bag_labels is not None and cfg.bag_weight > 0:
                    out.bag_loss = relation_loss(cfg.relation_loss, out.bag_logits, bag_labels,
                                                 self.relation_pos_weight)
                    losses.append(cfg.bag_weight * out.bag_loss)
            if (cfg.agreement and agree_index is not None and agree_index.numel() > 0
                    and cfg.agreement_weight > 0):
                out.agreement_loss = bernoulli_symmetric_kl(
                    out.relation_logits[agree_index[:, 0]].float(),
                    out.relation_logits[agree_index[:, 1]].float(),
                )
                losses.append(cfg.agreement_weight * out.agreement_loss)
        if losses:
            out.loss = torch.stack(losses).sum()
        elif self.training:
            # A batch with nothing to learn still has to touch every parameter under DDP.
            out.loss = hidden.sum() * 0.0
        return out


class ModelDirError(UserError, ValueError):
    """A directory is not a model written by ``xlre train``; the message says why."""


def load_model_dir(model_dir: str | Path) -> tuple[XlreModel, Any]:
    """``(model, tokenizer)`` from a directory written by ``xlre train``, checked first."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").exists():
        raise ModelDirError(f"{model_dir}: no config.json; give a directory written by xlre train")
    config = XlreConfig.from_pretrained(model_dir)
    if getattr(config, "model_type", None) != "xlre" or not config.encoder:
        raise ModelDirError(f"{model_dir}: not an xlre model directory (config.json has "
                            f"model_type {getattr(config, 'model_type', None)!r})")
    return XlreModel.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
