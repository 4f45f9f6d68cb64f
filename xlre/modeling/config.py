"""The model config: encoder config, label maps and head settings in one
``PretrainedConfig``, so a model directory is self-describing."""

from __future__ import annotations

from typing import Any

from transformers import AutoConfig, PretrainedConfig

from alignment.errors import SettingError
from xlre.data import RELATION_REPRS, LabelMaps
from xlre.modeling.losses import RELATION_LOSSES
from xlre.records import NA

DEFAULT_ENCODER = "xlm-roberta-base"


class XlreConfig(PretrainedConfig):
    """Encoder config, label maps and head settings of an :class:`XlreModel`."""

    model_type = "xlre"

    def __init__(
        self,
        encoder: dict[str, Any] | None = None,
        encoder_name: str = DEFAULT_ENCODER,
        entity_types: list[str] | tuple[str, ...] = (),
        relations: list[str] | tuple[str, ...] = (),
        na_label: str = NA,
        relation_repr: str = "pooling",
        entity_head: bool = True,
        relation_head: bool = True,
        bag_attention: bool = True,
        agreement: bool = True,
        entity_weight: float = 1.0,
        sentence_weight: float = 1.0,
        bag_weight: float = 1.0,
        agreement_weight: float = 0.5,
        head_dropout: float = 0.1,
        relation_threshold: float = 0.5,
        relation_loss: str = "bce",
        max_seq_length: int = 256,
        data_config: dict[str, Any] | None = None,
        relation_names: dict[str, dict[str, str]] | None = None,
        languages: list[str] | tuple[str, ...] | None = None,
        peft_training: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if relation_repr not in RELATION_REPRS:
            raise SettingError(
                f"relation_repr {relation_repr!r} is not one of {', '.join(RELATION_REPRS)}"
            )
        self.encoder = encoder or {}
        self.encoder_name = encoder_name
        self.entity_types = list(entity_types)
        self.relations = list(relations)
        self.na_label = na_label
        self.relation_repr = relation_repr
        self.entity_head = entity_head
        self.relation_head = relation_head
        self.bag_attention = bag_attention
        self.agreement = agreement
        self.entity_weight = entity_weight
        self.sentence_weight = sentence_weight
        self.bag_weight = bag_weight
        self.agreement_weight = agreement_weight
        self.head_dropout = head_dropout
        self.relation_threshold = relation_threshold
        if relation_loss not in RELATION_LOSSES:
            raise SettingError(f"relation_loss {relation_loss!r} is not one of "
                             f"{', '.join(RELATION_LOSSES)}")
        self.relation_loss = relation_loss
        self.max_seq_length = max_seq_length
        #: The xlre.data.DataConfig the model was trained with (splits, windows).
        self.data_config = dict(data_config or {})
        #: Relation names per base language ({"P17": {"en": "country", "zh": "国家"}}), from
        #: the training KB (keys normalised by alignment.languages), so a model names its
        #: relations in the text's language without the KB.
        self.relation_names = dict(relation_names or {})
        #: Base codes of the languages of the training split's sentences (sorted). Empty:
        #: not recorded (a model directory written before this field existed).
        self.languages = sorted(languages or ())
        #: How the encoder was trained when not in full: ``{"method": "lora", "rank",
        #: "alpha", "dropout", "target_modules", "adapted_modules"}``
        #: (:mod:`xlre.modeling.lora`). The saved weights hold the adapters merged in, so
        #: loading needs no peft. Empty: full fine-tuning.
        self.peft_training = dict(peft_training or {})
        super().__init__(**kwargs)

    @property
    def labels(self) -> LabelMaps:
        return LabelMaps(tuple(self.entity_types), tuple(self.relations), self.na_label)

    @property
    def bio_labels(self) -> list[str]:
        return self.labels.bio


AutoConfig.register("xlre", XlreConfig, exist_ok=True)
