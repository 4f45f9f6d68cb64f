"""Training data from an annotation run: subword features, splits by KB entity pair, bags.

Consumes a run directory (:mod:`xlre.annotate`) and a tokenizer; produces a
``datasets.DatasetDict`` of *sequences* (``train`` / ``dev`` / ``test``), one row per
encoder input:

* ``relation_repr="pooling"``: one sequence per sentence, carrying every entity pair of
  the sentence as a relation *instance* (subword spans of head and tail);
* ``relation_repr="markers"``: one plain sequence per sentence for the entity head (as
  extraction tags plain text), plus one sequence per entity pair with typed entity
  markers (``<h:PER>`` ... ``</h:PER>``, ``<t:LOC>`` ... ``</t:LOC>``, real special
  tokens) around head and tail; the instance's spans point at the two opening markers.
* ``relation_repr="punct"``: like ``markers``, but the markers are punctuation the
  encoder already knows (``@`` around the pair's first entity in the text, ``#`` around
  the second, after Zhou and Chen 2021), and one marked sequence per *unordered* pair
  carries both directions: the head's marker comes first in the instance vector. Nothing
  is added to the vocabulary, so the word embeddings may stay frozen, and a pair costs
  one sequence, not two.

Entity labels are BIO over the first subword of each word (other subwords get -100).

**Splits, by KB entity pair.** Each unordered KB pair ``{h, t}`` is hashed (with
``split_seed``) to train, dev or test. A sentence pair (both languages together, so a
translation never lands in another split than its source) goes to the most held-out split
among its pairs (test > dev > train); instances of pairs from another split are dropped
from it and counted (``instances_dropped_split``). So no KB fact is labelled in two
splits, and no sentence appears in two.

**Long sentences** are never cut: a sentence whose subwords do not fit ``max_seq_length``
is split into overlapping windows; each word is labelled in exactly one window; an entity
pair goes to the first window that holds both entities, and pairs no window can hold are
dropped and counted (``instances_dropped_too_far``). A single word longer than a window
makes its sentence unusable: it is counted (``sentences_unfittable``), never truncated.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xlre.records import NA

#: Bags of gold marked records (xlre.gold) start with this; they are never hashed to a
#: split or bagged with distant instances.
GOLD_BAG_PREFIX = "gold:"

logger = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
_SPLIT_RANK = {name: i for i, name in enumerate(SPLITS)}
RELATION_REPRS = ("pooling", "markers", "punct")
#: ``relation_repr="punct"``: the words around the first and the second entity of a pair.
PUNCT_MARKERS = ("@", "#")
IGNORE = -100


class DataError(ValueError):
    """The run cannot be turned into training data; the message says why and the fix."""


@dataclass(frozen=True)
class DataConfig:
    """How a run becomes sequences. Written into the training config."""

    max_seq_length: int = 256
    dev_fraction: float = 0.1
    test_fraction: float = 0.1
    split_seed: int = 13
    relation_repr: str = "pooling"
    #: In bag training, at most this many sentence pairs of a bag go into one step
    #: (a fresh deterministic sample each epoch).
    max_bag_pairs: int = 4

    def __post_init__(self) -> None:
        if self.relation_repr not in RELATION_REPRS:
            raise DataError(
                f"relation_repr {self.relation_repr!r} is not one of {', '.join(RELATION_REPRS)}"
            )
        if not 0 <= self.dev_fraction < 1 or not 0 <= self.test_fraction < 1:
            raise DataError("dev_fraction and test_fraction must each lie in [0, 1)")
        if self.dev_fraction + self.test_fraction >= 1:
            raise DataError(
                f"dev_fraction + test_fraction = {self.dev_fraction + self.test_fraction} "
                "leaves nothing to train on; keep their sum below 1"
            )
        if self.max_seq_length < 16:
            raise DataError(f"max_seq_length {self.max_seq_length} is too small; use 16 or more")
        if self.max_bag_pairs < 1:
            raise DataError(f"max_bag_pairs must be at least 1, got {self.max_bag_pairs}")


@dataclass(frozen=True)
class LabelMaps:
    """Entity types and relations a model knows; stored in the model config."""

    entity_types: tuple[str, ...]
    relations: tuple[str, ...]  # without NA: "no relation" is no label at all
    na: str = NA

    @property
    def bio(self) -> list[str]:
        return ["O"] + [f"{p}-{t}" for t in self.entity_types for p in ("B", "I")]

    def marker_tokens(self) -> list[str]:
        return [
            m for t in self.entity_types
            for m in (f"<h:{t}>", f"</h:{t}>", f"<t:{t}>", f"</t:{t}>")
        ]


def entity_type(ent: dict[str, Any]) -> str:
    return ent.get("label") or "ENT"


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


# --------------------------------------------------------------------------- windows
@dataclass(frozen=True)
class Window:
    """Words ``[ctx_lo, ctx_hi)`` go into the sequence; ``[lab_lo, lab_hi)`` are labelled."""

    ctx_lo: int
    ctx_hi: int
    lab_lo: int
    lab_hi: int


def plan_windows(counts: Sequence[int], budget: int) -> list[Window] | None:
    """Cover words with subword ``counts`` by windows of at most ``budget`` subwords.

    One window when everything fits. Otherwise the words are cut into label chunks of
    about half the budget, each widened left and right with context while it fits.
    ``None`` when a single word is longer than ``budget``.
    """
    n = len(counts)
    if sum(counts) <= budget:
        return [Window(0, n, 0, n)]
    if max(counts) > budget:
        return None
    chunks: list[tuple[int, int]] = []
    lo, used = 0, 0
    for i, c in enumerate(counts):
        if i > lo and used + c > budget // 2:
            chunks.append((lo, i))
            lo, used = i, 0
        used += c
    chunks.append((lo, n))
    windows = []
    for lab_lo, lab_hi in chunks:
        ctx_lo, ctx_hi = lab_lo, lab_hi
        used = sum(counts[lab_lo:lab_hi])
        grew = True
        while grew:
            grew = False
            if ctx_lo > 0 and used + counts[ctx_lo - 1] <= budget:
                ctx_lo -= 1
                used += counts[ctx_lo]
                grew = True
            if ctx_hi < n and used + counts[ctx_hi] <= budget:
                used += counts[ctx_hi]
                ctx_hi += 1
                grew = True
        windows.append(Window(ctx_lo, ctx_hi, lab_lo, lab_hi))
    return windows


# --------------------------------------------------------------------------- features
@dataclass(frozen=True)
class EncodedWindow:
    """The subword ids of one window and where each word (and marker) landed."""

    ids: list[int]
    first: dict[int, int]   # word -> position of its first subword
    end: dict[int, int]     # word -> position just after its last subword
    opened: dict[int, int]  # word -> position of the marker opening an entity there


def encode_window(
    pieces: Sequence[Sequence[int]],
    win: Window,
    cls_id: int,
    sep_id: int,
    markers: Sequence[Marker] = (),
) -> EncodedWindow:
    """``<s>`` + the subwords of words ``[win.ctx_lo, win.ctx_hi)`` + ``</s>``.

    ``markers`` are ``(word_start, word_end, open_ids, close_ids)``: the marker tokens go
    before the first and after the last word of that span; ``opened`` points at the first
    token of the opening marker. Words with no subword are skipped (they get no position).
    """
    before: dict[int, list[tuple[int, ...]]] = defaultdict(list)
    after: dict[int, list[int]] = defaultdict(list)
    for start, stop, open_ids, close_ids in markers:
        before[start].append(open_ids)
        after[stop - 1].extend(close_ids)
    ids = [cls_id]
    first: dict[int, int] = {}
    end: dict[int, int] = {}
    opened: dict[int, int] = {}
    for w in range(win.ctx_lo, win.ctx_hi):
        for m in before.get(w, ()):
            opened.setdefault(w, len(ids))
            ids.extend(m)
        if pieces[w]:
            first[w] = len(ids)
            ids.extend(pieces[w])
            end[w] = len(ids)
        ids.extend(after.get(w, ()))
    ids.append(sep_id)
    return EncodedWindow(ids, first, end, opened)


#: ``(word_start, word_end, open_ids, close_ids)``: marker tokens around a span of words.
Marker = tuple[int, int, tuple[int, ...], tuple[int, ...]]


@dataclass(frozen=True)
class MarkerScheme:
    """How ``relation_repr`` ``markers`` or ``punct`` marks the entities of a pair.

    Shared by training features and extraction so both build the same sequences. Build it
    with :meth:`for_tokenizer`.
    """

    relation_repr: str
    #: markers: the id of each typed marker token (``<h:PER>`` ...).
    typed: dict[str, int]
    #: punct: the subword ids of the words around the first and the second entity.
    punct: tuple[tuple[int, ...], tuple[int, ...]]

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, labels: LabelMaps,
                      relation_repr: str) -> MarkerScheme | None:
        """The scheme of ``relation_repr`` (``None`` for pooling), checked on ``tokenizer``."""
        if relation_repr == "markers":
            tokens = labels.marker_tokens()
            ids = tokenizer.convert_tokens_to_ids(tokens)
            unk = tokenizer.unk_token_id
            missing = [t for t, i in zip(tokens, ids, strict=True) if i is None or i == unk]
            if missing:
                raise DataError(
                    f"the tokenizer lacks the entity markers {missing[:4]}; build the model "
                    "with XlreModel.from_encoder, which adds them"
                )
            return cls(relation_repr, dict(zip(tokens, ids, strict=True)), ((), ()))
        if relation_repr == "punct":
            pieces = word_pieces(tokenizer, [list(PUNCT_MARKERS)])[0]
            unk = tokenizer.unk_token_id
            for word, ids in zip(PUNCT_MARKERS, pieces, strict=True):
                if not ids or unk in ids:
                    raise DataError(
                        f"the tokenizer has no subword for the marker {word!r} of "
                        "data.relation_repr=punct; use relation_repr=markers or pooling"
                    )
            return cls(relation_repr, {}, (tuple(pieces[0]), tuple(pieces[1])))
        return None

    @property
    def extra_tokens(self) -> int:
        """Tokens the markers add to a window."""
        if self.relation_repr == "markers":
            return 4
        return 2 * (len(self.punct[0]) + len(self.punct[1]))

    def groups(self, pairs: Sequence[tuple[int, int]]) -> list[list[tuple[int, int]]]:
        """Ordered entity pairs grouped by marked sequence, in first-seen order.

        markers: one sequence per ordered pair; punct: one per unordered pair.
        """
        if self.relation_repr == "markers":
            return [[p] for p in pairs]
        grouped: dict[frozenset[int], list[tuple[int, int]]] = {}
        for p in pairs:
            grouped.setdefault(frozenset(p), []).append(p)
        return list(grouped.values())

    def markers(self, head: tuple[int, int, str], tail: tuple[int, int, str]) -> list[Marker]:
        """Markers around ``head`` and ``tail``, each ``(word_start, word_end, type)``.

        punct marks by text order, not by role, so both directions share one sequence.
        """
        if self.relation_repr == "markers":
            return [(a, b, (self.typed[f"<{role}:{typ}>"],), (self.typed[f"</{role}:{typ}>"],))
                    for role, (a, b, typ) in (("h", head), ("t", tail))]
        first, second = sorted((head, tail), key=lambda e: (e[0], e[1]))
        return [(first[0], first[1], self.punct[0], self.punct[0]),
                (second[0], second[1], self.punct[1], self.punct[1])]


def word_pieces(tokenizer: Any, words_batch: list[list[str]]) -> list[list[list[int]]]:
    """Subword ids of every word of every sentence, in one tokenizer call.

    A word the tokenizer turns into nothing (whitespace) gets an empty list; an empty
    sentence gets an empty list of words.
    """
    enc = tokenizer([w if w else ["."] for w in words_batch], is_split_into_words=True,
                    add_special_tokens=False)
    out = []
    for i, words in enumerate(words_batch):
        pieces: list[list[int]] = [[] for _ in words]
        if words:
            for tok_id, w in zip(enc["input_ids"][i], enc.word_ids(i), strict=True):
                if w is not None:
                    pieces[w].append(tok_id)
        out.append(pieces)
    return out


#: Columns only gold (marked) records fill (:mod:`xlre.gold`); a run's records default.
_OPTIONAL_COLUMNS: dict[str, Any] = {"fixed_split": "", "partial_entities": False,
                                     "marked_label": ""}


@dataclass
class Featurizer:
    """Turns run records into encoder sequences (a ``datasets.map`` function)."""

    tokenizer: Any
    labels: LabelMaps
    config: DataConfig
    pair_split: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.bio_id = {t: i for i, t in enumerate(self.labels.bio)}
        self.rel_id = {r: i for i, r in enumerate(self.labels.relations)}
        self.cls_id = self.tokenizer.cls_token_id
        self.sep_id = self.tokenizer.sep_token_id
        if self.cls_id is None or self.sep_id is None:
            raise DataError("the tokenizer has no cls/sep tokens; use an XLM-R-style tokenizer")
        self.scheme = MarkerScheme.for_tokenizer(self.tokenizer, self.labels,
                                                 self.config.relation_repr)

    def __call__(self, batch: dict[str, list[Any]], indices: list[int]) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = defaultdict(list)
        words_batch = [toks or [] for toks in batch["tokens"]]
        for i, (rec_idx, pieces) in enumerate(zip(indices, word_pieces(self.tokenizer,
                                                                       words_batch),
                                                  strict=True)):
            words = words_batch[i]
            record = {k: batch[k][i] for k in ("pair_id", "lang", "side", "entities", "relations")}
            for k, default in _OPTIONAL_COLUMNS.items():
                record[k] = batch[k][i] if k in batch else default
            self._record(rec_idx, words, pieces, record, out)
        return dict(out)

    def _record(self, rec_idx: int, words: list[str], pieces: list[list[int]],
                rec: dict[str, Any], out: dict[str, list[Any]]) -> None:
        fixed = rec["fixed_split"]
        split = fixed or self.pair_split.get(rec["pair_id"], "train")
        partial = rec["partial_entities"]
        ents = rec["entities"]
        # Partial entities (gold marked sentences): unmarked mentions are not "O", so the
        # record has no entity labels at all.
        word_tags: list[str | None] = [None if partial else "O"] * len(words)
        overlaps = 0
        for e in [] if partial else ents:
            s, t = e["tok_start"], e["tok_end"]
            if any(tag != "O" for tag in word_tags[s:t]):
                overlaps += 1
                continue
            typ = entity_type(e)
            if typ not in self.labels.entity_types:
                continue
            word_tags[s] = f"B-{typ}"
            for k in range(s + 1, t):
                word_tags[k] = f"I-{typ}"
        gold = [] if partial else [(e["tok_start"], e["tok_end"], entity_type(e)) for e in ents]
        # Instances: relations grouped by (head, tail).
        grouped: dict[tuple[int, int], dict[str, Any]] = {}
        dropped_split = unknown = 0
        for r in rec["relations"]:
            if not fixed and split != split_of_key(
                unordered_key(r["bag"]), self.config.dev_fraction, self.config.test_fraction,
                self.config.split_seed,
            ):
                dropped_split += 1
                continue
            inst = grouped.setdefault((r["head"], r["tail"]), {"bag": r["bag"], "labels": set()})
            if r["relation"] != NA:
                if r["relation"] in self.rel_id:
                    inst["labels"].add(self.rel_id[r["relation"]])
                else:
                    unknown += 1
        counts = [max(len(p), 0) for p in pieces]
        extra = self.scheme.extra_tokens if self.scheme else 0
        windows = plan_windows(counts, self.config.max_seq_length - 2 - extra)
        base = {"record": rec_idx, "pair_id": rec["pair_id"], "lang": rec["lang"],
                "side": rec["side"], "split": split, "gold_label": rec["marked_label"]}
        if windows is None:
            self._emit_counts(out, base, unfittable=1, dropped_split=dropped_split,
                              dropped_far=len(grouped), unknown=unknown, overlaps=overlaps)
            return
        placed: dict[int, list[tuple[tuple[int, int], dict[str, Any]]]] = defaultdict(list)
        dropped_far = 0
        for (h, t), inst in grouped.items():
            lo = min(ents[h]["tok_start"], ents[t]["tok_start"])
            hi = max(ents[h]["tok_end"], ents[t]["tok_end"])
            for w_no, win in enumerate(windows):
                if win.ctx_lo <= lo and hi <= win.ctx_hi:
                    placed[w_no].append(((h, t), inst))
                    break
            else:
                dropped_far += 1
        first = True
        for w_no, win in enumerate(windows):
            win_gold = [g for g in gold if win.lab_lo <= g[0] < win.lab_hi]
            common = {**base, "window": w_no, "gold_start": [g[0] for g in win_gold],
                      "gold_end": [g[1] for g in win_gold], "gold_type": [g[2] for g in win_gold]}
            insts = placed.get(w_no, [])
            if self.scheme is None:
                seq = self._sequence(words, pieces, word_tags, win, ents, insts, None)
                self._emit(out, common, seq, first, dropped_split, dropped_far, unknown,
                           overlaps)
                first = False
                continue
            # Markers: the plain sentence carries the entity labels (extraction tags plain
            # text), then one marked copy per pair (ordered with markers, unordered with
            # punct) carries the relations, no entity labels.
            # A record with partial entities has no entity labels: no plain copy then,
            # unless it has no pair either (its counts need a row).
            if not partial or not insts:
                seq = self._sequence(words, pieces, word_tags, win, ents, [], None)
                self._emit(out, common, seq, first, dropped_split, dropped_far, unknown,
                           overlaps)
                first = False
            by_pair = dict(insts)
            for group in self.scheme.groups(list(by_pair)):
                h, t = group[0]
                marks = self.scheme.markers(
                    (ents[h]["tok_start"], ents[h]["tok_end"], entity_type(ents[h])),
                    (ents[t]["tok_start"], ents[t]["tok_end"], entity_type(ents[t])))
                seq = self._sequence(words, pieces, word_tags, win, ents,
                                     [(p, by_pair[p]) for p in group], marks)
                seq["entity_labels"] = [IGNORE] * len(seq["entity_labels"])
                seq["label_pos"], seq["label_word"] = [], []
                self._emit(out, common, seq, first, dropped_split, dropped_far, unknown,
                           overlaps)
                first = False

    def _sequence(self, words, pieces, word_tags, win: Window, ents, insts,
                  marked: list[Marker] | None) -> dict[str, list[Any]]:
        enc = encode_window(pieces, win, self.cls_id, self.sep_id, marked or ())
        ids = enc.ids
        labels = [IGNORE] * len(ids)
        label_word = [w for w in range(win.lab_lo, win.lab_hi)
                      if w in enc.first and word_tags[w] is not None]
        label_pos = [enc.first[w] for w in label_word]
        for w, pos in zip(label_word, label_pos, strict=True):
            labels[pos] = self.bio_id[word_tags[w]]  # type: ignore[index]
        first_pos, last_pos, open_pos = enc.first, enc.end, enc.opened

        def span(idx: int) -> tuple[int, int]:
            s, e = ents[idx]["tok_start"], ents[idx]["tok_end"]
            if marked is not None:
                return open_pos[s], open_pos[s] + 1
            starts = [first_pos[w] for w in range(s, e) if w in first_pos]
            ends = [last_pos[w] for w in range(s, e) if w in last_pos]
            if not starts:  # words with no subword at all: point at the sentence start
                return 0, 1
            return starts[0], ends[-1]

        hs, he, ts, te, bags, rels, hw, tw = [], [], [], [], [], [], [], []
        for (h, t), inst in insts:
            a, b = span(h)
            c, d = span(t)
            hs.append(a)
            he.append(b)
            ts.append(c)
            te.append(d)
            bags.append(inst["bag"])
            rels.append(sorted(inst["labels"]))
            hw.append([ents[h]["tok_start"], ents[h]["tok_end"]])
            tw.append([ents[t]["tok_start"], ents[t]["tok_end"]])
        return {"input_ids": ids, "entity_labels": labels, "label_pos": label_pos,
                "label_word": label_word, "inst_head_start": hs, "inst_head_end": he,
                "inst_tail_start": ts, "inst_tail_end": te, "inst_bag": bags,
                "inst_labels": rels, "inst_head_words": hw, "inst_tail_words": tw}

    def _emit(self, out, common, seq, first, dropped_split, dropped_far, unknown, overlaps):
        for k, v in {**common, **seq}.items():
            out[k].append(v)
        # Counts ride on the record's first sequence only.
        out["n_dropped_split"].append(dropped_split if first else 0)
        out["n_dropped_far"].append(dropped_far if first else 0)
        out["n_unknown_relation"].append(unknown if first else 0)
        out["n_entity_overlap"].append(overlaps if first else 0)
        out["n_unfittable"].append(0)

    def _emit_counts(self, out, base, unfittable, dropped_split, dropped_far, unknown,
                     overlaps) -> None:
        # An unfittable sentence leaves a row with no input, so its counts are kept; the
        # row is filtered out after counting.
        empty: dict[str, Any] = {
            "window": 0, "gold_start": [], "gold_end": [], "gold_type": [], "input_ids": [],
            "entity_labels": [], "label_pos": [], "label_word": [], "inst_head_start": [],
            "inst_head_end": [], "inst_tail_start": [], "inst_tail_end": [], "inst_bag": [],
            "inst_labels": [], "inst_head_words": [], "inst_tail_words": [],
        }
        for k, v in {**base, **empty}.items():
            out[k].append(v)
        out["n_dropped_split"].append(dropped_split)
        out["n_dropped_far"].append(dropped_far)
        out["n_unknown_relation"].append(unknown)
        out["n_entity_overlap"].append(overlaps)
        out["n_unfittable"].append(unfittable)


COUNT_COLUMNS = {
    "n_dropped_split": "instances_dropped_split",
    "n_dropped_far": "instances_dropped_too_far",
    "n_unknown_relation": "relations_unknown_to_model",
    "n_entity_overlap": "entities_overlapping",
    "n_unfittable": "sentences_unfittable",
}


@dataclass
class RelationData:
    """Sequences per split, the label maps they use, and what was counted on the way."""

    splits: Any  # datasets.DatasetDict
    labels: LabelMaps
    config: DataConfig
    report: dict[str, Any]


RUN_COLUMNS = ("pair_id", "side", "lang", "tokens", "entities", "relations")


def describe_sources(run_dir: Path | str | None, marked: Sequence[Any] = ()) -> str:
    """The run directory, or the marked files, for messages."""
    return str(run_dir) if run_dir is not None else ", ".join(str(m.path) for m in marked)


def load_sources(
    run_dir: Path | str | None,
    marked: Sequence[Any] = (),
    skip_bad: bool = False,
    main_process_first: Any = None,
) -> tuple[Any, dict[str, Any]]:
    """The records of an annotation run and/or gold marked files, as one dataset.

    ``marked`` holds :class:`xlre.gold.MarkedSource` items. Returns ``(raw, report)``;
    ``report`` says per marked file how many records were read and skipped.
    """
    import contextlib

    import datasets

    from xlre.annotate import load_run
    from xlre.gold import gold_dataset, read_sources

    if run_dir is None and not marked:
        raise DataError("no training data: give an annotation run, marked files, or both")
    guard = main_process_first or contextlib.nullcontext
    run = None
    if run_dir is not None:
        with guard():
            run = load_run(run_dir)
        if len(run) == 0:
            raise DataError(f"{run_dir}: the run has no records")
    if not marked:
        return run, {}
    records, report = read_sources(marked, skip_bad=skip_bad)
    if run is None:
        return gold_dataset(records), {"marked": report}
    run = run.select_columns(list(RUN_COLUMNS))
    for name, default in _OPTIONAL_COLUMNS.items():
        run = run.add_column(name, [default] * len(run))
    gold = gold_dataset(records, run.features)
    return datasets.concatenate_datasets([run, gold]), {"marked": report}


def build_relation_data(
    run_dir: Path | str | None,
    tokenizer: Any,
    config: DataConfig,
    labels: LabelMaps | None = None,
    main_process_first: Any = None,
    num_proc: int | None = None,
    marked: Sequence[Any] = (),
    skip_bad: bool = False,
    loaded: tuple[Any, dict[str, Any]] | None = None,
) -> RelationData:
    """Sequences for every split of the run in ``run_dir`` (see the module docstring),
    plus the gold marked files ``marked`` (:class:`xlre.gold.MarkedSource`, each in the
    split it names); ``run_dir`` may be ``None`` when marked files are given.

    ``labels`` are the run's own when ``None`` (training a new model), or a trained
    model's (evaluating): relations the model does not know are then counted and treated
    as no relation, entity types it does not know are left untagged.
    ``main_process_first`` is ``accelerator.main_process_first`` under Accelerate, so
    the main process fills the ``datasets`` cache and the others read it.
    ``loaded`` is what :func:`load_sources` returned for these sources, when the caller
    has it already (marked files are then not read and tokenized again).
    """
    import contextlib

    import datasets

    guard = main_process_first or contextlib.nullcontext
    raw, source_report = loaded or load_sources(run_dir, marked, skip_bad, main_process_first)
    where = describe_sources(run_dir, marked)
    run_labels, pair_split, counts = scan_run(raw, config)
    if labels is None:
        labels = run_labels
        if not labels.relations:
            raise DataError(
                f"{where}: no sentence got a relation (every pair is NA); a relation "
                "model cannot learn from that. Check that the KB facts connect entities "
                "the corpus mentions together"
            )
    featurizer = Featurizer(tokenizer, labels, config, pair_split)
    with guard():
        seqs = raw.map(
            featurizer, batched=True, with_indices=True, remove_columns=raw.column_names,
            num_proc=num_proc, desc="featurizing",
            new_fingerprint=_fingerprint(raw, tokenizer, labels, config),
        )
    report = dict(counts)
    report.update(source_report)
    totals = {name: 0 for name in COUNT_COLUMNS.values()}
    for batch in seqs.select_columns(list(COUNT_COLUMNS)).iter(batch_size=4096):
        for col, name in COUNT_COLUMNS.items():
            totals[name] += sum(batch[col])
    report.update(totals)
    seqs = seqs.remove_columns(list(COUNT_COLUMNS))
    if totals["sentences_unfittable"]:
        logger.warning(
            "%d sentences hold a single word longer than max_seq_length=%d subwords and were "
            "left out (never truncated)", totals["sentences_unfittable"], config.max_seq_length,
        )
        seqs = seqs.filter(lambda ids: len(ids) > 0, input_columns="input_ids")
    if totals["instances_dropped_too_far"]:
        logger.warning(
            "%d entity pairs were too far apart for one window of %d subwords; left out",
            totals["instances_dropped_too_far"], config.max_seq_length,
        )
    if totals["relations_unknown_to_model"]:
        logger.warning(
            "%d relation labels of the run are unknown to the model and count as no relation",
            totals["relations_unknown_to_model"],
        )
    splits = {}
    split_col = seqs["split"]
    for name in SPLITS:
        idx = [i for i, s in enumerate(split_col) if s == name]
        splits[name] = seqs.select(idx)
        report[f"sequences_{name}"] = len(idx)
        report[f"instances_{name}"] = sum(len(b) for b in splits[name]["inst_bag"])
    logger.info("training data: %s", report)
    return RelationData(datasets.DatasetDict(splits), labels, config, report)


def _fingerprint(raw: Any, tokenizer: Any, labels: LabelMaps, config: DataConfig) -> str:
    h = hashlib.sha1()
    h.update(raw._fingerprint.encode())
    # This module's own source: a changed featurizer must never reuse a stale cache.
    h.update(Path(__file__).read_bytes())
    h.update(repr((labels, config)).encode())
    h.update(str(len(tokenizer)).encode())
    h.update(repr(tokenizer.tokenize("xlre fingerprint probe: Zürich, 東京")).encode())
    return h.hexdigest()


# --------------------------------------------------------------------------- batching
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
        cols = seqs.select_columns(["pair_id", "inst_bag"])
        row = 0
        for batch in cols.iter(batch_size=4096):
            for pair_id, bags in zip(batch["pair_id"], batch["inst_bag"], strict=True):
                pair_rows[pair_id].append(row)
                for k, bag in enumerate(bags):
                    bag_members[bag][pair_id].append((row, k))
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

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

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

    With ``lengths`` (one per item) the permutation is cut into groups of
    ``group_size`` items, each sorted longest first, so consecutive batches hold items of
    similar length and little of a batch is padding; the groups stay random.
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True,
                 lengths: Sequence[int] | None = None, group_size: int = 0) -> None:
        if lengths is not None and len(lengths) != n:
            raise ValueError(f"{len(lengths)} lengths for {n} items")
        self.n = n
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
        order = list(range(self.n))
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
        import torch

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


def describe(labels: LabelMaps) -> Iterable[str]:
    yield f"entity types: {', '.join(labels.entity_types)}"
    yield f"relations: {', '.join(labels.relations)} (+ {labels.na})"
