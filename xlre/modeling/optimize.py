"""Faster CPU inference for a trained model: ``xlre extract --optimize ROUTE``.

* ``onnx-int8`` (the faster, measured): the encoder, exported with ``torch.onnx.export``
  and quantised dynamically to int8 by ONNX Runtime (:data:`ONNX_INT8_RECIPE`: the
  weights of its matrix products per output channel, the embedding tables left in fp32),
  runs in ONNX Runtime; the heads stay in PyTorch. The exported file is a cache,
  ``MODEL_DIR/onnx/encoder-int8.onnx`` (or a per-user cache directory when the model
  directory is read-only), made once, kept while the model's weights file and the recipe
  are unchanged (the weights' size and mtime and the recipe are recorded beside it).
  Needs the ``onnx`` extra: ``pip install 'xlre[onnx]'``.
* ``int8``: PyTorch's own dynamic quantisation: every ``nn.Linear`` of the encoder and
  the heads keeps int8 weights and quantises its input per batch. No other runtime,
  nothing written.

BENCHMARKS.md ("CPU inference routes") has the speed and RELX F1 of each against fp32.
Both run on CPU only: on a GPU, run fp32 or bf16 instead.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import tempfile
import warnings
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from alignment.errors import SettingError

logger = logging.getLogger(__name__)

#: The optimised CPU routes ``--optimize`` takes.
OPTIMIZE_ROUTES: tuple[str, ...] = ("onnx-int8", "int8")

#: How ``onnx-int8`` quantises (ONNX Runtime's ``quantize_dynamic`` arguments). Per-channel
#: weight scales keep the trained RELX model's hidden states at a mean cosine of 0.990 to
#: fp32's on news sentences, against 0.972 per tensor (BENCHMARKS.md, "Per-channel
#: weight scales"); only ``MatMul`` is quantised, as ``Gather`` (the embedding
#: lookup) costs nothing to run in fp32. A cached export made with another recipe is
#: made again.
ONNX_INT8_RECIPE: dict[str, Any] = {"op_types_to_quantize": ["MatMul"], "per_channel": True}


def optimize_for_cpu(model: Any, route: str, model_dir: str | Path | None = None) -> Any:
    """``model`` made faster for CPU inference by ``route`` (one of :data:`OPTIMIZE_ROUTES`).

    The model must be in eval mode on the CPU; the returned model replaces it (its
    encoder or its ``nn.Linear`` layers are swapped in place). ``model_dir``: where the
    model was loaded from (``onnx-int8`` caches its export there).
    """
    if route not in OPTIMIZE_ROUTES:
        raise SettingError(f"unknown optimisation {route!r}; choose {' or '.join(OPTIMIZE_ROUTES)}")
    device = next(model.parameters()).device
    if device.type != "cpu":
        raise SettingError(f"--optimize {route} runs on CPU, and the model is on {device}; "
                           "drop --optimize on a GPU")
    if route == "onnx-int8":
        model.encoder = OnnxEncoder(onnx_int8_encoder(model, model_dir), torch.get_num_threads())
        return model
    from torch.ao.quantization import quantize_dynamic

    # Only the encoder: it is where the time goes, and the heads stay fp32 because
    # ``bag_scores`` reads the relation matrix's weight directly, which a quantised
    # linear layer does not expose as a tensor.
    n_linear = sum(isinstance(m, torch.nn.Linear) for m in model.encoder.modules())
    with warnings.catch_warnings():
        # PyTorch 2.13 marks its quantised tensor types deprecated (to move to torchao);
        # the kernels are the same ones, and the figures in BENCHMARKS.md are theirs.
        warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*deprecated", category=UserWarning)
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization.*deprecated")
        model.encoder = quantize_dynamic(model.encoder.eval(), {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    logger.info("int8 dynamic quantisation: %d linear layers of the encoder", n_linear)
    return model


class OnnxEncoder(torch.nn.Module):
    """An encoder run by ONNX Runtime, called like a transformers encoder (``input_ids``,
    ``attention_mask`` -> an object with ``last_hidden_state``)."""

    def __init__(self, path: Path, threads: int) -> None:
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.path = path
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> Any:
        hidden = self.session.run(None, {"input_ids": input_ids.cpu().numpy(),
                                         "attention_mask": attention_mask.cpu().numpy()})[0]
        return SimpleNamespace(last_hidden_state=torch.from_numpy(hidden))


class _Hidden(torch.nn.Module):
    """The encoder's last hidden state alone: what the ONNX graph computes."""

    def __init__(self, encoder: Any) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def _cache_dir(model_dir: Path | None) -> Path:
    """``MODEL_DIR/onnx`` when it can be written, else a per-user cache keyed by the
    model directory's absolute path."""
    if model_dir is not None:
        here = Path(model_dir) / "onnx"
        try:
            here.mkdir(exist_ok=True)
        except OSError:
            pass  # read-only model directory: the per-user cache below
        else:
            if os.access(here, os.W_OK):
                return here
    import hashlib

    key = hashlib.sha256(str(Path(model_dir or ".").resolve()).encode()).hexdigest()[:16]
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "xlre" / "onnx" / key
    base.mkdir(parents=True, exist_ok=True)
    return base


def _weights_stamp(model_dir: Path | None) -> dict[str, Any] | None:
    if model_dir is None:
        return None
    files = sorted(Path(model_dir).glob("model*.safetensors"))
    return {f.name: [f.stat().st_size, f.stat().st_mtime_ns] for f in files} or None


def onnx_int8_encoder(model: Any, model_dir: str | Path | None) -> Path:
    """The int8 ONNX file of ``model``'s encoder: from the cache when it was made from
    these weights, else exported, quantised and written there (atomically)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime.quantization  # noqa: F401
    except ImportError as exc:
        raise SettingError(f"--optimize onnx-int8 needs ONNX Runtime ({exc.name} is not "
                           "installed): pip install 'xlre[onnx]', or use --optimize int8") from None
    model_dir = Path(model_dir) if model_dir is not None else None
    cache = _cache_dir(model_dir)
    target, stamp_file = cache / "encoder-int8.onnx", cache / "encoder-int8.json"
    stamp = _weights_stamp(model_dir)
    if (stamp is not None and target.exists() and stamp_file.exists()
            and json.loads(stamp_file.read_text(encoding="utf-8")) == _stamp_record(stamp)):
        logger.info("onnx-int8: cached encoder %s", target)
        return target
    logger.info("onnx-int8: exporting and quantising the encoder into %s", target)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        plain, quantized = Path(tmp) / "encoder.onnx", Path(tmp) / "encoder-int8.onnx"
        example = (torch.ones((2, 8), dtype=torch.long), torch.ones((2, 8), dtype=torch.long))
        with warnings.catch_warnings():
            # The TorchScript exporter warns that it is legacy; it is the one that takes
            # transformers encoders without extra packages, and its graph is measured.
            warnings.simplefilter("ignore")
            torch.onnx.export(_Hidden(model.encoder).eval(), example, str(plain),
                              input_names=["input_ids", "attention_mask"],
                              output_names=["hidden"],
                              dynamic_axes={k: {0: "batch", 1: "length"}
                                            for k in ("input_ids", "attention_mask", "hidden")},
                              opset_version=17, dynamo=False)
        quantize_onnx_int8(plain, quantized)
        os.replace(quantized, target)
    if stamp is not None:
        tmp_stamp = stamp_file.with_suffix(".json.tmp")
        tmp_stamp.write_text(json.dumps(_stamp_record(stamp)), encoding="utf-8")
        os.replace(tmp_stamp, stamp_file)
    return target


def _stamp_record(stamp: dict[str, Any]) -> dict[str, Any]:
    """What the cache records beside its file: the weights it was made from, and how."""
    return {"weights": stamp, "route": "onnx-int8", "recipe": ONNX_INT8_RECIPE}


def quantize_onnx_int8(plain: str | Path, out: str | Path,
                       recipe: dict[str, Any] | None = None) -> None:
    """Quantise the fp32 ONNX file ``plain`` into ``out`` by ``recipe`` (``quantize_dynamic``
    arguments; default :data:`ONNX_INT8_RECIPE`, ``{}`` for ONNX Runtime's defaults)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    def not_preprocessing_advice(record: logging.LogRecord) -> bool:
        # quantize_dynamic advises, on the root logger, to pre-process the graph first;
        # that pre-processing made this encoder slower (BENCHMARKS.md), so it is skipped.
        return not record.getMessage().startswith("Please consider to run pre-processing")

    root = logging.getLogger()
    root.addFilter(not_preprocessing_advice)
    try:
        quantize_dynamic(str(plain), str(out), weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
                         **copy.deepcopy(ONNX_INT8_RECIPE if recipe is None else recipe))
    finally:
        root.removeFilter(not_preprocessing_advice)
