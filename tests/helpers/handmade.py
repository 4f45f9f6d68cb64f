"""Hand-made annotation runs for model tests: a few sentence pairs, written by hand."""

from __future__ import annotations

import json
from pathlib import Path

from tests.helpers.tiny_models import EN_FR_PAIRS, build_tiny_xlmr
from xlre.data import DataConfig, LabelMaps

# (pair_id, (en words, fr words), entities [(en_span, fr_span, kb_id, type)],
#  relations [(head, tail, relation)] over the entity list)
PAIRS = (
    (
        "hm-1",
        ("Alice Martin was born in Paris .", "Alice Martin est née à Paris ."),
        [((0, 2), (0, 2), "X1", "PER"), ((5, 6), (5, 6), "Q90", "LOC")],
        [(0, 1, "P19"), (1, 0, "NA")],
    ),
    (
        "hm-2",
        ("Paris is a city in France .", "Paris est une ville de France ."),
        [((0, 1), (0, 1), "Q90", "LOC"), ((5, 6), (5, 6), "Q142", "LOC")],
        [(0, 1, "P17"), (1, 0, "NA")],
    ),
    (
        "hm-3",
        ("Bob Stone works for Acme Corp .", "Bob Stone travaille pour Acme Corp ."),
        [((0, 2), (0, 2), "X2", "PER"), ((4, 6), (4, 6), "X3", "ORG")],
        [(0, 1, "P108"), (1, 0, "NA")],
    ),
)


def record(pair_id: str, line_no: int, side: str, lang: str, text: str,
           entities: list[tuple[tuple[int, int], str, str]],
           relations: list[tuple[int, int, str]]) -> dict:
    """A run record for whitespace-tokenised ``text`` (the format of xlre.annotate)."""
    words = text.split(" ")
    starts, ends, pos = [], [], 0
    for w in words:
        starts.append(pos)
        ends.append(pos + len(w))
        pos += len(w) + 1
    ents = [
        {"char_start": starts[s], "char_end": ends[e - 1], "tok_start": s, "tok_end": e,
         "text": text[starts[s]:ends[e - 1]], "kb_id": kb, "label": typ,
         "source": "kb" if side == "src" else "projected"}
        for (s, e), kb, typ in entities
    ]
    rels = [
        {"head": h, "tail": t, "relation": r, "source": "distant" if side == "src" else "projected",
         "bag": f"{ents[h]['kb_id']}|{ents[t]['kb_id']}"}
        for h, t, r in relations
    ]
    return {"pair_id": pair_id, "line_no": line_no, "side": side, "lang": lang, "text": text,
            "tokens": words, "token_starts": starts, "token_ends": ends,
            "entities": ents, "relations": rels}


def write_run(run_dir: Path, pairs=PAIRS, repeat: int = 1) -> Path:
    """Write ``pairs`` (``repeat`` times each, with fresh ids) as a one-shard run."""
    shard = Path(run_dir) / "shards"
    shard.mkdir(parents=True, exist_ok=True)
    lines = []
    n = 0
    for k in range(repeat):
        for pair_id, (en, fr), ents, rels in pairs:
            n += 1
            pid = pair_id if repeat == 1 else f"{pair_id}-{k}"
            lines.append(record(pid, n, "src", "en", en, [(e[0], e[2], e[3]) for e in ents], rels))
            lines.append(record(pid, n, "tgt", "fr", fr, [(e[1], e[2], e[3]) for e in ents], rels))
    (shard / "shard-00000.jsonl").write_text(
        "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    (Path(run_dir) / "manifest.json").write_text(json.dumps({"config": {}}), encoding="utf-8")
    return Path(run_dir)


#: The label maps of :data:`PAIRS`.
LABELS = LabelMaps(("LOC", "ORG", "PER"), ("P108", "P17", "P19"))


def build_hand_encoder(out_dir: Path) -> Path:
    """A tiny XLM-R whose tokenizer is trained on :data:`PAIRS` and ``EN_FR_PAIRS``."""
    texts = [s for _, p, _, _ in PAIRS for s in p] + [s for p in EN_FR_PAIRS for s in p]
    return build_tiny_xlmr(out_dir, corpus=texts)


def data_config(**kw: object) -> DataConfig:
    """Data settings for hand-made runs: everything in train, 128 subwords."""
    return DataConfig(**{"dev_fraction": 0.0, "test_fraction": 0.0, "max_seq_length": 128, **kw})
