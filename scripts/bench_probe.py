"""Linear probe on an encoder's span features of a run's relation instances (issue 19).

Tells apart the two ways a distantly supervised model can predict only the majority
relation: the encoder's features do not separate the relations, or the relation head has
not learnt to read them. For the train and dev splits of a run (split by KB fact, as
``xlre train`` splits it), every relation instance becomes the concatenated mean-pooled
vectors of its head and tail spans, taken from the encoder with no gradient. A linear
multi-label classifier (BCE, AdamW) is fitted on train and scored on dev, next to the
train prior and, with ``--model``, the trained model's own relation head on the same
instances.

    python scripts/bench_probe.py --run RUN --encoder ENCODER [--model MODEL_DIR] \
        [--cache FEATS.npz] [--fit lr=1e-3,steps=300,batch=64 ...]

``--encoder`` is a pretrained encoder (features of the untrained encoder); ``--model`` a
trained xlre model directory (features of its fine-tuned encoder, and its own head).
Prints one JSON object: per system, dev micro/macro average precision, and on the
positive dev instances (and bags) how often the top-scoring relation is a gold one, and
how many different relations come out on top. Each ``--fit`` is one probe with those
optimiser settings, so a step budget like the model's can be compared with a long fit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def parse_fit(text: str) -> dict[str, float]:
    fit = {"lr": 1e-3, "steps": 0.0, "batch": 256.0, "epochs": 30.0, "wd": 1e-4}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        if key not in fit or not value:
            raise SystemExit(f"--fit {text!r}: {part!r} is not one of "
                             f"{', '.join(k + '=N' for k in fit)}")
        fit[key] = float(value)
    return fit


def features(run: Path, encoder_dir: str, model_dir: str | None, max_seq_length: int,
             batch_size: int) -> dict[str, Any]:
    from transformers import AutoModel, AutoTokenizer

    from xlre.data import DataConfig
    from xlre.data.relation_data import build_relation_data

    tokenizer = AutoTokenizer.from_pretrained(model_dir or encoder_dir)
    head = None
    if model_dir:
        from xlre.modeling.model import load_model_dir

        head, _ = load_model_dir(model_dir)
        head.eval()
        encoder = head.encoder
    else:
        encoder = AutoModel.from_pretrained(encoder_dir)
    encoder.eval()
    data = build_relation_data(run, tokenizer, DataConfig(max_seq_length=max_seq_length))
    relations = list(data.labels.relations)
    if head is not None and list(head.config.relations) != relations:
        raise SystemExit(f"{model_dir} was not trained on {run}'s relations; give its own run")
    out: dict[str, Any] = {"relations": np.array(relations)}
    for split in ("train", "dev"):
        ds = data.splits[split]
        ds = ds.select([i for i, bags in enumerate(ds["inst_bag"]) if bags])
        order = np.argsort([len(ids) for ids in ds["input_ids"]])
        feats, labels, bags, scores = [], [], [], []
        start = time.perf_counter()
        for k in range(0, len(order), batch_size):
            rows = ds.select(order[k:k + batch_size].tolist())
            width = max(len(ids) for ids in rows["input_ids"])
            ids = torch.full((len(rows), width), tokenizer.pad_token_id)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            seq, heads, tails = [], [], []
            for j, row in enumerate(rows):
                ids[j, :len(row["input_ids"])] = torch.tensor(row["input_ids"])
                mask[j, :len(row["input_ids"])] = 1
                for hs, he, ts, te, bag, lab in zip(
                        row["inst_head_start"], row["inst_head_end"], row["inst_tail_start"],
                        row["inst_tail_end"], row["inst_bag"], row["inst_labels"], strict=True):
                    seq.append(j)
                    heads.append((hs, he))
                    tails.append((ts, te))
                    bags.append(bag)
                    labels.append(lab)
            with torch.no_grad():
                hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
                seq_t, head_t, tail_t = torch.tensor(seq), torch.tensor(heads), torch.tensor(tails)
                positions = torch.arange(width)[None]

                def pool(spans: torch.Tensor, hidden: torch.Tensor = hidden,
                         seq_t: torch.Tensor = seq_t, positions: torch.Tensor = positions
                         ) -> torch.Tensor:
                    m = ((positions >= spans[:, :1]) & (positions < spans[:, 1:])).float()
                    return (torch.einsum("nt,nth->nh", m, hidden[seq_t])
                            / m.sum(1, keepdim=True).clamp(min=1))

                feats.append(torch.cat([pool(head_t), pool(tail_t)], -1).numpy())
                if head is not None:
                    x = head.pair_vectors(hidden, seq_t, head_t, tail_t)
                    scores.append(head.relation_scores(x).float().numpy())
            done = min(k + batch_size, len(order))
            print(f"{split}: {done}/{len(order)} sequences, {time.perf_counter() - start:.0f} s",
                  file=sys.stderr, flush=True)
        y = np.zeros((len(labels), len(relations)), dtype=np.uint8)
        for i, lab in enumerate(labels):
            y[i, lab] = 1
        out[f"{split}_X"] = np.concatenate(feats).astype(np.float32)
        out[f"{split}_Y"] = y
        out[f"{split}_bag"] = np.array(bags)
        if head is not None:
            out[f"{split}_model"] = np.concatenate(scores)
    return out


def scores_report(scores: np.ndarray, y: np.ndarray, bags: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import average_precision_score

    pos = y.sum(1) > 0
    aps = [average_precision_score(y[:, r], scores[:, r]) for r in range(y.shape[1])
           if y[:, r].any()]
    top = scores[pos].argmax(1)
    uniq, inv = np.unique(bags, return_inverse=True)
    bag_scores = np.full((len(uniq), y.shape[1]), -np.inf)
    bag_y = np.zeros((len(uniq), y.shape[1]))
    np.maximum.at(bag_scores, inv, scores)
    np.maximum.at(bag_y, inv, y)
    bag_pos = bag_y.sum(1) > 0
    bag_top = bag_scores[bag_pos].argmax(1)
    return {
        "micro_AP": round(float(average_precision_score(y.ravel(), scores.ravel())), 4),
        "macro_AP": round(float(np.mean(aps)), 4),
        "top1_correct_on_positive_instances": round(float(y[pos][np.arange(pos.sum()), top].mean()), 4),
        "distinct_top1_relations": len(set(top.tolist())),
        "top1_correct_on_positive_bags": round(
            float(bag_y[bag_pos][np.arange(bag_pos.sum()), bag_top].mean()), 4),
    }


def fit_probe(x: np.ndarray, y: np.ndarray, fit: dict[str, float], seed: int) -> torch.nn.Linear:
    torch.manual_seed(seed)
    xt, yt = torch.tensor(x), torch.tensor(y, dtype=torch.float32)
    probe = torch.nn.Linear(xt.shape[1], yt.shape[1])
    opt = torch.optim.AdamW(probe.parameters(), lr=fit["lr"], weight_decay=fit["wd"])
    batch, steps = int(fit["batch"]), 0
    for _ in range(int(fit["epochs"])):
        perm = torch.randperm(len(xt))
        for k in range(0, len(xt), batch):
            if fit["steps"] and steps >= fit["steps"]:
                return probe
            idx = perm[k:k + batch]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(probe(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            steps += 1
    return probe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", type=Path, required=True, help="annotation run directory")
    ap.add_argument("--encoder", required=True, help="pretrained encoder (tokenizer too)")
    ap.add_argument("--model", help="trained xlre model directory: probe its encoder")
    ap.add_argument("--cache", type=Path, help="features .npz: read if present, else written")
    ap.add_argument("--fit", action="append", default=[],
                    help="probe settings, e.g. lr=1e-2,steps=300,batch=64 (repeatable)")
    ap.add_argument("--max-seq-length", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    fits = [parse_fit(f) for f in args.fit or [""]]
    torch.set_num_threads(torch.get_num_threads())
    if args.cache and args.cache.is_file():
        data = dict(np.load(args.cache))
    else:
        data = features(args.run, args.encoder, args.model, args.max_seq_length,
                        args.batch_size)
        if args.cache:
            np.savez(args.cache, **data)
    y_train, y_dev, bags = data["train_Y"], data["dev_Y"], data["dev_bag"]
    rng = np.random.default_rng(args.seed)
    sample = data["train_X"][rng.choice(len(y_train), min(2000, len(y_train)), replace=False)]
    unit = sample / np.linalg.norm(sample, axis=1, keepdims=True)
    cos = unit @ unit.T
    result: dict[str, Any] = {
        "run": str(args.run), "features_of": args.model or args.encoder,
        "train_instances": len(y_train), "train_positive": int((y_train.sum(1) > 0).sum()),
        "dev_instances": len(y_dev), "dev_positive": int((y_dev.sum(1) > 0).sum()),
        "relations_in_dev": int((y_dev.sum(0) > 0).sum()),
        "mean_cosine_of_train_features": round(
            float((cos.sum() - len(unit)) / (len(unit) * (len(unit) - 1))), 3),
        "systems": {},
    }
    prior = np.tile(y_train.mean(0), (len(y_dev), 1))
    prior += 1e-9 * rng.random(prior.shape)  # ties broken at random, not by column order
    result["systems"]["train prior"] = scores_report(prior, y_dev, bags)
    if "dev_model" in data:
        result["systems"]["the model's own relation head"] = scores_report(
            data["dev_model"], y_dev, bags)
    for fit in fits:
        probe = fit_probe(data["train_X"], y_train, fit, args.seed)
        with torch.no_grad():
            scores = probe(torch.tensor(data["dev_X"])).numpy()
        name = "linear probe " + ",".join(f"{k}={v:g}" for k, v in fit.items())
        result["systems"][name] = scores_report(scores, y_dev, bags)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
