"""The whole method on real data: distant labels from parallel news, scored on real gold.

One run, printing one JSON object:

1. **Annotate** ``parallel/news-en-zh.tsv.gz`` and ``parallel/news-en-fr.tsv.gz`` with
   ``kb-wikidata-v2`` (xlre's defaults: eflomal, ranked linking), or reuse finished runs
   given by ``--run`` and ``--run-fr``.
2. **Train** on both runs together, with the same encoder, settings and number of steps:
   (a) ``full``: English plus projected Chinese and French, bags across languages (a KB
   pair's bag holds its sentences of both runs), agreement loss;
   (b) ``source_only``: the same runs' English side alone (``data.languages=en``), then
   zero-shot on Chinese and French.
3. **Score** both, and (c) ``kb_lookup`` (the run's own distant labeller, ranked linking
   plus KB facts, applied to the gold text), on
   * REBEL-dev (EN) and DuIE-dev (ZH): triples from raw text (``Extractor`` with the KB,
     then ``score_triples``), gold converted by ``scripts/convert_gold.py``;
   * RELX-Distant EN and FR: relation classification of the marked pair
     (``evaluate_model`` on the converted marked files; (a) and (b) only).
   Only gold relations in (a)'s label set count; the set is printed. Precision is a
   lower bound: the gold is incomplete.

Ablations, each one more model trained like (a): ``--no-bags`` (``train.mil=sentence``),
``--no-agreement`` (``model.agreement=false``), ``--entities-only`` (no projection of
relations: ``data.project_relations=false``).

Every model chooses its relation threshold on the runs' own dev split
(``train.tune_threshold``, the default); the gold sets choose nothing.

``--quick`` (EN-ZH alone, so French is zero-shot for every model; ``--steps 300``) is
meant to finish within 40 minutes on 2 CPU cores. Without it the steps default to 1,500.

``--variants full`` trains and scores (a) alone (with (c)), e.g. to score a finished
(a) before (b) is trained. Each stage writes under ``--out`` and is skipped when its
output is there and ``--resume`` is given (a model directory with ``metrics.json``, a
triples file, a score file).

Usage: python scripts/bench_ds.py --encoder DIR --out OUT [--quick] [--run RUN_DIR]
       [--run-fr RUN_DIR] [--steps N] [--seed 13] [--no-bags] [--no-agreement]
       [--entities-only] [--set KEY=VALUE ...] [--resume] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

SETTINGS = [
    "train.epochs=1", "train.batch_size=16", "train.learning_rate=5e-5",
    "train.head_learning_rate=1e-3", "train.warmup_ratio=0.1",
    "train.freeze_word_embeddings=true", "train.group_by_length=true",
    "train.tracker='none'", "train.early_stopping_patience=0", "train.log_every_steps=50",
    "data.max_seq_length=128",
]


def _convert_gold_module() -> Any:
    spec = importlib.util.spec_from_file_location("convert_gold", ROOT / "scripts" / "convert_gold.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Progress:
    """Training progress on standard error, every 50 batches."""

    def __init__(self, name: str) -> None:
        self.name, self.done, self.start = name, 0, time.perf_counter()

    def __call__(self, kind: str, advance: int, total: int) -> None:
        if kind == "train":
            self.done += advance
            if self.done % 50 == 0:
                print(f"{self.name}: batch {self.done}, {time.perf_counter() - self.start:.0f} s",
                      file=sys.stderr, flush=True)


def log(msg: str) -> None:
    print(f"[bench_ds {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def annotate_run(args: argparse.Namespace, kb: Path, tgt: str) -> Path:
    """The news-en-TGT run: the one given (``--run`` / ``--run-fr``) or annotated here."""
    from xlre.annotate import AnnotateConfig, annotate

    given = args.run if tgt == "zh" else args.run_fr
    if given:
        if not (given / "manifest.json").is_file():
            sys.exit(f"{given}: no manifest.json; give a finished annotation run")
        return given
    out = args.out / "runs" / f"news-en-{tgt}"
    if (out / "manifest.json").is_file() and args.resume:
        return out
    log(f"annotating news-en-{tgt} into {out}")
    annotate(AnnotateConfig(corpus=str(args.data / "parallel" / f"news-en-{tgt}.tsv.gz"),
                            src_lang="en", tgt_lang=tgt, kb=str(kb), out=str(out)),
             resume=args.resume)
    return out


def run_summary(run: Path) -> dict[str, Any]:
    counts = json.loads((run / "manifest.json").read_text(encoding="utf-8"))["counts"]
    return {"dir": str(run), "pairs": counts["pairs"], "entities": counts["entities"],
            "relation_labels": {lang: sum(n for r, n in d.items() if r != "NA")
                                for lang, d in counts["relations"].items()},
            "linking": counts["linking"]}


def train_model(name: str, runs: list[Path], args: argparse.Namespace, extra: list[str]) -> tuple[Path, dict]:
    from xlre.training import latest_checkpoint, train
    from xlre.training.settings import load_settings

    out = args.out / "models" / name
    if args.resume and (out / "metrics.json").is_file():
        return out, json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    settings = load_settings(None, [*SETTINGS, f"train.max_steps={args.steps}",
                                    f"train.seed={args.seed}", *args.overrides, *extra])
    log(f"training {name} ({' '.join(extra) or 'defaults'}), {args.steps} steps")
    start = time.perf_counter()
    metrics = train(runs, args.encoder, out, settings,
                    resume=args.resume and latest_checkpoint(out) is not None,
                    progress=Progress(name))
    metrics = dict(metrics) | {"bench_train_seconds": round(time.perf_counter() - start, 1)}
    return out, metrics


def write_triples(path: Path, triples: Any) -> int:
    tmp = path.with_name(path.name + ".tmp")
    n = 0
    with open(tmp, "w", encoding="utf-8") as fh:
        for t in triples:
            fh.write(json.dumps(t.to_json(), ensure_ascii=False) + "\n")
            n += 1
    tmp.replace(path)
    return n


def model_triples(model: Path, kb: Path, docs: list[dict], path: Path, resume: bool) -> float:
    from xlre.extraction import Document, Extractor

    if resume and path.is_file():
        return 0.0
    start = time.perf_counter()
    ex = Extractor.from_pretrained(model, kb=kb)
    write_triples(path, ex.extract([Document(d["id"], d["text"], d["lang"]) for d in docs]))
    return round(time.perf_counter() - start, 1)


def kb_lookup_triples(kb_obj: Any, docs: list[dict], relations: set[str], path: Path) -> None:
    """(c): ranked linking plus the KB's facts between every two linked entities."""
    from alignment.script import make_tokenizer
    from xlre.extraction.extractor import same_argument
    from xlre.kb import EntityLinker, Gazetteer
    from xlre.records import Argument, Evidence, Triple

    linkers: dict[str, Any] = {}

    def triples():
        for d in docs:
            lang = d["lang"]
            if lang not in linkers:
                linkers[lang] = (make_tokenizer(lang), EntityLinker(kb_obj, Gazetteer(kb_obj, lang)))
            tokenizer, linker = linkers[lang]
            tok = tokenizer(d["text"])
            ents = linker.link(tok)
            evidence = Evidence(d["id"], d["text"], lang, "kb-lookup")
            args = [Argument(e.text, e.span.char_start, e.span.char_end, e.kb_id) for e in ents]
            for h, head in enumerate(args):
                for t, tail in enumerate(args):
                    if h == t or same_argument(head, tail):
                        continue
                    for rel in kb_obj.relations_between(head.kb_id, tail.kb_id):
                        if rel in relations:
                            yield Triple(head, rel, tail, 1.0, evidence)

    write_triples(path, triples())


def per_relation(gold_path: Path, triples_path: Path, relations: list[str]) -> dict[str, Any]:
    """score_triples restricted to one relation at a time (gold and predictions)."""
    from xlre.evaluation.triples import score_triples

    out = {}
    tmp_dir = triples_path.parent / (triples_path.stem + ".per-relation")
    tmp_dir.mkdir(exist_ok=True)
    gold_rows = [json.loads(line) for line in gold_path.read_text(encoding="utf-8").splitlines()]
    pred_rows = [json.loads(line) for line in triples_path.read_text(encoding="utf-8").splitlines()]
    for rel in relations:
        g = tmp_dir / f"{rel}.gold.jsonl"
        p = tmp_dir / f"{rel}.triples.jsonl"
        g.write_text("".join(json.dumps(r | {"triples": [t for t in r["triples"] if t["relation"] == rel]},
                                        ensure_ascii=False) + "\n" for r in gold_rows), encoding="utf-8")
        p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in pred_rows
                             if r["relation"] == rel), encoding="utf-8")
        s = score_triples(g, [p])["all"]
        if s["gold"] or s["predicted"]:
            out[rel] = s
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--encoder", required=True, help="pretrained encoder directory (multilingual-e5-small)")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--run", type=Path, help="a finished news-en-zh annotation run to reuse")
    ap.add_argument("--run-fr", type=Path, help="a finished news-en-fr annotation run to reuse")
    ap.add_argument("--quick", action="store_true", help="EN-ZH alone, 300 steps a model")
    ap.add_argument("--steps", type=int)
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--no-bags", action="store_true")
    ap.add_argument("--no-agreement", action="store_true")
    ap.add_argument("--entities-only", action="store_true",
                    help="ablation: project entities but not relations onto the target side")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a training setting for every model, after the bench's own (repeatable)")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--variants", default="full,source_only",
                    help="models to train and score, of full, source_only (and the ablations)")
    args = ap.parse_args()
    args.steps = args.steps or (300 if args.quick else 1500)
    kb = args.data / "kb-wikidata-v2"
    gold_dir, relx_dir = args.data / "re-gold", args.data / "relx"
    needed = [kb, args.data / "parallel" / "news-en-zh.tsv.gz", args.data / "parallel" / "news-en-fr.tsv.gz",
              gold_dir / "rebel-en-dev.jsonl", gold_dir / "duie-zh-dev.jsonl",
              relx_dir / "RELX_distant_en.json", relx_dir / "RELX_distant_fr.json"]
    if not all(p.exists() for p in needed):
        print(json.dumps({"skipped": f"data not found under {args.data}"}))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    report: dict[str, Any] = {"benchmark": "ds", "date": time.strftime("%Y-%m-%d"),
                              "encoder": args.encoder, "steps": args.steps, "seed": args.seed,
                              "quick": args.quick, "settings": [*SETTINGS, *args.overrides]}

    runs = [annotate_run(args, kb, tgt) for tgt in (("zh",) if args.quick else ("zh", "fr"))]
    report["runs"] = {run.name: run_summary(run) for run in runs}

    variants = {"full": [], "source_only": ["data.languages='en'"]}
    if args.no_bags:
        variants["no_bags"] = ["train.mil='sentence'"]
    if args.no_agreement:
        variants["no_agreement"] = ["model.agreement=false"]
    if args.entities_only:
        variants["entities_only"] = ["data.project_relations=false"]
    chosen = [v.strip() for v in args.variants.split(",") if v.strip()]
    if "full" not in chosen or any(v not in variants for v in chosen):
        sys.exit(f"--variants {args.variants!r}: choose among {', '.join(variants)}, full included "
                 "(its label set is the one scored)")
    variants = {k: v for k, v in variants.items() if k in chosen or k not in ("full", "source_only")}
    models = {}
    for name, extra in variants.items():
        out, metrics = train_model(name, runs, args, extra)
        models[name] = out
        summary = json.loads((out / "history.json").read_text(encoding="utf-8"))["summary"]
        report.setdefault("training", {})[name] = {
            "seconds": metrics.get("bench_train_seconds"), "overrides": extra,
            "relation_threshold": summary.get("relation_threshold"),
            "data": json.loads((out / "data_report.json").read_text(encoding="utf-8")),
            "dev": metrics.get("dev")}

    from xlre.data.gold import MarkedSource
    from xlre.evaluation import evaluate_model
    from xlre.evaluation.triples import score_triples
    from xlre.extraction import Extractor
    from xlre.kb import load_kb

    relations = sorted(Extractor.from_pretrained(models["full"]).labels.relations)
    report["label_set"] = relations
    keep = set(relations)
    cg = _convert_gold_module()
    gold_out = args.out / "gold"
    gold_out.mkdir(exist_ok=True)
    rebel, rebel_counts = cg.convert_rebel(gold_dir / "rebel-en-dev.jsonl", keep)
    duie, duie_counts = cg.convert_duie(gold_dir / "duie-zh-dev.jsonl",
                                        cg.read_duie_map(gold_dir / "duie-to-wikidata.tsv"), keep)
    report["gold"] = {"rebel_dev": dict(rebel_counts), "duie_dev": dict(duie_counts)}
    sets = {"rebel_dev": rebel, "duie_dev": duie}
    for name, docs in sets.items():
        cg.write_jsonl(gold_out / f"{name}.gold.jsonl", docs)
    marked = {}
    for lang in ("en", "fr"):
        lines, c = cg.convert_relx_distant(relx_dir / f"RELX_distant_{lang}.json", keep)
        path = gold_out / f"relx_distant_{lang}.txt"
        path.write_text("".join(lines), encoding="utf-8")
        marked[lang] = path
        report["gold"][f"relx_distant_{lang}"] = dict(c)

    kb_obj = load_kb(kb)
    results: dict[str, Any] = {}
    for system in [*models, "kb_lookup"]:
        res: dict[str, Any] = {}
        for name, docs in sets.items():
            tpath = args.out / "triples" / f"{system}.{name}.jsonl"
            tpath.parent.mkdir(exist_ok=True)
            log(f"{system}: triples on {name}")
            if system == "kb_lookup":
                kb_lookup_triples(kb_obj, docs, keep, tpath)
                secs = None
            else:
                secs = model_triples(models[system], kb, docs, tpath, args.resume)
            gpath = gold_out / f"{name}.gold.jsonl"
            res[name] = score_triples(gpath, [tpath])["all"] | {
                "seconds": secs, "per_relation": per_relation(gpath, tpath, relations)}
        if system != "kb_lookup":
            for lang, path in marked.items():
                log(f"{system}: RELX-Distant {lang}")
                ev = evaluate_model(models[system], None, "test",
                                    out_dir=args.out / "eval" / f"{system}-relx-{lang}",
                                    marked=[MarkedSource(path, lang, "test")], skip_bad=True)
                m = ev["metrics"][lang]
                res[f"relx_distant_{lang}"] = {"marked_f1": m.get("marked_f1"),
                                               "per_type": m.get("marked_per_type")}
        results[system] = res
    report["results"] = results
    report["seconds"] = round(time.perf_counter() - started, 1)
    (args.out / "bench_ds.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n",
                                            encoding="utf-8")
    print(json.dumps(report, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
