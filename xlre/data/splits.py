"""Splits by KB fact.

Each unordered KB pair ``{h, t}`` is hashed (with ``split_seed``) to train, dev or test.
A sentence pair (both languages together, so a translation never lands in another split
than its source) goes to the most held-out split (test > dev > train) among the pairs it
holds; instances of pairs hashed to another split are dropped from it and counted
(``instances_dropped_split``). So no sentence appears in two splits.

``DataConfig.split_rule`` says which pairs count:

* ``facts`` (the default): only *fact pairs*, those with a relation label somewhere in
  the run, in either direction. No KB fact is labelled in two splits; a pair with no
  fact (an NA pair) may appear in several, as a negative, and never moves a sentence.
  A sentence pair with no fact pair is hashed by its own id.
* ``pairs``: every entity pair, NA pairs too, so not even an NA pair crosses splits.
  Entity-dense text loses much more to it: on news-en-zh (34k mentions, 62k records) it
  dropped 40,179 of 80,109 instances, 8,029 of them labelled, against 4,158 labelled
  ones (and no NA ones) under ``facts``. Models trained before ``split_rule`` existed
  used this rule, and are evaluated with it.
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


class PairSplits(dict[str, str]):
    """Sentence pair id -> split, plus the unordered keys that decide splits
    (``fact_keys``: the fact pairs under ``split_rule="facts"``; ``None``: every pair)."""

    def __init__(self, splits: dict[str, str], fact_keys: frozenset[str] | None) -> None:
        super().__init__(splits)
        self.fact_keys = fact_keys

    def decides(self, key: str) -> bool:
        """Whether the unordered pair ``key`` is held to its own split."""
        return self.fact_keys is None or key in self.fact_keys


def scan_run(raw: Any, config: DataConfig) -> tuple[LabelMaps, PairSplits, dict[str, Any]]:
    """Two passes over a run's records: the label maps, the fact pairs, then the split of
    every sentence pair (a :class:`PairSplits`), and counts."""
    types: set[str] = set()
    relations: set[str] = set()
    facts: set[str] = set()
    counts: Counter[str] = Counter()
    fixed_col = "fixed_split" in raw.column_names
    columns = ["pair_id", "side", "entities", "relations", *(["fixed_split"] if fixed_col else [])]

    def records():
        for batch in raw.select_columns(columns).iter(batch_size=2048):
            fixed_splits = batch["fixed_split"] if fixed_col else [""] * len(batch["pair_id"])
            yield from zip(batch["pair_id"], batch["side"], batch["entities"], batch["relations"],
                           fixed_splits, strict=True)

    for _pair_id, side, ents, rels, fixed in records():
        counts[f"records_{side}"] += 1
        types.update(entity_type(e) for e in ents)
        labelled = [r for r in rels if r["relation"] != NA]
        relations.update(r["relation"] for r in labelled)
        if fixed:
            counts["records_marked"] += 1
        else:
            facts.update(unordered_key(r["bag"]) for r in labelled)
    if not types:
        raise DataError(
            "the run has no entities at all, so there is nothing to learn; check the KB "
            "aliases against the corpus (xlre runs show RUN_DIR)"
        )
    splits = PairSplits({}, frozenset(facts) if config.split_rule == "facts" else None)
    fixed_pairs: dict[str, str] = {}
    deciding: set[str] = set()  # pairs that hold a pair that decides
    for pair_id, _side, _ents, rels, fixed in records():
        if fixed:  # a gold record: the user chose its split
            fixed_pairs[pair_id] = fixed
            continue
        best = splits.get(pair_id, "train")
        for r in rels:
            key = unordered_key(r["bag"])
            if not splits.decides(key):
                continue
            deciding.add(pair_id)
            split = split_of_key(key, config.dev_fraction, config.test_fraction, config.split_seed)
            if _SPLIT_RANK[split] > _SPLIT_RANK[best]:
                best = split
        splits[pair_id] = best
    for pair_id in splits:
        if pair_id not in deciding:  # no pair decides: the sentence pair goes by its own id
            splits[pair_id] = split_of_key(f"pair:{pair_id}", config.dev_fraction,
                                           config.test_fraction, config.split_seed)
    splits.update(fixed_pairs)
    labels = LabelMaps(tuple(sorted(types)), tuple(sorted(relations)))
    counts.update(f"pairs_{s}" for s in splits.values())
    return labels, splits, dict(counts)
