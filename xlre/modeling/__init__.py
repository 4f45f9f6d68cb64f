"""The multitask model: config, encoder with entity, relation and bag heads, losses.

Consumes label maps (:mod:`xlre.data`) and any Hugging Face encoder; produces a
``PreTrainedModel`` whose directory is self-describing (label maps and head settings in
``config.json``, weights in safetensors). :mod:`~xlre.modeling.tiny` builds small random
XLM-R encoders for offline use.
"""

from xlre.modeling.config import DEFAULT_ENCODER, XlreConfig
from xlre.modeling.lora import add_lora, count_parameters, merged_state_dict, require_peft
from xlre.modeling.losses import (
    RELATION_LOSSES,
    adaptive_threshold_loss,
    bernoulli_symmetric_kl,
    class_weights,
    multilabel_loss,
    relation_loss,
)
from xlre.modeling.model import ModelDirError, XlreModel, XlreOutput, load_model_dir
from xlre.modeling.tiny import BASE, MICRO, TINY, EncoderShape, build_encoder, with_max_positions

__all__ = [
    "BASE",
    "DEFAULT_ENCODER",
    "MICRO",
    "RELATION_LOSSES",
    "TINY",
    "EncoderShape",
    "ModelDirError",
    "XlreConfig",
    "XlreModel",
    "XlreOutput",
    "adaptive_threshold_loss",
    "add_lora",
    "bernoulli_symmetric_kl",
    "build_encoder",
    "class_weights",
    "count_parameters",
    "load_model_dir",
    "merged_state_dict",
    "multilabel_loss",
    "relation_loss",
    "require_peft",
    "with_max_positions",
]
