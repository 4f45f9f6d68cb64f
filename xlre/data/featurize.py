"""Run records -> encoder sequences, one row per encoder input (a ``datasets.map``
function):

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
Splits (:mod:`xlre.data.splits`) and windows (:mod:`xlre.data.windows`) apply.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from xlre.data.config import DataConfig, DataError
from xlre.data.labels import IGNORE, LabelMaps, entity_type
from xlre.data.markers import MarkerScheme
from xlre.data.splits import PairSplits, split_of_key, unordered_key
from xlre.data.windows import Marker, Window, encode_window, plan_windows, word_pieces
from xlre.records import NA

#: Columns only gold (marked) records fill (:mod:`xlre.data.gold`); a run's records default.
OPTIONAL_COLUMNS: dict[str, Any] = {"fixed_split": "", "partial_entities": False,
                                     "marked_label": ""}


@dataclass
class Featurizer:
    """Turns run records into encoder sequences (a ``datasets.map`` function)."""

    tokenizer: Any
    labels: LabelMaps
    config: DataConfig
    pair_split: PairSplits = field(default_factory=lambda: PairSplits({}, None))

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
            for k, default in OPTIONAL_COLUMNS.items():
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
        relations = rec["relations"]
        if rec["side"] == "tgt" and not self.config.project_relations:
            relations = []
        for r in relations:
            key = unordered_key(r["bag"])
            if not fixed and self.pair_split.decides(key) and split != split_of_key(
                key, self.config.dev_fraction, self.config.test_fraction, self.config.split_seed,
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
