"""oneDNN for the neural aligner's ``nn.Linear`` layers on the CPU.

``torch.ops.mkldnn._linear_pointwise`` (the kernel torch's own compiler uses) picks
AVX-512 code on any x86 CPU, where the default MKL GEMM may run AVX2 code (it does on AMD
EPYC: about half the speed). Same float32 arithmetic, summed in another order. The op is
checked against ``F.linear`` first and skipped, with a log line, where it is missing or
disagrees.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

logger = logging.getLogger(__name__)


def _onednn_linear_op() -> Any:
    """``torch.ops.mkldnn._linear_pointwise`` if this torch has it and it is right."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        op = torch.ops.mkldnn._linear_pointwise
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(2, 5, 16, generator=gen)
        w = torch.randn(24, 16, generator=gen)
        b = torch.randn(24, generator=gen)
        with torch.inference_mode():
            got = op(x, w, b, "none", [], "")
        ok = torch.allclose(got, torch.nn.functional.linear(x, w, b), rtol=1e-4, atol=1e-5)
    except (AttributeError, RuntimeError) as err:
        logger.info("simalign: oneDNN linear unavailable (%s); using torch's default GEMM", err)
        return None
    if not ok:
        logger.info("simalign: oneDNN linear disagrees with F.linear; using torch's default GEMM")
        return None
    return op


# The checked oneDNN linear op, set by use_onednn.
_ONEDNN: dict[str, Any] = {"linear": None}


class _OneDNNLinear(torch.nn.Linear):
    """An ``nn.Linear`` computed by oneDNN on the CPU at inference (see module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        op = _ONEDNN["linear"]
        if op is None or x.device.type != "cpu" or x.dtype != torch.float32 or torch.is_grad_enabled():
            return super().forward(x)
        return op(x, self.weight, self.bias, "none", [], "")


def use_onednn(model: Any) -> int:
    """Route the float32 ``nn.Linear`` modules of ``model`` through oneDNN; how many."""
    op = _onednn_linear_op()
    if op is None:
        return 0
    _ONEDNN["linear"] = op
    n = 0
    for module in model.modules():
        if type(module) is torch.nn.Linear and module.weight.dtype == torch.float32:
            module.__class__ = _OneDNNLinear
            n += 1
    return n
