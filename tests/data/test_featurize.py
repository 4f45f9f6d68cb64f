"""The data builder on hand-made runs: label maps, features, splits, windows, units."""

from __future__ import annotations

import pytest

from tests.helpers.handmade import LABELS, build_hand_encoder, data_config, record, write_run
from xlre.annotate import load_run
from xlre.data import (
    Collator,
    DataError,
    LabelMaps,
    TrainUnits,
    build_relation_data,
    plan_windows,
    scan_run,
    unordered_key,
)
from xlre.modeling import XlreModel

_config = data_config


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return build_hand_encoder(tmp_path_factory.mktemp("enc"))


@pytest.fixture()
def run_dir(tmp_path):
    return write_run(tmp_path / "run")



def test_scan_run_finds_types_and_relations(run_dir):
    labels, pair_split, counts = scan_run(load_run(run_dir), _config())
    assert labels == LABELS
    assert labels.bio == ["O", "B-LOC", "I-LOC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert set(pair_split.values()) == {"train"}
    assert counts["records_src"] == counts["records_tgt"] == 3


@pytest.mark.parametrize("repr_", ["pooling", "markers"])
def test_features_label_first_subwords_and_point_at_entities(run_dir, encoder_dir, repr_):
    _model, tok = XlreModel.from_encoder(str(encoder_dir), LABELS, relation_repr=repr_)
    data = build_relation_data(run_dir, tok, _config(relation_repr=repr_), LABELS)
    train = data.splits["train"]
    # Pooling: one sequence per sentence; markers: that plus one per entity pair.
    assert len(train) == (6 if repr_ == "pooling" else 6 + 12)
    row = train[0]
    if repr_ == "markers":
        assert row["inst_bag"] == [] and row["label_pos"]  # the plain sentence
        marked = train[1]
        assert marked["label_pos"] == [] and set(marked["entity_labels"]) == {-100}
    assert row["pair_id"] == "hm-1" and row["lang"] == "en"
    ids = row["input_ids"]
    assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
    # Every word gets exactly one label, on its first subword.
    words = ["Alice", "Martin", "was", "born", "in", "Paris", "."]
    assert row["label_word"] == list(range(len(words)))
    bio = LABELS.bio
    tags = [bio[row["entity_labels"][p]] for p in row["label_pos"]]
    assert tags == ["B-PER", "I-PER", "O", "O", "O", "B-LOC", "O"]
    if repr_ == "markers":
        row = train[1]
        ids = row["input_ids"]
    first = row["inst_head_start"][0]
    if repr_ == "pooling":
        # The head span starts at the first subword of "Alice" and covers "Alice Martin".
        assert first == row["label_pos"][0]
        assert row["inst_head_end"][0] == row["label_pos"][2]
        assert row["inst_labels"] == [[LABELS.relations.index("P19")], []]
    else:
        assert tok.convert_ids_to_tokens(ids[first]) in ("<h:PER>", "<h:LOC>")
        assert row["inst_head_end"][0] == first + 1
    assert data.report["instances_train"] == 12


def test_markers_are_real_special_tokens(encoder_dir):
    model, tok = XlreModel.from_encoder(str(encoder_dir), LABELS, relation_repr="markers")
    assert tok.tokenize("<h:PER> Alice </h:PER>")[0] == "<h:PER>"
    assert model.encoder.get_input_embeddings().num_embeddings == len(tok)


def _dense_run(tmp_path):
    # 60 sentence pairs over 30 entities; many sentences hold two KB facts and an NA pair.
    pairs = []
    for i in range(60):
        a, b, c = f"E{i % 30}", f"E{(i * 7 + 1) % 30}", f"E{(i * 11 + 3) % 30}"
        if len({a, b, c}) < 3:
            continue
        pairs.append((
            f"p{i}",
            (f"{a} met {b} near {c} .", f"{a} a vu {b} près de {c} ."),
            [((0, 1), (0, 1), a, "PER"), ((2, 3), (2, 3), b, "PER"),
             ((4, 5), (5, 6), c, "LOC")],
            [(0, 1, "P26"), (1, 2, "NA"), (0, 2, "P19")],
        ))
    return write_run(tmp_path / "run", pairs), pairs


@pytest.mark.parametrize("rule", ["facts", "pairs"])
def test_split_never_leaks_a_fact(tmp_path, encoder_dir, rule):
    run, pairs = _dense_run(tmp_path)
    _, tok = XlreModel.from_encoder(str(encoder_dir), LabelMaps(("LOC", "PER"), ("P19", "P26")))
    data = build_relation_data(run, tok, _config(dev_fraction=0.25, test_fraction=0.25,
                                                 split_rule=rule))
    facts, keys, pair_ids = {}, {}, {}
    for split, seqs in data.splits.items():
        assert len(seqs) > 0, split
        keys[split] = {unordered_key(b) for bags in seqs["inst_bag"] for b in bags}
        facts[split] = {unordered_key(b) for bags, labs in zip(seqs["inst_bag"], seqs["inst_labels"],
                                                               strict=True)
                        for b, lab in zip(bags, labs, strict=True) if lab}
        pair_ids[split] = set(seqs["pair_id"])
        # Source and translation always share a split.
        sides = {(p, s) for p, s in zip(seqs["pair_id"], seqs["side"], strict=True)}
        assert {(p, "src") for p in pair_ids[split]} | {(p, "tgt") for p in pair_ids[split]} == sides
    for a, b in (("train", "dev"), ("train", "test"), ("dev", "test")):
        assert not facts[a] & facts[b], (a, b)
        assert not pair_ids[a] & pair_ids[b], (a, b)
        if rule == "pairs":  # not even an NA pair crosses
            assert not keys[a] & keys[b], (a, b)
    kept = sum(data.report[f"instances_{s}"] for s in ("train", "dev", "test"))
    assert kept + data.report["instances_dropped_split"] == 2 * 3 * len(pairs)
    assert data.report["instances_dropped_split"] > 0


def test_facts_rule_keeps_what_pairs_rule_drops(tmp_path, encoder_dir):
    run, _ = _dense_run(tmp_path)
    _, tok = XlreModel.from_encoder(str(encoder_dir), LabelMaps(("LOC", "PER"), ("P19", "P26")))
    reports = {rule: build_relation_data(run, tok, _config(dev_fraction=0.25, test_fraction=0.25,
                                                           split_rule=rule)).report
               for rule in ("facts", "pairs")}
    assert reports["facts"]["instances_dropped_split"] < reports["pairs"]["instances_dropped_split"]
    assert reports["facts"]["instances_train"] > reports["pairs"]["instances_train"]


def test_models_from_before_split_rule_keep_the_pairs_rule():
    from xlre.data import DataConfig

    assert DataConfig.stored({"max_seq_length": 64}).split_rule == "pairs"
    assert DataConfig.stored({"split_rule": "facts"}).split_rule == "facts"
    assert DataConfig().split_rule == "facts"


def test_windows_cover_every_word_once():
    counts = [1, 3, 2, 1, 1, 4, 2, 2, 1, 3, 1, 1]
    windows = plan_windows(counts, budget=8)
    labelled = [w for win in windows for w in range(win.lab_lo, win.lab_hi)]
    assert labelled == list(range(len(counts)))
    for win in windows:
        assert sum(counts[win.ctx_lo:win.ctx_hi]) <= 8
        assert win.ctx_lo <= win.lab_lo < win.lab_hi <= win.ctx_hi
    assert plan_windows([1, 2], budget=8) and len(plan_windows([1, 2], budget=8)) == 1
    assert plan_windows([1, 9, 1], budget=8) is None


def test_long_sentence_is_windowed_not_cut(tmp_path, encoder_dir):
    filler = " ".join(["the"] * 70)
    text_en = f"Alice Martin was born in Paris . {filler} Bob Stone works for Acme Corp ."
    text_fr = f"Alice Martin est née à Paris . {filler} Bob Stone travaille pour Acme Corp ."
    n = len(text_en.split())
    ents = [((0, 2), "X1", "PER"), ((5, 6), "Q90", "LOC"), ((n - 6, n - 4), "X2", "PER"),
            ((n - 3, n - 1), "X3", "ORG")]
    rels = [(0, 1, "P19"), (2, 3, "P108"), (0, 3, "NA")]
    recs = [record("long", 1, "src", "en", text_en, ents, rels),
            record("long", 1, "tgt", "fr", text_fr, ents, rels)]
    run = tmp_path / "run"
    (run / "shards").mkdir(parents=True)
    import json

    (run / "shards" / "shard-00000.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in recs), encoding="utf-8")
    _, tok = XlreModel.from_encoder(str(encoder_dir), LABELS)
    data = build_relation_data(run, tok, _config(max_seq_length=48))
    train = data.splits["train"]
    assert len(train) > 2  # both sentences were split into windows
    for lang, words in (("en", n), ("fr", n)):
        rows = [r for r in train if r["lang"] == lang]
        labelled = sorted(w for r in rows for w in r["label_word"])
        assert labelled == list(range(words))  # every word labelled exactly once
        assert all(len(r["input_ids"]) <= 48 for r in rows)
    # The two near pairs are kept, the far one (Alice ... Acme) is counted as dropped.
    assert data.report["instances_train"] == 4
    assert data.report["instances_dropped_too_far"] == 2


def test_run_with_no_relation_is_refused(tmp_path, encoder_dir):
    pairs = [("p1", ("Alice Martin sleeps .", "Alice Martin dort ."),
              [((0, 2), (0, 2), "X1", "PER")], [])]
    run = write_run(tmp_path / "run", pairs)
    _, tok = XlreModel.from_encoder(str(encoder_dir), LABELS)
    with pytest.raises(DataError, match="every pair is NA"):
        build_relation_data(run, tok, _config())




def test_bag_units_hold_both_languages_and_agreement_pairs(run_dir, encoder_dir):
    _, tok = XlreModel.from_encoder(str(encoder_dir), LABELS)
    data = build_relation_data(run_dir, tok, _config(), LABELS)
    train = data.splits["train"]
    units = TrainUnits(train, "bag", 4, seed=1)
    assert len(units) == 6  # 3 pairs x 2 directions, every sentence holds instances
    unit = units[0]
    assert {train[r]["lang"] for r in unit.rows} == {"en", "fr"}
    batch = Collator(train, 3, tok.pad_token_id)([unit])
    assert batch["bag_index"].tolist() == [[0, 1]]
    assert batch["agree_index"].tolist() == [[0, 1]]
    sentence_units = TrainUnits(train, "sentence", 4, seed=1)
    assert len(sentence_units) == 3 and len(sentence_units[0].instances) == 4




def test_data_languages_keeps_the_source_side_alone(run_dir, encoder_dir):
    _model, tok = XlreModel.from_encoder(str(encoder_dir), LABELS)
    both = build_relation_data(run_dir, tok, _config(), LABELS)
    en = build_relation_data(run_dir, tok, _config(languages="EN"), LABELS)
    assert set(both.splits["train"]["lang"]) == {"en", "fr"}
    assert set(en.splits["train"]["lang"]) == {"en"}
    assert en.report["records_dropped_language"] == 3 and both.report["records_dropped_language"] == 0
    with pytest.raises(DataError, match="no record"):
        build_relation_data(run_dir, tok, _config(languages="de"), LABELS)
    with pytest.raises(DataError, match=r"data\.languages"):
        _config(languages="not a language!")


def test_project_relations_off_keeps_target_entities_only(run_dir, encoder_dir):
    _model, tok = XlreModel.from_encoder(str(encoder_dir), LABELS)
    data = build_relation_data(run_dir, tok, _config(project_relations=False), LABELS)
    train = data.splits["train"]
    tgt = [r for r in train if r["side"] == "tgt"]
    src = [r for r in train if r["side"] == "src"]
    assert tgt and all(r["inst_bag"] == [] for r in tgt)
    assert any(set(r["entity_labels"]) - {-100, 0} for r in tgt)  # still tagged
    assert sum(len(r["inst_bag"]) for r in src) == data.report["instances_train"] == 6
    units = TrainUnits(train, "bag", 4, seed=1)
    batch = Collator(train, 3, tok.pad_token_id)([units[0]])
    assert batch["agree_index"].numel() == 0  # nothing to agree with


def test_two_runs_train_together_without_merging_pairs(tmp_path, encoder_dir):
    # The same pair ids in two runs (as every run numbers its lines from 1): kept apart,
    # while a KB pair's bag holds the sentences of both runs.
    a = write_run(tmp_path / "news-en-fr", repeat=1)
    b = write_run(tmp_path / "other" / "news-en-fr2", repeat=1)
    _model, tok = XlreModel.from_encoder(str(encoder_dir), LABELS)
    one = build_relation_data(a, tok, _config(), LABELS)
    both = build_relation_data([a, b], tok, _config(), LABELS)
    ids = set(both.splits["train"]["pair_id"])
    assert ids == {f"news-en-fr/{p}" for p in one.splits["train"]["pair_id"]} | {
        f"news-en-fr2/{p}" for p in one.splits["train"]["pair_id"]}
    assert both.report["instances_train"] == 2 * one.report["instances_train"]
    units = TrainUnits(both.splits["train"], "bag", 8, seed=1)
    assert len(units) == len(TrainUnits(one.splits["train"], "bag", 8, seed=1))  # shared bags
    assert all(len({both.splits["train"][r]["pair_id"].split("/")[0] for r in units[i].rows}) == 2
               for i in range(len(units)))
    with pytest.raises(DataError, match="two runs are named 'news-en-fr'"):
        build_relation_data([a, write_run(tmp_path / "x" / "news-en-fr")], tok, _config(), LABELS)


def test_balanced_epochs_cap_each_relation_and_the_negatives():
    from datasets import Dataset

    from xlre.data import EpochSampler

    # 30 bags of relation 0, 3 of relation 1, one bag holding both (counted under the
    # rarer, 1), 40 NA bags and 10 sentences with entities only.
    rows = ([{"pair_id": f"a{i}", "inst_bag": [f"A{i}"], "inst_labels": [[0]]} for i in range(30)]
            + [{"pair_id": f"b{i}", "inst_bag": [f"B{i}"], "inst_labels": [[1]]} for i in range(3)]
            + [{"pair_id": "c", "inst_bag": ["C"], "inst_labels": [[0, 1]]}]
            + [{"pair_id": f"n{i}", "inst_bag": [f"N{i}"], "inst_labels": [[]]} for i in range(40)]
            + [{"pair_id": f"e{i}", "inst_bag": [], "inst_labels": []} for i in range(10)])
    units = TrainUnits(Dataset.from_list(rows), "bag", 4, seed=5)
    assert len(units) == 84
    kind = {i: ("neg" if not rels else "r1" if 1 in rels else "r0")
            for i, rels in enumerate(units.relations)}
    assert sum(k == "r1" for k in kind.values()) == 4 and sum(k == "neg" for k in kind.values()) == 50
    assert units.balanced() is None  # off by default: every unit, every epoch
    select = units.balanced(max_per_relation=10, negatives_per_positive=1.5)
    epochs = [select(e) for e in range(3)]
    for chosen in epochs:
        assert len(chosen) == len(set(chosen)) == 10 + 4 + 21
        assert sum(kind[i] == "r0" for i in chosen) == 10
        assert sum(kind[i] == "r1" for i in chosen) == 4  # under the cap: all kept
        assert sum(kind[i] == "neg" for i in chosen) == 21
    assert epochs[0] == select(0) and epochs[0] != epochs[1]  # fresh, reproducible
    sampler = EpochSampler(len(units), seed=5, select=select)
    sampler.set_epoch(2)
    assert len(sampler) == 35 and sorted(sampler) == epochs[2]
    with pytest.raises(DataError, match="0 or more"):
        units.balanced(max_per_relation=-1)
