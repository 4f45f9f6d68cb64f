"""Faster CPU inference for a trained model: ``xlre extract --optimize int8``.

``int8`` is PyTorch's dynamic quantisation: every ``nn.Linear`` of the encoder and the
heads keeps int8 weights and quantises its input per batch; embeddings and layer norms
stay fp32. It needs no calibration data and no other runtime, and the model directory
on disk is unchanged: the route is applied at load time. BENCHMARKS.md ("CPU
extraction routes") has its speed and F1 cost against fp32, and what ONNX Runtime
measured against it.

It runs on CPU only: on a GPU, run fp32 or bf16 instead.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import torch

from alignment.errors import SettingError

logger = logging.getLogger(__name__)

#: The optimised CPU routes ``--optimize`` takes.
OPTIMIZE_ROUTES: tuple[str, ...] = ("int8",)


def optimize_for_cpu(model: Any, route: str) -> Any:
    """``model`` made faster for CPU inference by ``route`` (one of :data:`OPTIMIZE_ROUTES`).

    The model must be in eval mode on the CPU; the returned model replaces it (its
    ``nn.Linear`` layers are swapped in place).
    """
    if route not in OPTIMIZE_ROUTES:
        raise SettingError(f"unknown optimisation {route!r}; choose {' or '.join(OPTIMIZE_ROUTES)}")
    device = next(model.parameters()).device
    if device.type != "cpu":
        raise SettingError(f"--optimize {route} runs on CPU, and the model is on {device}; "
                           "drop --optimize on a GPU")
    from torch.ao.quantization import quantize_dynamic

    n_linear = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    with warnings.catch_warnings():
        # PyTorch 2.13 marks its quantised tensor types deprecated (to move to torchao);
        # the kernels are the same ones, and the figures in BENCHMARKS.md are theirs.
        warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*deprecated", category=UserWarning)
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization.*deprecated")
        quantized = quantize_dynamic(model.eval(), {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    logger.info("int8 dynamic quantisation: %d linear layers", n_linear)
    return quantized
