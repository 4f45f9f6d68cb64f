"""Splits by KB entity pair.

Each unordered KB pair ``{h, t}`` is hashed (with ``split_seed``) to train, dev or test.
A sentence pair (both languages together, so a translation never lands in another split
than its source) goes to the most held-out split among its pairs (test > dev > train);
instances of pairs from another split are dropped from it and counted
(``instances_dropped_split``). So no KB fact is labelled in two splits, and no sentence
appears in two.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Any

from xlre.data.config import DataConfig, DataError
from xlre.data.labels import LabelMaps, entity_type
from xlre.records import NA

#: Bags of gold marked records (xlre.data.gold) start with this; they are never hashed to a
#: split or bagged with distant instances.
GOLD_BAG_PREFIX = "gold:"


SPLITS = ("train", "dev", "test")
_SPLIT_RANK = {name: i for i, name in enumerate(SPLITS)}


def unordered_key(bag: str) -> str:
    return "|".join(sorted(bag.split("|")))


def split_of_key(key: str, dev_fraction: float, test_fraction: float, seed: int) -> str:
    """The split of an unordered KB entity pair: a stable hash, independent of order."""
    digest = hashlib.sha1(f"{seed}\x00{key}".encode()).digest()
    u = int.from_bytes(digest[:8], "big") / 2**64
    if u < test_fraction:
        return "test"
    if u < test_fraction + dev_fraction:
        return "dev"
    return "train"


def scan_run(raw: Any, config: DataConfig) -> tuple[LabelMaps, dict[str, str], dict[str, Any]]:
    """One pass over a run's records: label maps, the split of every sentence pair, counts."""
    types: set[str] = set()
    relations: set[str] = set()
    pair_split: dict[str, str] = {}
    counts: Counter[str] = Counter()
    fixed_col = "fixed_split" in raw.column_names
    cols = raw.select_columns(["pair_id", "side", "entities", "relations",
                               *(["fixed_split"] if fixed_col else [])])
    for batch in cols.iter(batch_size=2048):
        fixed_splits = batch["fixed_split"] if fixed_col else [""] * len(batch["pair_id"])
        for pair_id, side, ents, rels, fixed in zip(
            batch["pair_id"], batch["side"], batch["entities"], batch["relations"],
            fixed_splits, strict=True
        ):
            counts[f"records_{side}"] += 1
            types.update(entity_type(e) for e in ents)
            if fixed:  # a gold record: the user chose its split
                pair_split[pair_id] = fixed
                relations.update(r["relation"] for r in rels if r["relation"] != NA)
                counts["records_marked"] += 1
                continue
            best = pair_split.get(pair_id, "train")
            for r in rels:
                if r["relation"] != NA:
                    relations.add(r["relation"])
                split = split_of_key(
                    unordered_key(r["bag"]), config.dev_fraction, config.test_fraction,
                    config.split_seed,
                )
                if _SPLIT_RANK[split] > _SPLIT_RANK[best]:
                    best = split
            if not rels and pair_id not in pair_split:
                # A pair with no KB pair at all goes by its own id.
                best = split_of_key(
                    f"pair:{pair_id}", config.dev_fraction, config.test_fraction,
                    config.split_seed,
                )
            if _SPLIT_RANK[best] > _SPLIT_RANK[pair_split.get(pair_id, "train")]:
                pair_split[pair_id] = best
            else:
                pair_split.setdefault(pair_id, best)
    if not types:
        raise DataError(
            "the run has no entities at all, so there is nothing to learn; check the KB "
            "aliases against the corpus (xlre runs show RUN_DIR)"
        )
    labels = LabelMaps(tuple(sorted(types)), tuple(sorted(relations)))
    counts.update(f"pairs_{s}" for s in pair_split.values())
    return labels, pair_split, dict(counts)
