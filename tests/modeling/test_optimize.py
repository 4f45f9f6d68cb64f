"""The outlier-channel split that both ``--optimize`` routes make before int8."""

from __future__ import annotations

import pytest
import torch

from xlre.modeling import optimize
from xlre.modeling.optimize import (
    OutlierSplitLinear,
    optimize_for_cpu,
    outlier_channels,
    split_outlier_channels,
)

CHANNEL = 13  # the planted outlier: one FFN channel of the first layer


class Wrapped(torch.nn.Module):
    """What ``optimize_for_cpu`` takes: a module with an ``encoder``."""

    def __init__(self, encoder: torch.nn.Module) -> None:
        super().__init__()
        self.encoder = encoder


def micro_encoder(plant: bool = True) -> torch.nn.Module:
    """A random two-layer XLM-R whose first FFN's activation ``CHANNEL`` is about 40 on
    every token (its bias), with the others below 1: a planted massive activation."""
    from transformers import XLMRobertaConfig, XLMRobertaModel

    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=500, hidden_size=32, num_hidden_layers=2,
                              num_attention_heads=2, intermediate_size=64,
                              max_position_embeddings=130, bos_token_id=0, pad_token_id=1,
                              eos_token_id=2)
    encoder = XLMRobertaModel(config, add_pooling_layer=False).eval()
    if plant:
        with torch.no_grad():
            encoder.encoder.layer[0].intermediate.dense.bias[CHANNEL] = 40.0
            # Its weight column small, so the planted channel does not swamp the output.
            encoder.encoder.layer[0].output.dense.weight[:, CHANNEL] *= 0.01
    return encoder


def hidden(encoder, ids):
    with torch.inference_mode():
        return encoder(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state


def test_split_linear_equals_the_linear_and_keeps_the_outliers_out_of_its_product():
    torch.manual_seed(0)
    linear = torch.nn.Linear(16, 8)
    split = OutlierSplitLinear(linear, [2, 5])
    x = torch.randn(3, 4, 16)
    x[..., 2] = 100.0
    seen = {}
    split.inner.register_forward_pre_hook(lambda _m, inputs: seen.setdefault("x", inputs[0]))
    assert torch.allclose(split(x), linear(x), atol=1e-4)
    assert seen["x"][..., [2, 5]].abs().max() == 0, "the outlier channels never reach the product"
    assert seen["x"][..., 0].abs().max() > 0
    assert linear.weight[:, 2].abs().max() > 0, "the original layer is left as it was"


def test_the_probe_finds_the_planted_channel_and_nothing_at_an_infinite_ratio():
    encoder = micro_encoder()
    found = outlier_channels(encoder, (0, 2))
    assert found["encoder.layer.0.output.dense"][0] == CHANNEL
    assert outlier_channels(encoder, (0, 2), ratio=float("inf")) == {}
    assert outlier_channels(encoder, (0, 2)) == found, "the probe is seeded: the same split each time"
    assert CHANNEL not in outlier_channels(micro_encoder(plant=False), (0, 2)).get(
        "encoder.layer.0.output.dense", [])


def test_splitting_leaves_the_fp32_encoder_unchanged():
    encoder = micro_encoder()
    ids = torch.randint(3, 500, (4, 12))
    before = hidden(encoder, ids)
    found = split_outlier_channels(encoder, (0, 2))
    assert isinstance(encoder.encoder.layer[0].output.dense, OutlierSplitLinear)
    assert found
    assert torch.allclose(hidden(encoder, ids), before, atol=1e-5)


def relative_error(route: str, monkeypatch, tmp_path, split: bool) -> float:
    ids = torch.randint(3, 500, (8, 20))
    ids[:, 0], ids[:, -1] = 0, 2
    reference = hidden(micro_encoder(), ids)
    if not split:
        monkeypatch.setattr(optimize, "OUTLIER_RATIO", float("inf"))
    model = optimize_for_cpu(Wrapped(micro_encoder()), route, tmp_path / ("split" if split else "plain"))
    monkeypatch.undo()
    out = hidden(model.encoder, ids)
    return float((out - reference).norm() / reference.norm())


@pytest.mark.parametrize("route", ["int8", "onnx-int8"])
def test_the_split_brings_int8_closer_to_fp32_with_a_massive_activation(route, monkeypatch, tmp_path):
    if route == "onnx-int8":
        pytest.importorskip("onnxruntime")
    (tmp_path / "split").mkdir()
    (tmp_path / "plain").mkdir()
    with_split = relative_error(route, monkeypatch, tmp_path, split=True)
    without = relative_error(route, monkeypatch, tmp_path, split=False)
    assert with_split < without / 2, (with_split, without)


def test_the_onnx_export_keeps_the_outlier_products_in_fp32(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnx

    found = outlier_channels(micro_encoder(), (0, 2))
    model = optimize_for_cpu(Wrapped(micro_encoder()), "onnx-int8", tmp_path)
    graph = onnx.load(str(model.encoder.path)).graph
    weights = {t.name for t in graph.initializer if t.name.endswith(".outlier_weight")}
    fp32 = [n for n in graph.node if n.op_type == "MatMul" and weights.intersection(n.input)]
    assert len(fp32) == len(found) >= 1
    assert any(n.op_type == "MatMulInteger" for n in graph.node), "the rest is int8"


@pytest.mark.parametrize(("machine", "flags", "saturate"), [
    ("x86_64", "fpu sse2 avx2 avx512f avx512_vnni", False),
    ("x86_64", "fpu sse2 avx2 avx_vnni", False),
    ("x86_64", "fpu sse2 avx2 avx512f avx512bw", True),  # AVX-512 without VNNI saturates too
    ("AMD64", None, True),  # flags unknown (no cpuinfo): the safe side
    ("aarch64", "fp asimd asimddp", False),
])
def test_int8_saturation_is_judged_by_the_cpus_vnni_flag(machine, flags, saturate, monkeypatch, tmp_path):
    import platform

    monkeypatch.setattr(platform, "machine", lambda: machine)
    cpuinfo = tmp_path / "cpuinfo"
    if flags is not None:
        cpuinfo.write_text(f"processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\n"
                           f"processor\t: 1\nflags\t\t: {flags}\n")
    assert optimize.int8_products_saturate(cpuinfo) is saturate
    monkeypatch.setattr(optimize, "int8_products_saturate", lambda: saturate)
    assert optimize.onnx_int8_recipe().get("reduce_range", False) is saturate
    assert "reduce_range" not in optimize.ONNX_INT8_RECIPE, "the constant itself is left alone"


def int8_weights(path) -> list:
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    products = {i for n in graph.node if n.op_type == "MatMulInteger" for i in n.input}
    return [numpy_helper.to_array(t) for t in graph.initializer if t.name in products
            and t.data_type == onnx.TensorProto.INT8]


def test_a_cpu_without_vnni_gets_its_own_7_bit_export(tmp_path, monkeypatch):
    """On a CPU whose int8 products saturate, the weights span [-64, 64] (so no pair of
    u8 x s8 products overflows 16 bits), in a file of their own beside the full-range
    one, which is left as it was."""
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(optimize, "int8_products_saturate", lambda: False)
    full = optimize_for_cpu(Wrapped(micro_encoder()), "onnx-int8", tmp_path).encoder.path
    monkeypatch.setattr(optimize, "int8_products_saturate", lambda: True)
    reduced = optimize_for_cpu(Wrapped(micro_encoder()), "onnx-int8", tmp_path).encoder.path
    assert (full.name, reduced.name) == ("encoder-int8.onnx", "encoder-int8-7bit.onnx")
    assert full.exists()
    full_w, reduced_w = int8_weights(full), int8_weights(reduced)
    assert full_w and len(full_w) == len(reduced_w)
    assert max(abs(int(w.min())) for w in full_w) > 64, "full range: per-channel scales reach -127"
    assert all(w.min() >= -64 and w.max() <= 64 for w in reduced_w)


def test_the_onnx_export_traces_eager_attention_and_restores_the_encoders(tmp_path):
    pytest.importorskip("onnxruntime")
    import onnx

    encoder = micro_encoder()
    encoder.set_attn_implementation("sdpa")
    optimize.export_onnx(encoder, tmp_path / "encoder.onnx")
    ops = {n.op_type for n in onnx.load(str(tmp_path / "encoder.onnx")).graph.node}
    assert "IsNaN" not in ops, "SDPA's traced mask (Where/IsNaN) is not in the graph"
    assert "Softmax" in ops
    assert encoder.config._attn_implementation == "sdpa"
