"""LoRA on the encoder (``model.peft = "lora"``), through peft.

:func:`add_lora` puts LoRA adapters (Hu et al. 2021: ``W x + (alpha / r) B A x``, ``B``
zero at the start) on the encoder's target linear layers, in place (peft's
``inject_adapter_in_model``), and fixes every other encoder weight; the heads of
:class:`~xlre.modeling.XlreModel` are untouched and stay trainable. The model is still an
``XlreModel``: its ``state_dict`` holds the adapters under peft's names
(``...query.base_layer.weight``, ``...query.lora_A.default.weight``), which is what
training checkpoints (``accelerator.save_state``) store and resume from.

:func:`merged_state_dict` folds the adapters into the encoder's weights
(``W + (alpha / r) B A``) under the plain names, so the saved model directory is an
ordinary xlre model that loads without peft; its config's ``peft_training`` records how
it was trained. peft is an optional dependency: ``pip install 'xlre[peft]'``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from alignment.errors import SettingError

logger = logging.getLogger(__name__)

#: peft's name of the one adapter xlre trains.
ADAPTER = "default"


def require_peft() -> Any:
    """The peft module; a :class:`~alignment.errors.SettingError` naming the install
    command where it is missing."""
    try:
        import peft
    except ImportError:
        raise SettingError("model.peft=lora needs the peft package: pip install 'xlre[peft]' "
                           "(or set model.peft=none)") from None
    return peft


def _matches(name: str, target: str) -> bool:
    """peft's rule for a list of targets: the module's full name, or a dotted suffix."""
    return name == target or name.endswith(f".{target}")


def add_lora(model: Any, rank: int, alpha: float, dropout: float,
             target_modules: Sequence[str]) -> None:
    """Put LoRA adapters on ``model.encoder``'s linear layers named by ``target_modules``
    (names or dotted suffixes), in place, and fix the encoder's other weights.

    Records ``{"method": "lora", "rank", "alpha", "dropout", "target_modules",
    "adapted_modules"}`` in ``model.config.peft_training``. A target that names no linear
    layer of the encoder is a :class:`~alignment.errors.SettingError` that lists the
    encoder's linear layers.
    """
    peft = require_peft()
    encoder: nn.Module = model.encoder
    linear = [name for name, module in encoder.named_modules() if isinstance(module, nn.Linear)]
    targets = [t.strip() for t in target_modules]
    missing = [t for t in targets if not any(_matches(name, t) for name in linear)]
    if missing:
        suffixes = sorted({name.split(".", 3)[-1] if name.startswith("encoder.layer.") else name
                           for name in linear})
        raise SettingError(
            f"model.lora_target_modules: {', '.join(repr(t) for t in missing)} names no linear "
            f"layer of the encoder; its linear layers (per block) are {', '.join(suffixes)}")
    adapted = [name for name in linear if any(_matches(name, t) for t in targets)]
    config = peft.LoraConfig(r=rank, lora_alpha=alpha, lora_dropout=dropout,
                             target_modules=targets, bias="none")
    peft.inject_adapter_in_model(config, encoder, adapter_name=ADAPTER)
    for name, param in encoder.named_parameters():
        param.requires_grad_(".lora_" in name)
    model.config.peft_training = {
        "method": "lora", "rank": rank, "alpha": alpha, "dropout": dropout,
        "target_modules": targets, "adapted_modules": len(adapted),
    }
    logger.info("LoRA (rank %d, alpha %g) on %d linear layers of the encoder: %s", rank, alpha,
                len(adapted), ", ".join(targets))


def merged_state_dict(state_dict: dict[str, torch.Tensor],
                      peft_training: dict[str, Any] | None) -> dict[str, torch.Tensor]:
    """``state_dict`` with every LoRA adapter folded into its layer: ``W + (alpha / r) B
    A`` under the layer's plain name (``...query.weight``), the ``lora_*`` entries dropped.

    A new dict; the tensors of ``state_dict`` are not changed, so training goes on with
    the adapters as they were. Without LoRA (``peft_training`` empty) it is
    ``state_dict`` itself.
    """
    if not peft_training or peft_training.get("method") != "lora":
        return state_dict
    scale = float(peft_training["alpha"]) / int(peft_training["rank"])
    a_suffix, b_suffix = f".lora_A.{ADAPTER}.weight", f".lora_B.{ADAPTER}.weight"
    layers = [key[: -len(a_suffix)] for key in state_dict if key.endswith(a_suffix)]
    merged: dict[str, torch.Tensor] = {}
    for prefix in layers:
        base = state_dict[f"{prefix}.base_layer.weight"]
        lora_a, lora_b = state_dict[prefix + a_suffix], state_dict[prefix + b_suffix]
        delta = (lora_b.float() @ lora_a.float()) * scale
        merged[f"{prefix}.weight"] = (base.float() + delta.to(base.device)).to(base.dtype)
        bias = state_dict.get(f"{prefix}.base_layer.bias")
        if bias is not None:
            merged[f"{prefix}.bias"] = bias
    layer_prefixes = tuple(f"{p}." for p in layers)
    for key, value in state_dict.items():
        if key.startswith(layer_prefixes):
            rest = key[len(next(p for p in layer_prefixes if key.startswith(p))):]
            if rest.startswith(("base_layer.", "lora_A.", "lora_B.")):
                continue
            raise RuntimeError(f"LoRA layer entry {key} is not one merged_state_dict knows")
        if ".lora_" in key:
            raise RuntimeError(f"LoRA entry {key} has no lora_A.{ADAPTER} beside it")
        merged[key] = value
    return merged


def count_parameters(model: nn.Module) -> dict[str, Any]:
    """``{"trainable_parameters", "total_parameters", "trainable_share"}`` of ``model``
    (the share in [0, 1]; parameters shared by two modules counted once)."""
    trainable = total = 0
    for param in model.parameters():
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
    return {"trainable_parameters": trainable, "total_parameters": total,
            "trainable_share": round(trainable / total, 6) if total else 0.0}
