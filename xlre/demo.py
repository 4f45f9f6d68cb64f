"""The whole mission on the demo corpus, offline: ``xlre demo`` is a thin caller of :func:`run_demo`.

Stages, each reported through ``progress(stage, message)``:

1. **annotate** ``corpora/demo-en-fr/parallel.tsv`` with ``corpora/demo-en-fr/kb``: link,
   distant-label, align (eflomal), project onto French;
2. **model**: a tiny random XLM-R with a tokenizer trained on the run's text;
3. **train** on both languages (``corpora/demo-en-fr/train-tiny.toml``);
4. **evaluate**: the test split (KB pairs never seen in training), per language;
5. **extract** triples from the held-out sentences (``heldout.tsv``, from templates the
   training corpus never uses), in English and in French, and score them against
   ``heldout-gold.jsonl``;
6. **export** the triples as Turtle and **load** them into the embedded store;
7. **query** the store with SPARQL (facts per relation, with their evidence counts).

``quick=True`` runs a reduced version (fewer pairs, epochs and layers) for tests.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from alignment.errors import UserError
from xlre.annotate import AnnotateConfig, annotate, iter_records
from xlre.evaluation import score_triples
from xlre.extraction import Extractor, read_documents
from xlre.kb import load_kb
from xlre.kg import DEFAULT_BASE_IRI, export, load_store, query_store
from xlre.modeling import TINY, build_encoder
from xlre.training import load_settings, train

logger = logging.getLogger(__name__)

DEMO_DIR = Path(__file__).resolve().parent.parent / "corpora" / "demo-en-fr"
ProgressFn = Callable[[str, str], None]

SPARQL_BY_RELATION = """\
PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX x: <{base}ns#>
SELECT ?relation (COUNT(?st) AS ?facts) (SUM(?n) AS ?sentences)
WHERE {{ ?st a rdf:Statement ; rdf:predicate ?p ; x:evidenceCount ?n .
        OPTIONAL {{ ?p rdfs:label ?relation FILTER(lang(?relation) = "en") }} }}
GROUP BY ?relation ORDER BY DESC(?facts)"""


#: The reduced run: a 600-pair corpus needs smaller batches to get enough steps.
QUICK_OVERRIDES = ["train.epochs=10", "train.batch_size=8", "train.early_stopping_patience=0",
                   "train.learning_rate=3e-3", "train.head_learning_rate=3e-3"]


class DemoError(UserError, RuntimeError):
    """The demo cannot run; the message says why."""


@dataclass(frozen=True)
class DemoResult:
    out: Path
    stages: dict[str, dict[str, Any]]
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {"out": str(self.out), "seconds": round(self.seconds, 1), "stages": self.stages}


def _heldout(demo_dir: Path, out: Path, limit: int | None) -> tuple[Path, Path]:
    """Held-out sentences as extraction input (JSONL, both languages) and its gold."""
    docs, gold = out / "heldout-docs.jsonl", out / "heldout-gold.jsonl"
    keep: set[str] = set()
    with open(demo_dir / "heldout.tsv", encoding="utf-8") as src, \
            open(docs, "w", encoding="utf-8") as dst:
        for n, line in enumerate(src):
            if limit is not None and n >= limit:
                break
            doc_id, en, fr = line.rstrip("\n").split("\t")
            keep.add(doc_id)
            for lang, text in (("en", en), ("fr", fr)):
                dst.write(json.dumps({"id": doc_id, "text": text, "lang": lang},
                                     ensure_ascii=False) + "\n")
    with open(demo_dir / "heldout-gold.jsonl", encoding="utf-8") as src, \
            open(gold, "w", encoding="utf-8") as dst:
        for line in src:
            if json.loads(line)["id"] in keep:
                dst.write(line)
    return docs, gold


def run_demo(out: Path | str, quick: bool = False, progress: ProgressFn | None = None,
             demo_dir: Path = DEMO_DIR,
             train_progress: Callable[[str, int, int], None] | None = None) -> DemoResult:
    """Run every stage into ``out`` (replaced if it holds an earlier demo).

    ``progress(stage, message)`` is called as each stage starts; ``train_progress`` is
    handed to :func:`xlre.training.train`.
    """
    say = progress or (lambda stage, message: logger.info("%s: %s", stage, message))
    out = Path(out)
    if not (demo_dir / "parallel.tsv").exists():
        raise DemoError(f"{demo_dir}: the demo corpus is missing; run from a full checkout")
    if out.exists():
        if not (out / "demo.json").exists() and any(out.iterdir()):
            raise DemoError(f"{out} exists and is not an earlier demo; choose another --out")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = time.perf_counter()
    stages: dict[str, dict[str, Any]] = {}

    corpus = demo_dir / "parallel.tsv"
    if quick:  # the first 600 pairs
        corpus = out / "parallel-quick.tsv"
        with open(demo_dir / "parallel.tsv", encoding="utf-8") as src:
            corpus.write_text("".join(line for _, line in zip(range(600), src, strict=False)),
                              encoding="utf-8")

    t0 = time.perf_counter()
    say("annotate", "linking, distant labelling, aligning and projecting")
    run_dir = out / "run"
    manifest = annotate(AnnotateConfig(corpus=str(corpus), src_lang="en", tgt_lang="fr",
                                       kb=str(demo_dir / "kb"), out=str(run_dir),
                                       shard_size=1000))
    counts = manifest["counts"]
    stages["annotate"] = {
        "pairs": counts["pairs"], "relations": {
            lang: sum(v for k, v in c.items() if k != "NA")
            for lang, c in counts["relations"].items()},
        "seconds": round(time.perf_counter() - t0, 1), "output": str(run_dir)}

    t0 = time.perf_counter()
    say("model", "building a tiny random XLM-R and its tokenizer")
    shape = replace(TINY, layers=1, hidden=64, heads=2, intermediate=128) if quick else TINY
    enc_dir = out / "tiny-encoder"
    build_encoder(enc_dir, (r["text"] for r in iter_records(run_dir)), shape)
    stages["model"] = {"shape": asdict(shape), "seconds": round(time.perf_counter() - t0, 1),
                       "output": str(enc_dir)}

    t0 = time.perf_counter()
    say("train", "training on English and French (see the progress below)")
    overrides = ["train.tracker='none'"] + (QUICK_OVERRIDES if quick else [])
    settings = load_settings(demo_dir / "train-tiny.toml", overrides)
    model_dir = out / "model"
    metrics = train(run_dir, str(enc_dir), model_dir, settings, progress=train_progress)
    history = json.loads((model_dir / "history.json").read_text(encoding="utf-8"))["summary"]
    stages["train"] = {"best_epoch": history["best_epoch"],
                       "seconds": round(time.perf_counter() - t0, 1), "output": str(model_dir)}

    say("evaluate", "test split: KB entity pairs never seen in training")
    keys = ("relation_micro_f1", "relation_macro_f1", "entity_f1", "pr_auc")
    stages["evaluate"] = {lang: {k: round(m[k], 4) for k in keys if k in m}
                          for lang, m in metrics.get("test", {}).items()}
    stages["evaluate"]["output"] = str(model_dir / "metrics.json")

    t0 = time.perf_counter()
    say("extract", "triples from held-out sentences (templates never trained on)")
    docs, gold = _heldout(demo_dir, out, 40 if quick else None)
    kb = load_kb(demo_dir / "kb")
    extractor = Extractor.from_pretrained(model_dir, kb=kb)
    triples_path = out / "triples.jsonl"
    n_triples = 0
    with open(triples_path, "w", encoding="utf-8") as fh:
        for t in extractor.extract(read_documents([str(docs)])):
            fh.write(json.dumps(t.to_json(), ensure_ascii=False) + "\n")
            n_triples += 1
    scores = score_triples(gold, [triples_path])
    stages["extract"] = {"triples": n_triples, "heldout_scores": {
        lang: scores[lang] for lang in ("en", "fr", "all") if lang in scores},
        "seconds": round(time.perf_counter() - t0, 1), "output": str(triples_path)}

    t0 = time.perf_counter()
    say("export", "Turtle file and the embedded SPARQL store")
    ttl = out / "graph.ttl"
    summary = export([triples_path], "ttl", ttl, kb=kb)
    store_dir = out / "store"
    stored = load_store([triples_path], store_dir, kb=kb)
    stages["export"] = {"edges": summary["edges"], "nodes": summary["nodes"],
                        "quads_in_store": stored["quads_in_store"],
                        "seconds": round(time.perf_counter() - t0, 1),
                        "output": f"{ttl} and {store_dir}"}

    say("query", "SPARQL: facts per relation")
    query = SPARQL_BY_RELATION.format(base=DEFAULT_BASE_IRI)
    result = query_store(store_dir, query)
    stages["query"] = {"sparql": query, "variables": result["variables"],
                       "rows": result["rows"]}

    result_obj = DemoResult(out, stages, time.perf_counter() - started)
    (out / "demo.json").write_text(json.dumps(result_obj.to_json(), indent=2) + "\n",
                                   encoding="utf-8")
    return result_obj
