"""A hand-made KB and EN-FR corpus for KB, linking and annotation tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

ENTITIES = [
    {"id": "Q90", "type": "LOC", "labels": {"en": ["Paris"], "fr": ["Paris"]}},
    {"id": "Q142", "type": "LOC", "labels": {"en": ["France"], "fr": ["France"]}},
    {"id": "Q64", "type": "LOC", "labels": {"en": ["Berlin"], "fr": ["Berlin"]}},
    {"id": "Q183", "type": "LOC", "labels": {"en": ["Germany"], "fr": ["Allemagne"]}},
    {"id": "Q994", "type": "LOC", "labels": {"en": ["Tbilisi"], "fr": ["Tbilissi"]}},
    # two entities share the alias "Georgia"
    {"id": "Q230", "type": "LOC", "labels": {"en": ["Georgia"], "fr": ["Géorgie"]}},
    {"id": "Q1428", "type": "LOC", "labels": {"en": ["Georgia", "GA"], "fr": ["Géorgie"]}},
    {"id": "X1", "type": "PER", "labels": {"en": ["Anna Weber", "can"], "fr": ["Anna Weber"]}},
]
RELATIONS = [
    {"id": "P17", "labels": {"en": "country", "fr": "pays"}},
    {"id": "P1376", "labels": {"en": "capital of", "fr": "capitale de"}},
    {"id": "P19", "labels": {"en": "place of birth"}},
]
TRIPLES = [
    ("Q90", "P17", "Q142"), ("Q90", "P1376", "Q142"), ("Q64", "P17", "Q183"),
    ("Q64", "P1376", "Q183"), ("Q994", "P17", "Q230"), ("X1", "P19", "Q64"),
]
TEMPLATES = [
    ("{a} is the capital of {b} .", "{a} est la capitale de la {b} ."),
    ("Anna Weber was born in Berlin .", "Anna Weber est née à Berlin ."),
    ("Anna Weber visited Paris .", "Anna Weber a visité Paris ."),
    ("Tbilisi is a city in Georgia .", "Tbilissi est une ville de Géorgie ."),
    ("We saw the old city today .", "Nous avons vu la vieille ville aujourd'hui ."),
]


def write_kb(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "entities.jsonl").write_text("".join(json.dumps(e) + "\n" for e in ENTITIES), encoding="utf-8")
    (path / "relations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RELATIONS), encoding="utf-8")
    (path / "triples.tsv").write_text("".join("\t".join(t) + "\n" for t in TRIPLES), encoding="utf-8")
    return path


def write_corpus(path: Path, n: int = 120) -> Path:
    rng = random.Random(0)
    lines = []
    for k in range(n):
        en, fr = TEMPLATES[k % len(TEMPLATES)]
        a, b, fb = rng.choice([("Paris", "France", "France"), ("Berlin", "Germany", "Allemagne")])
        lines.append(f"p{k}\t{en.format(a=a, b=b)}\t{fr.format(a=a, b=fb)}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path

