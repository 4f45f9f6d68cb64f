"""Evaluation of a trained model on a split of an annotation run, per language.

Figures, for every language of the split (and ``all`` for both together):

* entities: exact-span precision / recall / F1, micro and per type;
* relations, sentence level: micro and macro F1 without NA (multi-label: a relation is
  predicted when its probability reaches the model's ``relation_threshold``);
* relations, bag level (held-out evaluation of distant-supervision papers): every bag
  (KB entity pair) gets a score per relation, by bag attention over its instances of that
  language (of both languages for ``all``), or by the best instance when the model has no
  bag head; ranked against the bag's distant labels: the PR curve, its area and P@N.

The gold labels are the run's own (distant or projected) labels.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from alignment.errors import UserError
from xlre.data import (
    SPLITS,
    Collator,
    DataConfig,
    EpochSampler,
    LabelMaps,
    Runs,
    build_relation_data,
    describe_sources,
)
from xlre.data.gold import bag_direction, directed_label, parse_label
from xlre.evaluation.heldout import PRCurve, heldout_pr, plot_pr_curves
from xlre.evaluation.metrics import (
    bio_to_spans,
    directed_type_scores,
    entity_scores,
    relation_scores,
    to_jsonable,
)
from xlre.modeling import ModelDirError, load_model_dir
from xlre.modeling.optimize import optimize_for_cpu

logger = logging.getLogger(__name__)

ALL = "all"


def eval_loader(seqs: Any, num_relations: int, pad_id: int, batch_size: int) -> Any:
    """Rows of ``seqs``, longest first (never shuffled), ``batch_size`` sequences a batch:
    a batch pads to its longest sequence, so sorted batches hold little padding (half the
    time of unsorted ones on news sentences). Results carry their row numbers."""
    lengths = [len(ids) for batch in seqs.select_columns(["input_ids"]).iter(batch_size=4096)
               for ids in batch["input_ids"]]
    return DataLoader(
        list(range(len(seqs))), batch_size=batch_size,
        sampler=EpochSampler(len(seqs), seed=0, shuffle=False, lengths=lengths,
                             group_size=len(seqs)),
        collate_fn=Collator(seqs, num_relations, pad_id),
    )


@torch.no_grad()
def predict_rows(model: Any, loader: Any, accelerator: Any = None,
                 progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Per row of the split: entity tags at labelled positions, instance probabilities
    and instance vectors; gathered over processes when ``accelerator`` is given."""
    model.eval()
    device = None if accelerator is not None else next(model.parameters()).device
    results: list[dict[str, Any]] = []
    for batch in loader:
        rows = batch.pop("rows")
        if device is not None:
            batch = {k: v.to(device) for k, v in batch.items()}
        out = model(**batch)
        tags = out.entity_logits.argmax(-1).cpu() if out.entity_logits is not None else None
        probs = (torch.sigmoid(out.relation_logits.float()).cpu()
                 if out.relation_logits is not None else None)
        reprs = out.pair_repr.float().cpu() if out.pair_repr is not None else None
        inst_seq = batch["inst_seq"].cpu()
        labels = batch["entity_labels"].cpu()
        per_row = []
        for i, row in enumerate(rows.tolist()):
            mine = (inst_seq == i).nonzero().flatten()
            positions = (labels[i] != -100).nonzero().flatten()
            per_row.append({
                "row": row,
                "tags": tags[i, positions].tolist() if tags is not None else [],
                "probs": probs[mine].tolist() if probs is not None else [],
                "reprs": reprs[mine] if reprs is not None else None,
            })
        if accelerator is not None:
            per_row = accelerator.gather_for_metrics(per_row, use_gather_object=True)
        results.extend(per_row)
        if progress is not None:
            progress(len(rows))
    results.sort(key=lambda r: r["row"])
    return results


@torch.no_grad()
def predict_split(model: Any, seqs: Any, num_relations: int, pad_id: int, batch_size: int = 64,
                  accelerator: Any = None,
                  progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """:func:`predict_rows` over every sequence of ``seqs`` (the costly part of an
    evaluation; :func:`score_split` then scores the rows at any threshold)."""
    if len(seqs) == 0:
        return []
    loader = eval_loader(seqs, num_relations, pad_id, batch_size)
    if accelerator is not None:
        loader = accelerator.prepare(loader)
    try:
        return predict_rows(model, loader, accelerator, progress)
    finally:
        if accelerator is not None and loader in getattr(accelerator, "_dataloaders", []):
            accelerator._dataloaders.remove(loader)  # prepared anew for every evaluation


@torch.no_grad()
def evaluate_split(
    model: Any,
    seqs: Any,
    labels: LabelMaps,
    pad_id: int,
    batch_size: int = 64,
    accelerator: Any = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, PRCurve]]:
    """Metrics per language (and ``all``) on the sequences ``seqs`` of one split, at the
    model's ``relation_threshold``.

    Returns ``(metrics, curves)``; ``metrics[lang]`` has ``relation_micro_f1``,
    ``relation_macro_f1``, ``entity_f1``, ``pr_auc`` and the details behind them.
    """
    rows = predict_split(model, seqs, len(labels.relations), pad_id, batch_size, accelerator,
                         progress)
    core = accelerator.unwrap_model(model) if accelerator is not None else model
    return score_split(core, seqs, rows, labels)


@torch.no_grad()
def score_split(core: Any, seqs: Any, rows: list[dict[str, Any]], labels: LabelMaps,
                threshold: float | None = None,
                ) -> tuple[dict[str, dict[str, Any]], dict[str, PRCurve]]:
    """The metrics of :func:`evaluate_split` from rows :func:`predict_split` gave, at
    ``threshold`` (the model's ``relation_threshold`` when ``None``). Besides the figures
    at that threshold, ``relation_best_threshold`` gives, per language, the threshold
    with the best relation micro-F1 and that F1 (for choosing a threshold on dev)."""
    if len(seqs) == 0:
        return {}, {}
    cfg = core.config
    threshold = cfg.relation_threshold if threshold is None else threshold
    bio = labels.bio
    meta = seqs.select_columns([
        "record", "window", "lang", "label_word", "gold_start", "gold_end", "gold_type",
        "inst_bag", "inst_labels", *(["gold_label"] if "gold_label" in seqs.column_names else []),
    ])
    # Gold marked sentences: per (lang, record) the gold directed label and the best
    # (probability, relation, direction) over both ordered pairs.
    marked_gold: dict[str, dict[int, str]] = defaultdict(dict)
    marked_best: dict[str, dict[int, tuple[float, int, str]]] = defaultdict(dict)
    ent_gold: dict[str, list[list[tuple[int, int, str]]]] = defaultdict(list)
    ent_pred: dict[str, list[list[tuple[int, int, str]]]] = defaultdict(list)
    rel_gold: dict[str, list[set[str]]] = defaultdict(list)
    rel_pred: dict[str, list[set[str]]] = defaultdict(list)
    bag_reprs: dict[str, dict[str, list[torch.Tensor]]] = defaultdict(lambda: defaultdict(list))
    bag_best: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    bag_gold: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    # Per language: every instance's probabilities and gold relation ids, for the sweep.
    inst_probs: dict[str, list[list[float]]] = defaultdict(list)
    inst_gold: dict[str, list[list[int]]] = defaultdict(list)
    seen_windows: set[tuple[int, int]] = set()
    for res, m in zip(rows, meta, strict=True):
        lang = m["lang"]
        # Markers give one sequence per pair: score entities once per record window.
        key = (m["record"], m["window"])
        if key not in seen_windows and cfg.entity_head and (m["label_word"] or m["gold_start"]):
            seen_windows.add(key)
            words = m["label_word"]
            spans = bio_to_spans([bio[t] for t in res["tags"]])
            pred = [(words[s], words[e - 1] + 1, typ) for s, e, typ in spans]
            gold = list(zip(m["gold_start"], m["gold_end"], m["gold_type"], strict=True))
            for lg in (lang, ALL):
                ent_gold[lg].append(gold)
                ent_pred[lg].append(pred)
        if m.get("gold_label"):
            # Registered even with no instance (a pair too far apart for one window): such
            # a sentence counts as predicted ``no_relation``, never as left out.
            for lg in (lang, ALL):
                marked_gold[lg].setdefault(m["record"], m["gold_label"])
        for k, (bag, gold_ids) in enumerate(zip(m["inst_bag"], m["inst_labels"], strict=True)):
            probs = res["probs"][k]
            direction = bag_direction(bag)
            if direction is not None and probs:
                best = max(range(len(probs)), key=probs.__getitem__)
                for lg in (lang, ALL):
                    prev = marked_best[lg].get(m["record"])
                    if prev is None or probs[best] > prev[0]:
                        marked_best[lg][m["record"]] = (probs[best], best, direction)
            gold_rel = {labels.relations[g] for g in gold_ids}
            pred_rel = {labels.relations[r] for r, p in enumerate(probs) if p >= threshold}
            for lg in (lang, ALL):
                rel_gold[lg].append(gold_rel)
                rel_pred[lg].append(pred_rel)
                if probs:
                    inst_probs[lg].append(probs)
                    inst_gold[lg].append(gold_ids)
                bag_gold[lg][bag].update(gold_rel)
                if res["reprs"] is not None:
                    bag_reprs[lg][bag].append(res["reprs"][k])
                p = torch.tensor(probs)
                bag_best[lg][bag] = torch.maximum(bag_best[lg][bag], p) if bag in bag_best[
                    lg] else p
    metrics: dict[str, dict[str, Any]] = {}
    curves: dict[str, PRCurve] = {}
    langs = [*sorted({*ent_gold, *rel_gold} - {ALL}), ALL]
    for lg in langs:
        out: dict[str, Any] = {}
        if lg in ent_gold:
            ent = entity_scores(ent_gold[lg], ent_pred[lg])
            out["entity_f1"] = ent["micro"].f1
            out["entity_precision"] = ent["micro"].precision
            out["entity_recall"] = ent["micro"].recall
            out["entity_per_type"] = to_jsonable(ent["per_type"])
        if lg in rel_gold:
            rel = relation_scores(rel_gold[lg], rel_pred[lg], na=labels.na)
            out["relation_micro_f1"] = rel["micro"].f1
            out["relation_micro_precision"] = rel["micro"].precision
            out["relation_micro_recall"] = rel["micro"].recall
            out["relation_macro_f1"] = rel["macro_f1"]
            out["relation_per_relation"] = to_jsonable(rel["per_relation"])
            out["instances"] = len(rel_gold[lg])
            if inst_probs[lg]:
                best_t, best_f1 = best_micro_threshold(inst_probs[lg], inst_gold[lg])
                out["relation_best_threshold"] = {"threshold": best_t, "micro_f1": best_f1}
            scored = list(_bag_scores(core, lg, bag_reprs, bag_best, labels))
            gold = [(b, r) for b, rels in bag_gold[lg].items() for r in rels]
            curve = heldout_pr(scored, gold, na=labels.na)
            curves[lg] = curve
            out["pr_auc"] = curve.auc
            out["precision_at"] = {f"P@{n}": v for n, v in curve.precision_at.items()}
            out["bags"] = len(bag_gold[lg])
            out["bag_facts"] = curve.n_gold
        if marked_gold.get(lg):
            out.update(_marked_metrics(marked_gold[lg], marked_best[lg], labels, threshold))
        metrics[lg] = out
    return metrics, curves


def best_micro_threshold(probs: Sequence[Sequence[float]], gold: Sequence[Sequence[int]],
                         ) -> tuple[float, float]:
    """The threshold ``t`` whose predictions (every relation with probability >= ``t``)
    have the best micro-F1 against ``gold`` (relation ids per instance), and that F1.

    Exact: every distinct probability is tried as ``t``. With no gold relation at all
    the best F1 is 0, and ``t`` is 1 (predict nothing)."""
    p = torch.tensor(probs, dtype=torch.float64)
    hit = torch.zeros_like(p, dtype=torch.bool)
    for i, ids in enumerate(gold):
        hit[i, list(ids)] = True
    n_gold = int(hit.sum())
    flat, order = p.flatten().sort(descending=True)
    if n_gold == 0 or flat.numel() == 0:
        return 1.0, 0.0
    tp = hit.flatten()[order].cumsum(0).double()
    predicted = torch.arange(1, flat.numel() + 1, dtype=torch.float64)
    # Only the last position of a run of equal probabilities is a reachable cut.
    last = torch.ones_like(flat, dtype=torch.bool)
    last[:-1] = flat[:-1] != flat[1:]
    f1 = torch.where(last, 2 * tp / (predicted + n_gold), torch.zeros_like(tp))
    k = int(f1.argmax())
    return float(flat[k]), float(f1[k])


def choose_threshold(dev: dict[str, Any]) -> tuple[float, float] | None:
    """The relation threshold a model should use, chosen on the dev metrics of its
    ``all`` row (:func:`evaluate_split`): the best of ``marked_f1_at_threshold`` when dev
    has gold marked sentences (ties: nearest 0.5), else the best relation micro-F1
    threshold. ``(threshold, dev_score_at_it)``, or ``None`` when dev gives no basis (no
    relation label at all)."""
    grid = dev.get("marked_f1_at_threshold")
    if grid:
        t = max(grid, key=lambda k: (grid[k], -abs(float(k) - 0.5)))
        return float(t), float(grid[t])
    best = dev.get("relation_best_threshold")
    if not best or best["micro_f1"] <= 0:
        return None
    return float(best["threshold"]), float(best["micro_f1"])


MARKED_THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9)


def _marked_metrics(gold: dict[int, str], best: dict[int, tuple[float, int, str]],
                    labels: LabelMaps, threshold: float) -> dict[str, Any]:
    """The KBP37 / RELX score (:func:`xlre.evaluation.metrics.directed_type_scores`) of the gold
    marked sentences: each gets the best-scoring relation and direction over its two
    ordered pairs, or ``no_relation`` when that scores below the threshold. Also the
    score at other thresholds (``marked_f1_at_threshold``), to choose one on dev."""
    negative = "no_relation"
    gold_labels, scored = [], []
    for record, label in sorted(gold.items()):
        rel, direction = parse_label(label)
        gold_labels.append(negative if rel == labels.na else directed_label(rel, direction))
        p, r, d = best.get(record, (0.0, 0, ""))
        scored.append((p, directed_label(labels.relations[r], d) if d else negative))

    def score(t: float) -> dict[str, Any]:
        return directed_type_scores(gold_labels, [lab if p >= t else negative for p, lab in scored],
                                    negative)

    scores = score(threshold)
    return {"marked_f1": scores["macro_f1"], "marked_micro_f1": scores["micro"].f1,
            "marked_per_type": to_jsonable(scores["per_type"]), "marked_sentences": len(gold),
            "marked_f1_at_threshold": {f"{t:g}": score(t)["macro_f1"] for t in MARKED_THRESHOLDS}}


def _bag_scores(model: Any, lang: str, bag_reprs, bag_best, labels: LabelMaps):
    use_attention = model.config.bag_attention and bag_reprs.get(lang)
    bags = sorted(bag_best[lang])
    if not use_attention:
        for bag in bags:
            for r, p in enumerate(bag_best[lang][bag].tolist()):
                yield bag, labels.relations[r], p
        return
    device = next(model.parameters()).device
    chunk = 256
    for start in range(0, len(bags), chunk):
        names = bags[start:start + chunk]
        members = [bag_reprs[lang][b] for b in names]
        width = max(len(x) for x in members)
        flat = torch.stack([v for x in members for v in x]).to(device)
        index = torch.full((len(names), width), -1, dtype=torch.long)
        at = 0
        for i, x in enumerate(members):
            index[i, : len(x)] = torch.arange(at, at + len(x))
            at += len(x)
        weight_dtype = model.relation_matrix.weight.dtype
        logits = model.bag_scores(flat.to(weight_dtype), index.to(device))
        for name, row in zip(names, torch.sigmoid(logits.float()).cpu().tolist(), strict=True):
            for r, p in enumerate(row):
                yield name, labels.relations[r], p


def headline(metrics: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """The four figures the issue asks for, per language."""
    keys = ("relation_micro_f1", "relation_macro_f1", "entity_f1", "pr_auc", "marked_f1")
    return {lg: {k: m[k] for k in keys if k in m} for lg, m in metrics.items()}


def write_pr_png(curves: dict[str, PRCurve], path: Path, title: str) -> Path | None:
    if not curves:
        return None
    return plot_pr_curves(curves, path, title=title)


class EvaluateError(UserError, RuntimeError):
    """Evaluation cannot run; the message says why and what to do."""


def evaluate_model(
    model_dir: Path | str,
    run_dir: Runs,
    split: str = "test",
    out_dir: Path | str | None = None,
    batch_size: int = 64,
    progress: Callable[[int], None] | None = None,
    marked: Sequence[Any] = (),
    skip_bad: bool = False,
    optimize: str | None = None,
) -> dict[str, Any]:
    """Evaluate the model in ``model_dir`` on ``split`` of the run in ``run_dir`` and on
    the gold marked files ``marked`` (:class:`xlre.data.gold.MarkedSource`; those in another
    split than ``split`` are not scored, and ``all`` takes them all).

    The split is rebuilt with the model's own data settings (the same seed and
    fractions), so ``test`` is the held-out part of the run it was trained on; ``all``
    takes every sequence of the run (for a run the model never saw). Returns
    ``{"split", "model", "run", "metrics": {lang: ...}}`` and, with ``out_dir``, writes
    it as ``metrics-SPLIT.json`` next to ``pr_curve-SPLIT.png``. ``optimize`` scores the
    CPU route of :mod:`xlre.modeling.optimize` instead of the fp32 model.
    """
    import datasets

    model_dir = Path(model_dir)
    if split not in (*SPLITS, "all"):
        raise EvaluateError(f"split {split!r} is not one of {', '.join((*SPLITS, 'all'))}")
    try:
        model, tokenizer = load_model_dir(model_dir)
    except ModelDirError as exc:
        raise EvaluateError(str(exc)) from None
    data_config = DataConfig.stored(model.config.data_config or {
        "relation_repr": model.config.relation_repr,
        "max_seq_length": model.config.max_seq_length})
    # data.languages chose what the model trained on; evaluation takes every language
    # (a source-only model is scored zero-shot on the others).
    data_config = dataclasses.replace(data_config, languages="")
    data = build_relation_data(run_dir, tokenizer, data_config, model.config.labels,
                               marked=marked, skip_bad=skip_bad)
    if split == "all":
        seqs = datasets.concatenate_datasets([data.splits[s] for s in SPLITS])
    else:
        seqs = data.splits[split]
    if len(seqs) == 0:
        raise EvaluateError(
            f"{describe_sources(run_dir)}: the {split} split is empty; evaluate a run the model "
            "never saw with --split all"
        )
    if optimize is not None:
        # The route xlre extract --optimize takes, scored as it would run (on the CPU).
        model = optimize_for_cpu(model.eval(), optimize, model_dir, tokenizer)
    else:
        model.to("cuda" if torch.cuda.is_available() else "cpu")
    metrics, curves = evaluate_split(model, seqs, model.config.labels, tokenizer.pad_token_id,
                                     batch_size, None, progress)
    result = {"split": split, "model": str(model_dir),
              "run": describe_sources(run_dir) if run_dir else None,
              "marked": [m.describe() for m in marked],
              "data_report": data.report, "metrics": to_jsonable(metrics)}
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / f"metrics-{split}.json").write_text(json.dumps(result, indent=2) + "\n",
                                                      encoding="utf-8")
        write_pr_png(curves, out_dir / f"pr_curve-{split}.png", f"Held-out PR curve, {split}")
    return result

