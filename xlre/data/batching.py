"""Batching: training units (bags or sentence pairs), the resumable epoch sampler and
the collator that pads units into tensors.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from xlre.data.config import DataError
from xlre.data.labels import IGNORE
from xlre.data.splits import GOLD_BAG_PREFIX


@dataclass(frozen=True)
class Unit:
    """What one training example is: rows of the sequence table and which instances.

    ``instances`` lists ``(row, instance_no)``; ``bag`` names the bag when the unit is
    a bag (bag attention applies over its instances), else ``None``.
    """

    rows: tuple[int, ...]
    instances: tuple[tuple[int, int], ...]
    bag: str | None


class TrainUnits:
    """Map-style dataset of training units; order comes from the sampler.

    ``mil="bag"``: one unit per bag (directed KB entity pair) holding its sentence pairs
    in both languages, at most ``max_bag_pairs`` of them per epoch (a deterministic
    sample from ``seed`` and the epoch); sequences with no instance form entity-only
    units, one per sentence pair. ``mil="sentence"``: one unit per sentence pair, with
    every instance in it.
    """

    def __init__(self, seqs: Any, mil: str, max_bag_pairs: int, seed: int) -> None:
        if mil not in ("bag", "sentence"):
            raise DataError(f"mil {mil!r} is not one of bag, sentence")
        self.mil = mil
        self.max_bag_pairs = max_bag_pairs
        self.seed = seed
        self.epoch = 0
        pair_rows: dict[str, list[int]] = defaultdict(list)
        bag_members: dict[str, dict[str, list[tuple[int, int]]]] = defaultdict(
            lambda: defaultdict(list))
        inst_rels: dict[tuple[int, int], tuple[int, ...]] = {}
        cols = seqs.select_columns(["pair_id", "inst_bag", "inst_labels"])
        row = 0
        for batch in cols.iter(batch_size=4096):
            for pair_id, bags, rels in zip(batch["pair_id"], batch["inst_bag"],
                                           batch["inst_labels"], strict=True):
                pair_rows[pair_id].append(row)
                for k, bag in enumerate(bags):
                    bag_members[bag][pair_id].append((row, k))
                    if rels[k]:
                        inst_rels[(row, k)] = tuple(rels[k])
                row += 1
        self.units: list[tuple[str | None, list[tuple[str, list[tuple[int, int]], list[int]]]]]
        self.units = []
        if mil == "sentence":
            inst_of_row: dict[int, list[tuple[int, int]]] = defaultdict(list)
            for members in bag_members.values():
                for insts in members.values():
                    for r, k in insts:
                        inst_of_row[r].append((r, k))
            for pair_id, rows in pair_rows.items():
                insts = sorted(ik for r in rows for ik in inst_of_row.get(r, []))
                self.units.append((None, [(pair_id, insts, rows)]))
        else:
            with_instances: set[int] = set()
            # Gold instances (each its own bag) train sentence by sentence: both ordered
            # pairs of a marked sentence in one unit, so the sentence is encoded once.
            gold_units: dict[str, list[tuple[int, int]]] = defaultdict(list)
            for bag in sorted(b for b in bag_members if b.startswith(GOLD_BAG_PREFIX)):
                for pair_id, insts in bag_members.pop(bag).items():
                    gold_units[pair_id].extend(insts)
            for pair_id, insts in gold_units.items():
                rows = sorted({r for r, _ in insts})
                with_instances.update(rows)
                self.units.append((None, [(pair_id, sorted(insts), rows)]))
            for bag in sorted(bag_members):
                groups = []
                for pair_id in sorted(bag_members[bag]):
                    insts = bag_members[bag][pair_id]
                    rows = sorted({r for r, _ in insts})
                    with_instances.update(rows)
                    groups.append((pair_id, insts, rows))
                self.units.append((bag, groups))
            for pair_id, rows in pair_rows.items():
                free = [r for r in rows if r not in with_instances]
                if free:
                    self.units.append((None, [(pair_id, [], free)]))
        #: Per unit, the relations of its instances (empty: a negative unit, NA pairs or
        #: entities only).
        self.relations: list[frozenset[int]] = [
            frozenset(rel for _, insts, _ in groups for ik in insts
                      for rel in inst_rels.get(ik, ()))
            for _, groups in self.units]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def balanced(self, max_per_relation: int = 0, negatives_per_positive: float = 0.0,
                 ) -> Callable[[int], list[int]] | None:
        """The units an epoch trains on, as a function of the epoch (``None``: all).

        ``max_per_relation``: at most this many positive units per relation, a unit
        counted under its rarest relation, so a relation that fills most of the labels
        (P530 and P47 on news) does not fill most of the steps. ``negatives_per_positive``:
        at most this many negative units (NA pairs or entities only) per positive unit
        kept. Each epoch draws a fresh deterministic sample from ``seed`` and the epoch,
        always of the same size, so over epochs every unit is seen and a resumed epoch
        replays its order.
        """
        if max_per_relation < 0 or negatives_per_positive < 0:
            raise DataError("max_per_relation and negatives_per_positive must be 0 or more")
        if not max_per_relation and not negatives_per_positive:
            return None
        count: dict[int, int] = defaultdict(int)
        for rels in self.relations:
            for rel in rels:
                count[rel] += 1
        by_rel: dict[int, list[int]] = defaultdict(list)
        negatives: list[int] = []
        for i, rels in enumerate(self.relations):
            if rels:
                by_rel[min(rels, key=lambda r: (count[r], r))].append(i)
            else:
                negatives.append(i)
        n_pos = sum(min(len(us), max_per_relation) if max_per_relation else len(us)
                    for us in by_rel.values())
        n_neg = len(negatives)
        if negatives_per_positive:
            n_neg = min(n_neg, round(negatives_per_positive * n_pos))
        seed = self.seed

        def select(epoch: int) -> list[int]:
            chosen: list[int] = []
            for rel in sorted(by_rel):
                us = by_rel[rel]
                if max_per_relation and len(us) > max_per_relation:
                    us = random.Random(f"{seed}:cap:{epoch}:{rel}").sample(us, max_per_relation)
                chosen.extend(us)
            if n_neg < len(negatives):
                chosen.extend(random.Random(f"{seed}:neg:{epoch}").sample(negatives, n_neg))
            else:
                chosen.extend(negatives)
            return sorted(chosen)

        return select

    def lengths(self, seqs: Any) -> list[int]:
        """Per unit, the most subwords of any of its sequences (for length grouping)."""
        row_len: list[int] = []
        for batch in seqs.select_columns(["input_ids"]).iter(batch_size=4096):
            row_len.extend(len(ids) for ids in batch["input_ids"])
        return [max((row_len[r] for _, _, rows in groups for r in rows), default=0)
                for _, groups in self.units]

    def __len__(self) -> int:
        return len(self.units)

    def __getitem__(self, i: int) -> Unit:
        bag, groups = self.units[i]
        if bag is not None and len(groups) > self.max_bag_pairs:
            rng = random.Random(f"{self.seed}:{self.epoch}:{i}")
            groups = sorted(rng.sample(groups, self.max_bag_pairs))
        rows = sorted({r for _, _, rs in groups for r in rs})
        insts = tuple(sorted(i for _, ins, _ in groups for i in ins))
        return Unit(tuple(rows), insts, bag)


class EpochSampler:
    """A permutation of ``range(n)`` drawn from ``seed`` and the epoch: resumable order.
    With ``select`` (epoch -> item indices, always as many), a permutation of its items.

    With ``lengths`` (one per item) the permutation is cut into groups of
    ``group_size`` items, each sorted longest first, so consecutive batches hold items of
    similar length and little of a batch is padding; the groups stay random.
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True,
                 lengths: Sequence[int] | None = None, group_size: int = 0,
                 select: Callable[[int], list[int]] | None = None) -> None:
        if lengths is not None and len(lengths) != n:
            raise ValueError(f"{len(lengths)} lengths for {n} items")
        self.select = select
        self.n = len(select(0)) if select is not None else n
        self.seed = seed
        self.shuffle = shuffle
        self.lengths = lengths
        self.group_size = group_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        order = self.select(self.epoch) if self.select is not None else list(range(self.n))
        if len(order) != self.n:
            raise RuntimeError(f"epoch {self.epoch} selected {len(order)} items, not {self.n}")
        if self.shuffle:
            random.Random(f"{self.seed}:order:{self.epoch}").shuffle(order)
        if self.lengths is not None and self.group_size > 1:
            lengths = self.lengths
            order = [i for g in range(0, self.n, self.group_size)
                     for i in sorted(order[g:g + self.group_size], key=lambda i: -lengths[i])]
        return iter(order)


class Collator:
    """Builds padded tensors from units (training) or row indices (evaluation).

    Output keys: ``input_ids``, ``attention_mask``, ``entity_labels`` (B x T);
    ``inst_seq``, ``inst_head``, ``inst_tail`` (N, N x 2, N x 2), ``inst_labels``
    (N x R multi-hot); ``bag_index`` (nB x L, -1 padded) and ``bag_labels`` (nB x R);
    ``agree_index`` (M x 2: a source instance and its projected target instance);
    ``rows`` (the sequence-table rows in the batch, for evaluation).
    """

    def __init__(self, seqs: Any, num_relations: int, pad_id: int) -> None:
        self.seqs = seqs
        self.num_relations = num_relations
        self.pad_id = pad_id

    def __call__(self, items: Sequence[Unit | int]) -> dict[str, Any]:
        units = [u if isinstance(u, Unit) else Unit((int(u),), (), None) for u in items]
        eval_mode = not any(isinstance(u, Unit) for u in items)
        rows = sorted({r for u in units for r in u.rows})
        pos = {r: i for i, r in enumerate(rows)}
        data = self.seqs[rows]
        length = max(len(x) for x in data["input_ids"])
        input_ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(rows), length), dtype=torch.long)
        ent = torch.full((len(rows), length), IGNORE, dtype=torch.long)
        for i, (ids, labs) in enumerate(zip(data["input_ids"], data["entity_labels"],
                                            strict=True)):
            input_ids[i, : len(ids)] = torch.tensor(ids)
            attention[i, : len(ids)] = 1
            ent[i, : len(labs)] = torch.tensor(labs)
        # Instances: every instance of every row in evaluation; the unit's in training.
        inst_list: list[tuple[int, int]] = []
        if eval_mode:
            inst_list = [(r, k) for r in rows for k in range(len(data["inst_bag"][pos[r]]))]
        else:
            seen: set[tuple[int, int]] = set()
            for u in units:
                for ik in u.instances:
                    if ik not in seen:
                        seen.add(ik)
                        inst_list.append(ik)
        inst_at = {ik: n for n, ik in enumerate(inst_list)}
        n = len(inst_list)
        inst_seq = torch.tensor([pos[r] for r, _ in inst_list], dtype=torch.long)
        head = torch.zeros((n, 2), dtype=torch.long)
        tail = torch.zeros((n, 2), dtype=torch.long)
        labels = torch.zeros((n, self.num_relations), dtype=torch.float)
        for j, (r, k) in enumerate(inst_list):
            p = pos[r]
            head[j, 0] = data["inst_head_start"][p][k]
            head[j, 1] = data["inst_head_end"][p][k]
            tail[j, 0] = data["inst_tail_start"][p][k]
            tail[j, 1] = data["inst_tail_end"][p][k]
            for rel in data["inst_labels"][p][k]:
                labels[j, rel] = 1.0
        bags = [u for u in units if u.bag is not None and u.instances]
        width = max((len(u.instances) for u in bags), default=0)
        bag_index = torch.full((len(bags), width), -1, dtype=torch.long)
        bag_labels = torch.zeros((len(bags), self.num_relations), dtype=torch.float)
        for b, u in enumerate(bags):
            members = [inst_at[ik] for ik in u.instances]
            bag_index[b, : len(members)] = torch.tensor(members)
            bag_labels[b] = labels[members].amax(dim=0)
        # Agreement: the same KB pair in the source and the target of one sentence pair.
        by_key: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
        for j, (r, k) in enumerate(inst_list):
            p = pos[r]
            key = (data["pair_id"][p], data["inst_bag"][p][k])
            by_key[key].setdefault(data["side"][p], j)
        agree = [(d["src"], d["tgt"]) for d in by_key.values() if "src" in d and "tgt" in d]
        return {
            "input_ids": input_ids,
            "attention_mask": attention,
            "entity_labels": ent,
            "inst_seq": inst_seq,
            "inst_head": head,
            "inst_tail": tail,
            "inst_labels": labels,
            "bag_index": bag_index,
            "bag_labels": bag_labels,
            "agree_index": torch.tensor(agree, dtype=torch.long).reshape(-1, 2),
            "rows": torch.tensor(rows, dtype=torch.long),
        }


def iter_bags(seqs: Any) -> dict[str, list[tuple[int, int]]]:
    """Every bag of a split: bag key -> ``(row, instance_no)`` of its instances."""
    bags: dict[str, list[tuple[int, int]]] = defaultdict(list)
    row = 0
    for batch in seqs.select_columns(["inst_bag"]).iter(batch_size=4096):
        for names in batch["inst_bag"]:
            for k, bag in enumerate(names):
                bags[bag].append((row, k))
            row += 1
    return dict(bags)
