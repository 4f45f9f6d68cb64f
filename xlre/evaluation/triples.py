"""Score extracted triples against your own gold triples, per language.

Gold is JSONL, one document per line (the format of
``corpora/demo-en-fr/heldout-gold.jsonl``)::

    {"id": "doc-1", "lang": "fr", "text": "...",
     "triples": [{"subject": "Q90", "relation": "P17", "object": "Q142"}]}

``subject`` and ``object`` are KB ids, or surface texts for entities outside the KB. A
predicted triple (``xlre extract`` output, run on the same documents with the gold
``id`` and ``lang``) is correct when its document and language match, its relation is
the same, and each argument matches by KB id or, failing that, by normalised text.
Matching is one to one within a document: a gold fact is credited to one prediction at
most (a linked ``Q90`` and an unlinked ``Paris`` hitting the same fact count once), and
``correct`` is the largest number of such pairs (a maximum bipartite matching; where
there is a choice, predictions matching by KB id are credited first). A
document with an empty list states no fact: anything predicted there is a false
positive. Predicted triples for documents the gold does not list are ignored (counted).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from alignment.errors import UserError
from alignment.textfile import strict_lines
from xlre.kg import normalise, read_triples
from xlre.records import Argument


class ScoreError(UserError, ValueError):
    """The gold file is malformed; the message names the file, the line and the fix."""


def read_gold(path: str | Path) -> dict[tuple[str, str], set[tuple[str, str, str]]]:
    """Gold facts per (document id, language)."""
    gold: dict[tuple[str, str], set[tuple[str, str, str]]] = {}
    for line_no, line in strict_lines(path):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
            key = (str(obj["id"]), str(obj["lang"]))
            facts = {(str(t["subject"]), str(t["relation"]), str(t["object"]))
                     for t in obj["triples"]}
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ScoreError(
                f"{path}:{line_no}: not a gold document ({type(exc).__name__}: {exc}). "
                'Fix: write {"id", "lang", "triples": [{"subject", "relation", '
                '"object"}]} on each line'
            ) from None
        if key in gold:
            raise ScoreError(f"{path}:{line_no}: document {key[0]!r} in {key[1]!r} appears "
                             "twice; give each (id, lang) one line")
        gold[key] = facts
    return gold


def _matches(arg: Argument, gold: str) -> bool:
    return arg.kb_id == gold or normalise(arg.text) == normalise(gold)


def _id_matches(t: Any, fact: tuple[str, str, str]) -> int:
    """How many of ``t``'s arguments match ``fact`` by KB id (0, 1 or 2)."""
    return (t.subject.kb_id == fact[0]) + (t.object.kb_id == fact[2])


def matched_pairs(preds: list[Any], facts: Iterable[tuple[str, str, str]]) -> dict[int, int]:
    """A maximum one-to-one matching of predictions to the gold facts they match, as
    ``{index in sorted(facts): index in preds}`` (augmenting paths). Predictions with more
    arguments matching by KB id are tried first, and try such facts first."""
    facts = sorted(facts)
    edges = [
        [
            j
            for j, (s, r, o) in enumerate(facts)
            if r == t.relation and _matches(t.subject, s) and _matches(t.object, o)
        ]
        for t in preds
    ]
    for i, t in enumerate(preds):
        edges[i].sort(key=lambda j, t=t: -_id_matches(t, facts[j]))
    best = [
        max((_id_matches(t, facts[j]) for j in edges[i]), default=-1) for i, t in enumerate(preds)
    ]
    owner: dict[int, int] = {}
    for start in sorted(range(len(preds)), key=lambda i: -best[i]):
        # Depth-first search for an augmenting path, with an explicit stack.
        seen: set[int] = set()
        stack = [(start, iter(edges[start]))]
        via: list[int] = []  # via[k]: the fact stack[k + 1]'s prediction gives up
        while stack:
            i, todo = stack[-1]
            for j in todo:
                if j in seen:
                    continue
                seen.add(j)
                if j not in owner:
                    owner[j] = i
                    for k in range(len(via) - 1, -1, -1):
                        owner[via[k]] = stack[k][0]
                    stack = []
                    break
                via.append(j)
                stack.append((owner[j], iter(edges[owner[j]])))
                break
            else:
                stack.pop()
                if via:
                    via.pop()
    return owner


def score_triples(gold_path: str | Path, triples: Iterable[str | Path]) -> dict[str, Any]:
    """Precision, recall and F1 per language and for ``all``."""
    gold = read_gold(gold_path)
    predicted: dict[tuple[str, str], list[Any]] = {}
    ignored = 0
    for t in read_triples(triples):
        key = (t.evidence.doc_id, t.evidence.lang)
        if key not in gold:
            ignored += 1
            continue
        predicted.setdefault(key, []).append(t)
    counts: dict[str, list[int]] = {}
    for key, facts in gold.items():
        seen: set[tuple[str, str, str]] = set()
        distinct = []
        for t in predicted.get(key, []):
            sig = (t.subject.kb_id or normalise(t.subject.text), t.relation,
                   t.object.kb_id or normalise(t.object.text))
            if sig in seen:  # the same fact twice in one document counts once
                continue
            seen.add(sig)
            distinct.append(t)
        # One to one: a gold fact is credited to one prediction at most.
        correct, n_pred = len(matched_pairs(distinct, facts)), len(distinct)
        for lang in (key[1], "all"):
            c = counts.setdefault(lang, [0, 0, 0])
            c[0] += correct
            c[1] += n_pred
            c[2] += len(facts)
    out: dict[str, Any] = {}
    for lang in sorted(counts, key=lambda x: (x == "all", x)):
        correct, n_pred, n_gold = counts[lang]
        p = correct / n_pred if n_pred else 0.0
        r = correct / n_gold if n_gold else 0.0
        out[lang] = {"precision": round(p, 4), "recall": round(r, 4),
                     "f1": round(2 * p * r / (p + r), 4) if p + r else 0.0,
                     "correct": correct, "predicted": n_pred, "gold": n_gold}
    out["ignored_predictions"] = ignored
    return out
