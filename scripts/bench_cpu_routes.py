"""CPU inference routes for a trained model: fp32 PyTorch against ``--optimize int8`` and
ONNX Runtime (fp32 and dynamic int8); prints one JSON object.

* ``encoder``: sentences/s of the encoder's forward pass alone (>95% of extraction's
  compute) on real news sentences (English and Chinese halves of
  ``parallel/news-en-zh.tsv.gz``, batched by length, 32 a batch, at most 128 tokens),
  for every route, with the largest difference of the hidden states from fp32's and
  their mean and lowest cosine to fp32's over the real tokens. ONNX routes export the
  encoder with ``torch.onnx.export``: ``onnx_fp32`` fused by ONNX Runtime's transformer
  optimiser, ``onnx_int8`` as ``--optimize onnx-int8`` makes it (outlier channels split
  off, traced with eager attention, then ``xlre.modeling.optimize.onnx_int8_recipe()``),
  ``onnx_int8_sdpa`` the same traced with the encoder's SDPA attention (the route before
  2026-12-07, eighth stop), ``onnx_int8_full_range`` (on a CPU without VNNI only) with
  full-range int8 weights, as the route made them there before, ``onnx_int8_no_split`` without
  the split (the route before 2026-12-07, later), ``onnx_int8_per_tensor`` with ONNX
  Runtime's defaults and no split (the route before 2026-12-07) (``onnxruntime`` and
  ``onnx`` must be installed for them: ``pip install 'xlre[onnx]'``). ``int8`` is
  ``--optimize int8``, ``int8_no_split`` the same without the split.
* ``extract``: sentences/s of ``Extractor.extract`` (fp32, ``--optimize int8`` and
  ``--optimize onnx-int8``) on the first ``--extract-sentences`` of them, one timed run
  after a warm-up. A RELX-bench model has no trained entity head, so the speed model is
  the trained model with its entity head switched on at random weights, biased so that
  about 10% of tokens start or continue an entity: triples are meaningless there, the
  forward passes and the pairs are realistic.
* ``relx``: RELX EN and FR F1 of the trained model (``xlre evaluate --marked``), and its
  KBP37 dev F1 (the split a recipe is chosen on), fp32 against both routes, with the
  threshold the model was saved with; on a CPU without VNNI, also ``onnx-int8`` with
  full-range weights.
* ``cpu``: the CPU's name, its VNNI flags, and whether int8 products saturate on it.

Encoder figures are the best of two runs after a warm-up; ``wall`` seconds and process CPU seconds
are both given, so that a run on a shared machine can be read.

Usage: python scripts/bench_cpu_routes.py --model OUT/seed-13 [--data ../shared/data]
       [--sentences 800] [--extract-sentences 200] [--threads 2] [--skip-onnx]
       [--skip-relx]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gzip
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def news_sentences(data: Path, n: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    with gzip.open(data / "parallel" / "news-en-zh.tsv.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            en, zh = line.rstrip("\n").split("\t")[:2]
            out += [(en, "en"), (zh, "zh")]
            if len(out) >= n:
                break
    return out


def timed(fn, warm=None, repeats: int = 2) -> dict:
    """Best of ``repeats`` runs of ``fn`` after one warm-up (``warm``, default ``fn``):
    wall and CPU seconds, and its result."""
    (warm or fn)()
    best = None
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        result = fn()
        w, c = time.perf_counter() - w, time.process_time() - c
        if best is None or w < best[0]:
            best = (w, c, result)
    return {"wall_s": best[0], "cpu_s": best[1], "result": best[2]}


def encoder_routes(model, tok, sents, threads: int, skip_onnx: bool, tmp: Path) -> dict:
    import torch

    from xlre.modeling.optimize import optimize_for_cpu

    ids = [tok(s, truncation=True, max_length=128)["input_ids"] for s, _ in sents]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    batches = []
    for k in range(0, len(order), 32):
        part = [ids[i] for i in order[k:k + 32]]
        width = max(map(len, part))
        x = torch.full((len(part), width), tok.pad_token_id)
        m = torch.zeros((len(part), width), dtype=torch.long)
        for j, s in enumerate(part):
            x[j, :len(s)] = torch.tensor(s)
            m[j, :len(s)] = 1
        batches.append((x, m))

    def run_torch(encoder):
        with torch.inference_mode():
            return [encoder(input_ids=x, attention_mask=m).last_hidden_state for x, m in batches]

    routes = {"fp32": lambda: run_torch(model.encoder)}
    int8 = optimize_for_cpu(copy.deepcopy(model).eval(), "int8", tokenizer=tok).encoder
    routes["int8"] = lambda: run_torch(int8)
    with no_split():
        int8_plain = optimize_for_cpu(copy.deepcopy(model).eval(), "int8", tokenizer=tok).encoder
    routes["int8_no_split"] = lambda: run_torch(int8_plain)
    if not skip_onnx:
        routes.update(onnx_routes(model.encoder, tok, batches, threads, tmp))
    out: dict = {"sentences": len(ids), "tokens": sum(map(len, ids)), "routes": {}}
    ref = None
    for name, fn in routes.items():
        r = timed(fn)
        if ref is None:
            ref = r["result"]
        diff = max(float(((a - b) * m[..., None]).abs().max())
                   for a, b, (_, m) in zip(ref, r["result"], batches, strict=True))
        cos = torch.cat([torch.nn.functional.cosine_similarity(a[m.bool()], b[m.bool()], dim=-1)
                         for a, b, (_, m) in zip(ref, r["result"], batches, strict=True)])
        out["routes"][name] = {"wall_s": round(r["wall_s"], 2), "cpu_s": round(r["cpu_s"], 2),
                               "sentences_per_s": round(len(ids) / r["wall_s"], 1),
                               "max_abs_diff_from_fp32": round(diff, 4),
                               "mean_cosine_to_fp32": round(float(cos.mean()), 5),
                               "min_cosine_to_fp32": round(float(cos.min()), 4)}
        print(name, json.dumps(out["routes"][name]), file=sys.stderr)
    base = out["routes"]["fp32"]
    for r in out["routes"].values():
        r["speedup_wall"] = round(base["wall_s"] / r["wall_s"], 2)
        r["speedup_cpu"] = round(base["cpu_s"] / r["cpu_s"], 2)
    return out


class no_split:
    """Within it, ``--optimize`` finds no outlier channels (the routes before the split)."""

    def __enter__(self):
        from xlre.modeling import optimize

        self.saved, optimize.OUTLIER_RATIO = optimize.OUTLIER_RATIO, float("inf")

    def __exit__(self, *exc):
        from xlre.modeling import optimize

        optimize.OUTLIER_RATIO = self.saved


def onnx_routes(encoder, tok, batches, threads: int, tmp: Path) -> dict:
    import onnxruntime as ort
    import torch
    from onnxruntime.transformers import optimizer

    from xlre.modeling.optimize import (
        ONNX_INT8_RECIPE,
        export_onnx,
        int8_products_saturate,
        quantize_onnx_int8,
        sentence_bounds,
        split_outlier_channels,
    )

    plain, fused, split = tmp / "encoder.onnx", tmp / "encoder-fused.onnx", tmp / "encoder-split.onnx"
    split_sdpa = tmp / "encoder-split-sdpa.onnx"
    export_onnx(encoder.eval(), plain)
    split_encoder = copy.deepcopy(encoder).eval()
    split_outlier_channels(split_encoder, sentence_bounds(encoder, tok))
    export_onnx(split_encoder, split)
    export_onnx(split_encoder, split_sdpa, attention=None)
    cfg = encoder.config
    optimizer.optimize_model(str(plain), model_type="bert", num_heads=cfg.num_attention_heads,
                             hidden_size=cfg.hidden_size).save_model_to_file(str(fused))
    files = {"onnx_fp32": fused, "onnx_int8": tmp / "onnx_int8.onnx",
             "onnx_int8_no_split": tmp / "onnx_int8_no_split.onnx",
             "onnx_int8_per_tensor": tmp / "onnx_int8_per_tensor.onnx"}
    quantize_onnx_int8(split, files["onnx_int8"])
    files["onnx_int8_sdpa"] = tmp / "onnx_int8_sdpa.onnx"
    quantize_onnx_int8(split_sdpa, files["onnx_int8_sdpa"])
    if int8_products_saturate():  # what the route made on this CPU before its 7-bit weights
        files["onnx_int8_full_range"] = tmp / "onnx_int8_full_range.onnx"
        quantize_onnx_int8(split, files["onnx_int8_full_range"], recipe=ONNX_INT8_RECIPE)
    quantize_onnx_int8(plain, files["onnx_int8_no_split"])
    quantize_onnx_int8(plain, files["onnx_int8_per_tensor"], recipe={})
    routes = {}
    for name, path in files.items():
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])

        def run(session=session):
            return [torch.from_numpy(session.run(None, {"input_ids": x.numpy(),
                                                        "attention_mask": m.numpy()})[0])
                    for x, m in batches]
        routes[name] = run
    return routes


def speed_model(model_dir: Path, tmp: Path, sents) -> Path:
    """The trained model with its entity head on at random weights, biased so that about
    10% of tokens are tagged (speed only: its triples mean nothing)."""
    import torch

    from xlre.modeling import load_model_dir

    out = tmp / "speed-model"
    shutil.copytree(model_dir, out, ignore=shutil.ignore_patterns("checkpoints", "*.png"))
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    config["entity_head"] = True
    (out / "config.json").write_text(json.dumps(config), encoding="utf-8")
    model, tok = load_model_dir(out)
    model.eval()
    torch.manual_seed(0)
    head = model.entity_classifier
    with torch.no_grad():
        head.weight.normal_(0, 0.02)
        head.bias.zero_()
        batch = tok([s for s, _ in sents[:64]], padding=True, truncation=True, max_length=128,
                    return_tensors="pt")
        hidden = model.encoder(**batch).last_hidden_state[batch["attention_mask"].bool()]
        logits = head(hidden)
        # O's bias: the 90th percentile of (best other label - O), so ~10% tag.
        margin = (logits[:, 1:].max(-1).values - logits[:, 0]).quantile(0.9)
        head.bias[0] = float(margin)
    model.save_pretrained(out)
    return out


def extract_routes(model_dir: Path, sents) -> dict:
    from xlre.extraction import Document, Extractor

    docs = [Document(f"s{i}", s, lang) for i, (s, lang) in enumerate(sents)]
    out = {}
    for route in (None, "int8", "onnx-int8"):
        ex = Extractor.from_pretrained(model_dir, device="cpu", optimize=route, batch_size=32,
                                       detect_language=False)
        r = timed(lambda ex=ex: sum(1 for _ in ex.extract(docs)),
                  warm=lambda ex=ex: sum(1 for _ in ex.extract(docs[:64])), repeats=1)
        out[route or "fp32"] = {"wall_s": round(r["wall_s"], 2), "cpu_s": round(r["cpu_s"], 2),
                                "sentences_per_s": round(len(docs) / r["wall_s"], 1),
                                "triples": r["result"]}
        print(route or "fp32", json.dumps(out[route or "fp32"]), file=sys.stderr)
    for route in ("int8", "onnx-int8"):
        out[route]["speedup_wall"] = round(out["fp32"]["wall_s"] / out[route]["wall_s"], 2)
        out[route]["speedup_cpu"] = round(out["fp32"]["cpu_s"] / out[route]["cpu_s"], 2)
    return out


class full_range:
    """Within it, ``--optimize onnx-int8`` quantises to full-range int8 weights whatever
    the CPU (the route before 7-bit weights on CPUs without VNNI)."""

    def __enter__(self):
        from xlre.modeling import optimize

        self.saved = optimize.int8_products_saturate
        optimize.int8_products_saturate = lambda: False

    def __exit__(self, *exc):
        from xlre.modeling import optimize

        optimize.int8_products_saturate = self.saved


def relx(model_dir: Path, data: Path) -> dict:
    from xlre.data.gold import MarkedSource
    from xlre.evaluation import evaluate_model
    from xlre.modeling.optimize import int8_products_saturate

    sources = [MarkedSource(data / "relx" / "RELX_en.txt", "en", "test"),
               MarkedSource(data / "relx" / "RELX_fr.txt", "fr", "test")]
    dev = [MarkedSource(data / "kbp37" / "dev.txt", "en", "dev")]
    out = {}
    routes: list[str | None] = [None, "int8", "onnx-int8"]
    if int8_products_saturate():
        routes.append("onnx-int8-full-range")
    for route in routes:
        start = time.perf_counter()
        with full_range() if route == "onnx-int8-full-range" else contextlib.nullcontext():
            real = "onnx-int8" if route == "onnx-int8-full-range" else route
            m = evaluate_model(model_dir, None, "test", marked=sources, skip_bad=True,
                               optimize=real)["metrics"]
            d = evaluate_model(model_dir, None, "dev", marked=dev, skip_bad=True,
                               optimize=real)["metrics"]
        out[route or "fp32"] = {"relx_en_f1": round(100 * m["en"]["marked_f1"], 2),
                                "relx_fr_f1": round(100 * m["fr"]["marked_f1"], 2),
                                "kbp37_dev_f1": round(100 * d["en"]["marked_f1"], 2),
                                "seconds": round(time.perf_counter() - start, 1)}
        print(route or "fp32", json.dumps(out[route or "fp32"]), file=sys.stderr)
    out["f1_loss_points"] = {route: {lang: round(out["fp32"][f"relx_{lang}_f1"]
                                                 - out[route][f"relx_{lang}_f1"], 2)
                                     for lang in ("en", "fr")}
                             | {"kbp37_dev": round(out["fp32"]["kbp37_dev_f1"]
                                                   - out[route]["kbp37_dev_f1"], 2)}
                             for route in routes[1:]}
    return out


def cpu_summary() -> dict:
    """The CPU's model name and whether ONNX Runtime's int8 products saturate on it."""
    import platform

    from xlre.modeling.optimize import VNNI_FLAGS, cpu_flags, int8_products_saturate

    name = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                name = value.strip()
                break
    return {"model": name, "vnni_flags": sorted(VNNI_FLAGS & (cpu_flags() or frozenset())),
            "int8_products_saturate": int8_products_saturate()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True,
                        help="a model directory written by scripts/bench_relx.py")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--sentences", type=int, default=800)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-onnx", action="store_true")
    parser.add_argument("--extract-sentences", type=int, default=200,
                        help="the first N of the sentences for the extract figures (a marker "
                             "model encodes every candidate pair: slow)")
    parser.add_argument("--skip-relx", action="store_true")
    args = parser.parse_args()
    if not (args.data / "parallel" / "news-en-zh.tsv.gz").exists():
        print(json.dumps({"skipped": f"data not found under {args.data}"}))
        return
    import torch

    from xlre.modeling import load_model_dir

    torch.set_num_threads(args.threads)
    sents = news_sentences(args.data, args.sentences)
    model, tok = load_model_dir(args.model)
    model.eval()
    report: dict = {"benchmark": "cpu_routes", "date": time.strftime("%Y-%m-%d"),
                    "model": str(args.model), "threads": args.threads,
                    "torch": torch.__version__, "cpu": cpu_summary()}
    with tempfile.TemporaryDirectory() as tmp:
        report["encoder"] = encoder_routes(model, tok, sents, args.threads, args.skip_onnx,
                                           Path(tmp))
        report["extract"] = extract_routes(speed_model(args.model, Path(tmp), sents),
                                           sents[:args.extract_sentences])
    if not args.skip_relx:
        report["relx"] = relx(args.model, args.data)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
