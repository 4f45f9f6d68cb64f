"""Benchmark batched SimAlign (NeuralAligner) against simalign's one-pair-per-call API.

Measures, on the same sentence pairs and the same encoder:

* pairs/s of ``NeuralAligner(method="argmax").align`` (batched);
* pairs/s of simalign's ``SentenceAligner(matching_methods="a").get_word_aligns``, one
  pair per call;
* their ratio, and the share of pairs whose link sets agree exactly.

Without ``--model-dir`` a random encoder of XLM-R base's shape is built in a temporary
directory (tokenizer trained on the Tatoeba text, so subword counts are realistic);
random weights make the links meaningless but the costs real.

Usage: python scripts/bench_neural_align.py [--pairs 500] [--tatoeba PATH] [--model-dir DIR]
Importable from sibling scripts (``import bench_neural_align``).
"""

from __future__ import annotations

import argparse
import atexit
import gzip
import importlib.util
import json
import random
import re
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TATOEBA = ROOT.parent / "shared" / "data" / "parallel" / "tatoeba-en-fr.tsv.gz"

_PUNCT = re.compile(r"([^\w\s'’-])")


def simple_tokens(text: str) -> list[str]:
    """Punctuation split off, then whitespace split."""
    return _PUNCT.sub(r" \1 ", text).split()


def _read_tsv(path: Path) -> list[tuple[str, str]]:
    opener = gzip.open if str(path).endswith(".gz") else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            fields = line.rstrip("\n").split("\t")
            if len(fields) >= 2 and fields[-2].strip() and fields[-1].strip():
                rows.append((fields[-2], fields[-1]))
    return rows


def load_tatoeba_pairs(path: Path, n: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """``n`` tokenised pairs drawn at random (fixed seed) from a ``EN<TAB>FR`` file.

    Drawn across the whole file, which is sorted by length, so short and long sentences
    are both represented.
    """
    rows = _read_tsv(Path(path))
    picked = random.Random(seed).sample(rows, min(n, len(rows)))
    return [(simple_tokens(en), simple_tokens(fr)) for en, fr in picked]


def _tiny_models():
    spec = importlib.util.spec_from_file_location("tiny_models", ROOT / "tests" / "helpers" / "tiny_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ensure_model(
    model_dir: str | None, tokenizer_corpus: Path | None = DEFAULT_TATOEBA, lines: int = 40_000
) -> str:
    """``model_dir`` if given, else a random XLM-R-base-shaped encoder in a temp dir.

    The temporary tokenizer is trained on ``lines`` sentences of ``tokenizer_corpus``
    (both sides) when that file exists, else on the small built-in corpus. The temp dir
    is removed at exit.
    """
    if model_dir:
        return model_dir
    corpus = None
    if tokenizer_corpus is not None and Path(tokenizer_corpus).is_file():
        rows = _read_tsv(Path(tokenizer_corpus))
        rows = random.Random(1).sample(rows, min(lines // 2, len(rows)))
        corpus = [s for pair in rows for s in pair]
    tmp = tempfile.mkdtemp(prefix="xlmr-base-shaped-")
    atexit.register(shutil.rmtree, tmp, True)
    return str(_tiny_models().build_xlmr_base_shaped(Path(tmp), corpus=corpus))


def bench_simalign(
    pairs: list[tuple[list[str], list[str]]],
    model_dir: str,
    layer: int = 8,
    batch_size: int = 32,
) -> dict:
    """Batched NeuralAligner vs simalign per pair (argmax) on ``pairs``; JSON-able dict."""
    import torch
    from simalign import SentenceAligner

    from alignment.aligners.neural import NeuralAligner

    src = [s for s, _ in pairs]
    tgt = [t for _, t in pairs]
    warm = min(8, len(pairs))

    def timed(aligner: NeuralAligner) -> tuple[list, float]:
        aligner.align(src[:warm], tgt[:warm])
        start = time.perf_counter()
        links = aligner.align(src, tgt)
        return links, time.perf_counter() - start

    ours = NeuralAligner(model_dir, layer=layer, method="argmax", batch_size=batch_size, device="cpu")
    batched, ours_s = timed(ours)
    # The same without oneDNN linears: what batching and the layer cut give on their own.
    plain = NeuralAligner(model_dir, layer=layer, method="argmax", batch_size=batch_size,
                          device="cpu", onednn=False)
    plain_links, plain_s = timed(plain)
    del plain

    theirs = SentenceAligner(model=model_dir, token_type="bpe", matching_methods="a",
                             layer=layer, device="cpu")
    for s, t in pairs[:warm]:
        theirs.get_word_aligns(s, t)
    start = time.perf_counter()
    reference = [theirs.get_word_aligns(s, t)["inter"] for s, t in pairs]
    theirs_s = time.perf_counter() - start

    agree = sum(lk.pairs() == set(ref) for lk, ref in zip(batched, reference, strict=True))
    agree_plain = sum(
        lk.pairs() == set(ref) for lk, ref in zip(plain_links, reference, strict=True)
    )
    subwords = sum(len(p) for s in src + tgt for p in ours.subword_ids(s))
    return {
        "model": model_dir,
        "layer": layer,
        "batch_size": batch_size,
        "pairs": len(pairs),
        "mean_words_per_sentence": round(sum(map(len, src + tgt)) / (2 * len(pairs)), 2),
        "mean_subwords_per_sentence": round(subwords / (2 * len(pairs)), 2),
        "torch_threads": torch.get_num_threads(),
        "onednn_linears": ours.onednn_linears,
        "batched_seconds": round(ours_s, 3),
        "batched_pairs_per_second": round(len(pairs) / ours_s, 1),
        "simalign_seconds": round(theirs_s, 3),
        "simalign_pairs_per_second": round(len(pairs) / theirs_s, 1),
        "speedup": round(theirs_s / ours_s, 2),
        "links_agree_share": round(agree / len(pairs), 4),
        "without_onednn": {
            "batched_pairs_per_second": round(len(pairs) / plain_s, 1),
            "speedup": round(theirs_s / plain_s, 2),
            "links_agree_share": round(agree_plain / len(pairs), 4),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=500)
    parser.add_argument("--tatoeba", type=Path, default=DEFAULT_TATOEBA)
    parser.add_argument("--model-dir", default=None,
                        help="encoder directory or name (default: random XLM-R-base-shaped)")
    parser.add_argument("--layer", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    if not args.tatoeba.is_file():
        raise SystemExit(f"{args.tatoeba}: no such file; pass --tatoeba PATH/TO/tatoeba-en-fr.tsv.gz")
    pairs = load_tatoeba_pairs(args.tatoeba, args.pairs)
    model_dir = ensure_model(args.model_dir, args.tatoeba)
    report = {"benchmark": "simalign_batched_vs_per_pair", "date": time.strftime("%Y-%m-%d"),
              "data": str(args.tatoeba)}
    report.update(bench_simalign(pairs, model_dir, args.layer, args.batch_size))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
