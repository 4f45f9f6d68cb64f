"""Faster CPU inference for a trained model: ``xlre extract --optimize ROUTE``.

* ``onnx-int8`` (the faster, measured): the encoder, exported with ``torch.onnx.export``
  and quantised dynamically to int8 by ONNX Runtime (:func:`onnx_int8_recipe`: the
  weights of its matrix products per output channel, in 7 bits on a CPU without VNNI,
  the embedding tables left in fp32), runs in ONNX Runtime; the heads stay in PyTorch.
  The exported file is a cache, ``MODEL_DIR/onnx/encoder-int8.onnx`` (``-7bit`` in the
  name for 7-bit weights; a per-user cache directory when the model directory is
  read-only), made once, kept while the model's weights file and the recipe are unchanged
  (the weights' size and mtime and the recipe are recorded beside it).
  Needs the ``onnx`` extra: ``pip install 'xlre[onnx]'``.
* ``int8``: PyTorch's own dynamic quantisation: every ``nn.Linear`` of the encoder keeps
  int8 weights and quantises its input per batch. No other runtime, nothing written.

Both routes first take the encoder's **outlier channels** out of int8
(:func:`split_outlier_channels`). Dynamic quantisation gives a matrix product's input one
scale for the whole batch, and a few input channels of some linear layers carry values
10 to 60 times larger than the others, at the sentence's first and last tokens (the
"massive activations" of pretrained transformers). That one scale then leaves the
ordinary values a handful of int8 steps. Those channels are found by running the fp32
encoder once on random token ids (no text needed, so no language is favoured), and their
part of each product is computed in fp32 beside the int8 product of the rest, as
LLM.int8() does for its outlier features.

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

#: The x86 CPU flags of an int8 dot-product instruction (AVX-512 VNNI, AVX-VNNI, AMX).
#: Without one, ONNX Runtime's u8 x s8 products add pairs of products in 16 bits, which
#: saturate at full-range weights.
VNNI_FLAGS = frozenset({"avx512_vnni", "avx_vnni", "amx_int8"})

#: An input channel of a linear layer is an outlier when its largest absolute value over
#: the probe exceeds this many times the median channel's largest value. Chosen on
#: pretrained multilingual-e5-small by how close the int8 encoder's hidden states stay to
#: fp32's on news sentences (BENCHMARKS.md, "Outlier channels in fp32").
OUTLIER_RATIO = 12.0
#: At most this many outlier channels a layer (the largest first).
MAX_OUTLIERS_PER_LAYER = 8
#: The probe: this many sequences of this many random token ids, from a fixed seed, so
#: that the same model always gets the same split.
PROBE_SEQUENCES, PROBE_LENGTH, PROBE_SEED = 32, 32, 0
#: The buffer of :class:`OutlierSplitLinear` that holds the outlier channels' weights; its
#: name marks the matrix products that ONNX quantisation leaves in fp32.
OUTLIER_WEIGHT = "outlier_weight"


def optimize_for_cpu(model: Any, route: str, model_dir: str | Path | None = None,
                     tokenizer: Any | None = None) -> Any:
    """``model`` made faster for CPU inference by ``route`` (one of :data:`OPTIMIZE_ROUTES`).

    The model must be in eval mode on the CPU; the returned model replaces it (its
    encoder or its ``nn.Linear`` layers are swapped in place). ``model_dir``: where the
    model was loaded from (``onnx-int8`` caches its export there). ``tokenizer``: the
    model's, for the ids of its sentence start and end tokens in the outlier probe
    (without it, those of the encoder's config, if any).
    """
    if route not in OPTIMIZE_ROUTES:
        raise SettingError(f"unknown optimisation {route!r}; choose {' or '.join(OPTIMIZE_ROUTES)}")
    device = next(model.parameters()).device
    if device.type != "cpu":
        raise SettingError(f"--optimize {route} runs on CPU, and the model is on {device}; "
                           "drop --optimize on a GPU")
    bounds = sentence_bounds(model.encoder, tokenizer)
    if route == "onnx-int8":
        model.encoder = OnnxEncoder(onnx_int8_encoder(model, model_dir, bounds),
                                    torch.get_num_threads())
        return model
    from torch.ao.quantization import quantize_dynamic

    split_outlier_channels(model.encoder, bounds)

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


def onnx_int8_encoder(model: Any, model_dir: str | Path | None,
                      bounds: tuple[int | None, int | None] = (None, None)) -> Path:
    """The int8 ONNX file of ``model``'s encoder: from the cache when it was made from
    these weights, else exported (its outlier channels split off, ``bounds`` as for
    :func:`split_outlier_channels`), quantised and written there (atomically).
    ``model.encoder`` itself is left as it was."""
    try:
        import onnx  # noqa: F401
        import onnxruntime.quantization  # noqa: F401
    except ImportError as exc:
        raise SettingError(f"--optimize onnx-int8 needs ONNX Runtime ({exc.name} is not "
                           "installed): pip install 'xlre[onnx]', or use --optimize int8") from None
    model_dir = Path(model_dir) if model_dir is not None else None
    cache = _cache_dir(model_dir)
    recipe = onnx_int8_recipe()
    # One file per weight range, so that machines with and without VNNI that share a
    # model directory each keep theirs.
    name = "encoder-int8-7bit" if recipe.get("reduce_range") else "encoder-int8"
    target, stamp_file = cache / f"{name}.onnx", cache / f"{name}.json"
    stamp = _weights_stamp(model_dir)
    if (stamp is not None and target.exists() and stamp_file.exists()
            and json.loads(stamp_file.read_text(encoding="utf-8")) == _stamp_record(stamp, recipe)):
        logger.info("onnx-int8: cached encoder %s", target)
        return target
    logger.info("onnx-int8: exporting and quantising the encoder into %s%s", target,
                " (7-bit weights: this CPU has no VNNI)" if recipe.get("reduce_range") else "")
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        plain, quantized = Path(tmp) / "encoder.onnx", Path(tmp) / "encoder-int8.onnx"
        encoder = copy.deepcopy(model.encoder).eval()
        split = split_outlier_channels(encoder, bounds)
        export_onnx(encoder, plain)
        kept = quantize_onnx_int8(plain, quantized, recipe)
        if kept != len(split):
            raise RuntimeError(f"onnx-int8: {len(split)} linear layers have outlier channels, "
                               f"but the exported graph shows {kept} of their fp32 products")
        os.replace(quantized, target)
    if stamp is not None:
        tmp_stamp = stamp_file.with_suffix(".json.tmp")
        tmp_stamp.write_text(json.dumps(_stamp_record(stamp, recipe)), encoding="utf-8")
        os.replace(tmp_stamp, stamp_file)
    return target


def export_onnx(encoder: Any, path: str | Path, attention: str | None = "eager") -> None:
    """Write ``encoder`` (a transformers encoder; put in eval mode) as an fp32 ONNX graph from
    ``input_ids`` and ``attention_mask`` (batch and length dynamic) to its last hidden
    state, ``hidden``.

    The graph is traced with eager attention (the encoder's own setting is restored
    after): traced from SDPA, the attention mask becomes ``Where``/``IsNaN`` nodes that
    cost ONNX Runtime about 5% of the int8 encoder's time, and the eager graph ran 5 to
    9% faster in interleaved runs at the same cosine to fp32 (BENCHMARKS.md, "int8 on CPUs
    without VNNI").
    ``attention=None`` traces the encoder's own setting (the benchmark's comparison)."""
    example = (torch.ones((2, 8), dtype=torch.long), torch.ones((2, 8), dtype=torch.long))
    config = getattr(encoder, "config", None)
    before = getattr(config, "_attn_implementation", None)
    switch = (attention is not None and before not in (None, attention)
              and hasattr(encoder, "set_attn_implementation"))
    if switch:
        encoder.set_attn_implementation(attention)
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter warns that it is legacy; it is the one that takes
            # transformers encoders without extra packages, and its graph is measured.
            warnings.simplefilter("ignore")
            torch.onnx.export(_Hidden(encoder).eval(), example, str(path),
                              input_names=["input_ids", "attention_mask"], output_names=["hidden"],
                              dynamic_axes={k: {0: "batch", 1: "length"}
                                            for k in ("input_ids", "attention_mask", "hidden")},
                              opset_version=17, dynamo=False)
    finally:
        if switch:
            encoder.set_attn_implementation(before)


def int8_products_saturate(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether ONNX Runtime's int8 matrix products saturate on this CPU at full-range int8
    weights: on x86 without a VNNI instruction (:data:`VNNI_FLAGS`), its u8 x s8 kernel
    sums pairs of products in 16 bits (``vpmaddubsw``), and 2 x 255 x 127 overflows them.
    On an AVX2-only EPYC this took the int8 encoder's lowest cosine to fp32's from 0.99 to
    0.83 (BENCHMARKS.md, "int8 on CPUs without VNNI"). An x86 CPU whose flags cannot be
    read (no ``cpuinfo`` file: macOS, Windows) counts as saturating, the safe side; other
    architectures (ARM's dot products) do not saturate."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64", "i386", "i686", "x86"):
        return False
    flags = cpu_flags(cpuinfo)
    return flags is None or not VNNI_FLAGS.intersection(flags)


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str] | None:
    """The first CPU's flags in ``cpuinfo`` (Linux's format), or ``None`` where the file
    cannot be read or lists none."""
    try:
        text = Path(cpuinfo).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return None


def onnx_int8_recipe() -> dict[str, Any]:
    """:data:`ONNX_INT8_RECIPE` for this CPU: with 7-bit weights (``reduce_range``) where
    :func:`int8_products_saturate`, so that no sum of two products overflows 16 bits."""
    recipe = copy.deepcopy(ONNX_INT8_RECIPE)
    if int8_products_saturate():
        recipe["reduce_range"] = True
    return recipe


def _stamp_record(stamp: dict[str, Any], recipe: dict[str, Any]) -> dict[str, Any]:
    """What the cache records beside its file: the weights it was made from, and how."""
    return {"weights": stamp, "route": "onnx-int8", "recipe": recipe, "attention": "eager",
            "outliers": {"ratio": OUTLIER_RATIO, "max_per_layer": MAX_OUTLIERS_PER_LAYER,
                         "probe": [PROBE_SEQUENCES, PROBE_LENGTH, PROBE_SEED],
                         "product": "fp32 MatMul"}}


def quantize_onnx_int8(plain: str | Path, out: str | Path,
                       recipe: dict[str, Any] | None = None) -> int:
    """Quantise the fp32 ONNX file ``plain`` into ``out`` by ``recipe`` (``quantize_dynamic``
    arguments; default :func:`onnx_int8_recipe`, ``{}`` for ONNX Runtime's defaults).
    The matrix products of :class:`OutlierSplitLinear`'s outlier channels stay fp32;
    returns how many there are."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(plain), load_external_data=False).graph
    outlier_weights = {t.name for t in graph.initializer if t.name.endswith("." + OUTLIER_WEIGHT)}
    keep_fp32 = [node.name for node in graph.node
                 if node.op_type == "MatMul" and outlier_weights.intersection(node.input)]
    options = copy.deepcopy(onnx_int8_recipe() if recipe is None else recipe)
    options["nodes_to_exclude"] = list(options.get("nodes_to_exclude", [])) + keep_fp32

    def not_preprocessing_advice(record: logging.LogRecord) -> bool:
        # quantize_dynamic advises, on the root logger, to pre-process the graph first;
        # that pre-processing made this encoder slower (BENCHMARKS.md), so it is skipped.
        return not record.getMessage().startswith("Please consider to run pre-processing")

    root = logging.getLogger()
    root.addFilter(not_preprocessing_advice)
    try:
        quantize_dynamic(str(plain), str(out), weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
                         **options)
    finally:
        root.removeFilter(not_preprocessing_advice)
    return len(keep_fp32)


class OutlierSplitLinear(torch.nn.Module):
    """``linear`` with some input channels taken out of its matrix product: ``inner`` (a
    copy of ``linear`` whose weight columns for those channels are zero) sees the input
    with those channels zeroed, so a quantised ``inner`` scales its input by the ordinary
    channels alone, and the outlier channels' part is added by a small fp32 matrix
    product with ``outlier_weight``, which :func:`quantize_onnx_int8` leaves unquantised
    by that buffer's name. (On multilingual-e5-small that product costs 8% of the int8
    encoder's time, against 18% for the elementwise product and sum first tried.) In
    fp32 the result equals ``linear``'s up to rounding."""

    def __init__(self, linear: torch.nn.Linear, channels: list[int]) -> None:
        super().__init__()
        index = torch.tensor(channels, dtype=torch.long)
        keep = torch.ones(linear.in_features, dtype=linear.weight.dtype)
        keep[index] = 0
        self.register_buffer("keep", keep)
        self.register_buffer("index", index)
        self.register_buffer(OUTLIER_WEIGHT, linear.weight.detach()[:, index].T.clone())
        self.inner = copy.deepcopy(linear)
        with torch.no_grad():
            self.inner.weight[:, index] = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outliers = x.index_select(-1, self.index)
        return self.inner(x * self.keep) + torch.matmul(outliers, getattr(self, OUTLIER_WEIGHT))


def sentence_bounds(encoder: Any, tokenizer: Any | None) -> tuple[int | None, int | None]:
    """The ids of the sentence start and end tokens: the tokenizer's, else the config's."""
    config = getattr(encoder, "config", None)
    first = last = None
    if tokenizer is not None:
        first = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
        last = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    if first is None:
        first = getattr(config, "bos_token_id", None)
    if last is None:
        last = getattr(config, "eos_token_id", None)
    return first, last


def outlier_channels(encoder: Any, bounds: tuple[int | None, int | None] = (None, None),
                     ratio: float | None = None,
                     max_per_layer: int | None = None) -> dict[str, list[int]]:
    """The outlier input channels of each ``nn.Linear`` of ``encoder`` (its module name ->
    channel indices, largest first; layers without any left out), found by one fp32 pass
    over :data:`PROBE_SEQUENCES` random token-id sequences framed by ``bounds`` (the
    start and end token ids; ``None`` leaves that end random). ``ratio`` and
    ``max_per_layer`` default to :data:`OUTLIER_RATIO` and :data:`MAX_OUTLIERS_PER_LAYER`
    (``ratio=inf`` finds none)."""
    ratio = OUTLIER_RATIO if ratio is None else ratio
    max_per_layer = MAX_OUTLIERS_PER_LAYER if max_per_layer is None else max_per_layer
    vocab = encoder.get_input_embeddings().num_embeddings
    generator = torch.Generator().manual_seed(PROBE_SEED)
    # No longer than the encoder takes (XLM-R's positions start after the padding id).
    positions = getattr(getattr(encoder, "config", None), "max_position_embeddings", None)
    length = PROBE_LENGTH if positions is None else max(2, min(PROBE_LENGTH, positions - 2))
    ids = torch.randint(0, vocab, (PROBE_SEQUENCES, length), generator=generator)
    if bounds[0] is not None:
        ids[:, 0] = bounds[0]
    if bounds[1] is not None:
        ids[:, -1] = bounds[1]
    peaks: dict[str, torch.Tensor] = {}

    def record(name: str):
        def hook(_module: Any, inputs: tuple[torch.Tensor, ...]) -> None:
            peaks[name] = inputs[0].detach().abs().flatten(0, -2).amax(0)
        return hook

    handles = [module.register_forward_pre_hook(record(name))
               for name, module in encoder.named_modules() if isinstance(module, torch.nn.Linear)]
    try:
        with torch.inference_mode():
            encoder(input_ids=ids, attention_mask=torch.ones_like(ids))
    finally:
        for handle in handles:
            handle.remove()
    found: dict[str, list[int]] = {}
    for name, peak in peaks.items():
        index = (peak > ratio * peak.median()).nonzero().flatten()
        if len(index):
            found[name] = index[peak[index].argsort(descending=True)][:max_per_layer].tolist()
    return found


def split_outlier_channels(encoder: Any, bounds: tuple[int | None, int | None] = (None, None),
                           ratio: float | None = None) -> dict[str, list[int]]:
    """Replace, in place, each ``nn.Linear`` of ``encoder`` that has outlier input channels
    (:func:`outlier_channels`) by an :class:`OutlierSplitLinear`; returns the channels."""
    found = outlier_channels(encoder, bounds, ratio)
    for name, channels in found.items():
        parent, _, attr = name.rpartition(".")
        owner = encoder.get_submodule(parent) if parent else encoder
        setattr(owner, attr, OutlierSplitLinear(getattr(owner, attr), channels))
    logger.info("%d outlier channels of %d linear layers kept in fp32",
                sum(map(len, found.values())), len(found))
    return found
