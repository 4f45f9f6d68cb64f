"""Gold marked-sentence files (KBP37 / RELX format) as training and evaluation data."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alignment.errors import CorpusError
from tests.helpers.handmade import PAIRS, write_run
from tests.helpers.tiny_models import EN_FR_PAIRS, build_tiny_xlmr
from xlre.annotate import load_run
from xlre.cli import app
from xlre.data import (
    DataConfig,
    DataError,
    LabelMaps,
    MarkerScheme,
    TrainUnits,
    build_relation_data,
    scan_run,
)
from xlre.data.gold import GoldError, MarkedSource, bag_direction, parse_label, read_sources
from xlre.evaluation.metrics import directed_type_scores
from xlre.records import NA

# Hand-written templates (written for this project): each yields a marked sentence and
# its directed label.
PEOPLE = ["Alice Martin", "Bruno Keller", "Chen Wei", "Dana Ortiz", "Emil Novak", "Fatou Diallo"]
ORGS = ["Acme", "Globex", "Initech", "Umbrella", "Hooli", "Vandelay"]
CITIES = ["Paris", "Lyon", "Geneva", "Montreal", "Berlin", "Dakar"]
EN_TEMPLATES = [
    ("<e1> {p} </e1> works for <e2> {o} </e2> .", "per:employee_of(e1,e2)"),
    ("<e1> {o} </e1> hired <e2> {p} </e2> last year .", "per:employee_of(e2,e1)"),
    ("<e1> {p} </e1> lives in <e2> {c} </e2> .", "per:cities_of_residence(e1,e2)"),
    ("In <e1> {c} </e1> lives <e2> {p} </e2> .", "per:cities_of_residence(e2,e1)"),
    ("<e1> {p} </e1> met <e2> {o} </e2> staff at a fair .", "no_relation"),
]
FR_TEMPLATES = [
    ("<e1> {p} </e1> travaille pour <e2> {o} </e2> .", "per:employee_of(e1,e2)"),
    ("<e1> {o} </e1> a embauché <e2> {p} </e2> l'an dernier .", "per:employee_of(e2,e1)"),
    ("<e1> {p} </e1> habite à <e2> {c} </e2> .", "per:cities_of_residence(e1,e2)"),
    ("À <e1> {c} </e1> habite <e2> {p} </e2> .", "per:cities_of_residence(e2,e1)"),
    ("<e1> {p} </e1> a croisé des employés de <e2> {o} </e2> à un salon .", "no_relation"),
]


#: Settings under which the tiny encoder learns the templates' directed labels.
LEARN = [
    "data.max_seq_length=64", "train.learning_rate=5e-3", "train.head_learning_rate=5e-3",
    "train.batch_size=8", "train.epochs=12", "train.warmup_ratio=0.0",
    "train.early_stopping_patience=0", "train.tracker='none'", "model.head_dropout=0.0",
]


def write_marked(path: Path, templates, n: int, seed: int, start_id: int = 0) -> Path:
    rng = random.Random(seed)
    lines = []
    for i in range(n):
        tpl, label = templates[i % len(templates)]
        text = tpl.format(p=rng.choice(PEOPLE), o=rng.choice(ORGS), c=rng.choice(CITIES))
        lines += [f'{start_id + i}\t"{text}"', label, "", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def row_text(path: Path, n: int) -> str:
    """The words of the ``n``-th marked sentence of ``path``, markers dropped."""
    text = path.read_text(encoding="utf-8").split("\n\n\n")[n].split("\t", 1)[1]
    text = text.split("\n")[0].strip('"')
    return " ".join(w for w in text.split() if w not in ("<e1>", "</e1>", "<e2>", "</e2>"))


def _corpus() -> list[str]:
    words = [t.split("}")[-1] for tpl, _ in EN_TEMPLATES + FR_TEMPLATES for t in tpl.split("{")]
    return ([tpl for tpl, _ in EN_TEMPLATES + FR_TEMPLATES] * 3 + PEOPLE + ORGS + CITIES + words
            + [s for _, p, _, _ in PAIRS for s in p] + [s for p in EN_FR_PAIRS for s in p])


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return build_tiny_xlmr(tmp_path_factory.mktemp("enc"), corpus=_corpus())


@pytest.fixture(scope="module")
def punct_encoder_dir(tmp_path_factory):
    """An encoder whose tokenizer has subwords for the punct markers, as XLM-R's has."""
    punct = [tpl.replace("<e1>", "@").replace("</e1>", "@").replace("<e2>", "#")
             .replace("</e2>", "#") for tpl, _ in EN_TEMPLATES]
    return build_tiny_xlmr(tmp_path_factory.mktemp("enc"), corpus=_corpus() + punct * 3)


def test_parse_label_and_spec(tmp_path):
    assert parse_label("per:employee_of(e1,e2)") == ("per:employee_of", "e1e2")
    assert parse_label("org:members(e2,e1)") == ("org:members", "e2e1")
    assert parse_label("Cause-Effect(e2,e1)") == ("Cause-Effect", "e2e1")
    assert parse_label("no_relation") == (NA, "")
    assert parse_label("Other") == (NA, "")
    assert parse_label("undirected_rel") == ("undirected_rel", "e1e2")
    with pytest.raises(ValueError, match="itself"):
        parse_label("x(e1,e1)")
    f = write_marked(tmp_path / "a.txt", EN_TEMPLATES, 5, 0)
    assert MarkedSource.parse(f"dev:en:{f}") == MarkedSource(f, "en", "dev")
    assert MarkedSource.parse(f"fr:{f}", default_split="test") == MarkedSource(f, "fr", "test")
    for bad, msg in ((f"en:{tmp_path}/nope.txt", "not a file"), (f"{f}", "SPLIT:LANG:PATH"),
                     (f"dev:English:{f}", "language code")):
        with pytest.raises(GoldError, match=msg):
            MarkedSource.parse(bad)


def test_records_words_and_both_directions(tmp_path):
    f = tmp_path / "m.txt"
    f.write_text('7\t"L\'<e1> Sacramento Heatwave </e1> joue en <e2> Californie </e2>."\n'
                 "org:stateorprovince_of_headquarters(e1,e2)\n\n"
                 '8\t"<e1> Acme </e1> hired <e2> Bo </e2>."\norg:employees(e2,e1)\n',
                 encoding="utf-8")
    recs, report = read_sources([MarkedSource(f, "fr", "test")])
    assert report[f"test:fr:{f}"] == {"read": 2, "skipped": {}}
    r = recs[0]
    e1, e2 = r["entities"]
    assert r["tokens"][e1["tok_start"]:e1["tok_end"]] == ["Sacramento", "Heatwave"]
    assert r["tokens"][e2["tok_start"]:e2["tok_end"]] == ["Californie"]
    assert e1["text"] == "Sacramento Heatwave"
    rels = {(x["head"], x["tail"]): x["relation"] for x in r["relations"]}
    assert rels == {(0, 1): "org:stateorprovince_of_headquarters", (1, 0): NA}
    rels = {(x["head"], x["tail"]): x["relation"] for x in recs[1]["relations"]}
    assert rels == {(0, 1): NA, (1, 0): "org:employees"}
    assert [bag_direction(x["bag"]) for x in recs[1]["relations"]] == ["e1e2", "e2e1"]
    assert r["fixed_split"] == "test" and r["partial_entities"]


def test_dirty_records_error_or_count(tmp_path):
    f = tmp_path / "dirty.txt"
    f.write_text('1\t"<e1> A </e1> works for <e2> B </e2> ."\nper:employee_of(e1,e2)\n\n'
                 '2\t"<e1></e1> works for <e2> B </e2> ."\nper:employee_of(e1,e2)\n\n'
                 '3\t"<e1> A </e1> works for <e2> B </e2> ."\nx(e2,e2)\n\n', encoding="utf-8")
    with pytest.raises(CorpusError, match=r"dirty.txt:4: bad marked sentence: empty e1"):
        read_sources([MarkedSource(f, "en", "train")])
    recs, report = read_sources([MarkedSource(f, "en", "train")], skip_bad=True)
    assert len(recs) == 1
    assert report[f"train:en:{f}"]["read"] == 1
    assert sum(report[f"train:en:{f}"]["skipped"].values()) == 2


def test_directed_type_scores_by_hand():
    gold = ["a(e1,e2)", "a(e2,e1)", "b(e1,e2)", "no_relation", "b(e1,e2)"]
    pred = ["a(e1,e2)", "a(e1,e2)", "no_relation", "b(e1,e2)", "b(e1,e2)"]
    s = directed_type_scores(gold, pred)
    # a: 1 correct of 2 predicted, 2 gold -> F1 0.5; b: 1 of 2 predicted, 2 gold -> 0.5.
    assert s["per_type"]["a"].f1 == pytest.approx(0.5)
    assert s["per_type"]["b"].f1 == pytest.approx(0.5)
    assert s["macro_f1"] == pytest.approx(0.5)
    assert s["micro"].correct == 2 and s["micro"].predicted == 4 and s["micro"].support == 4


@pytest.mark.parametrize("repr_", ["pooling", "markers", "punct"])
def test_featurized_gold_mixed_with_a_run(tmp_path, encoder_dir, punct_encoder_dir, repr_):
    from xlre.modeling import XlreModel

    if repr_ == "punct":
        encoder_dir = punct_encoder_dir

    run = write_run(tmp_path / "run", repeat=2)
    f = write_marked(tmp_path / "dev.txt", EN_TEMPLATES, 10, 1)
    config = DataConfig(relation_repr=repr_, max_seq_length=64, dev_fraction=0.0,
                        test_fraction=0.0)
    run_labels, pair_split, _ = scan_run(load_run(run), config)
    labels = LabelMaps((*run_labels.entity_types, "ENT"),
                       (*run_labels.relations, "per:employee_of"))
    _, tok = XlreModel.from_encoder(str(encoder_dir), labels, relation_repr=repr_)
    data = build_relation_data(run, tok, config, labels, marked=[MarkedSource(f, "en", "dev")])
    dev = data.splits["dev"]
    assert data.report["records_marked"] == 10
    # Only gold records are in dev (the run's go to train), none lost.
    assert set(dev["pair_id"]) == {f"gold:{f}:{i}" for i in range(10)}
    # Partial entities: no entity labels, no entity gold, both ordered pairs as instances.
    assert all(not w for w in dev["label_word"]) and all(not g for g in dev["gold_start"])
    assert sum(len(b) for b in dev["inst_bag"]) == 20
    per_seq = 1 if repr_ == "markers" else 2
    assert all(len(b) == per_seq for b in dev["inst_bag"])
    if repr_ == "punct":
        # One sequence per unordered pair: "@" around the first entity, "#" around the
        # second; the two directions point at the same markers, swapped.
        at, hash_ = MarkerScheme.for_tokenizer(tok, labels, "punct").punct
        row = dev[0]
        ids = row["input_ids"]
        h, t = row["inst_head_start"], row["inst_tail_start"]
        assert h[0] < t[0] and (h[1], t[1]) == (t[0], h[0])
        assert ids[h[0]:h[0] + len(at)] == list(at) and ids[t[0]:t[0] + len(hash_)] == list(hash_)
        assert row["inst_head_end"][0] == h[0] + 1
        plain = tok(row_text(f, 0), add_special_tokens=True)["input_ids"]
        assert len(ids) == len(plain) + 2 * (len(at) + len(hash_))
    # The unknown relation of the template counts as no relation, counted.
    assert data.report["relations_unknown_to_model"] == 4  # cities_of_residence, 4 of 10
    units = TrainUnits(dev, "bag", 4, 0)
    assert len(units) == 10  # one unit per marked sentence, both directions in it
    assert all(len(units[i].instances) == 2 for i in range(len(units)))
    assert set(data.splits["train"]["pair_id"]) == set(pair_split)


def test_train_on_marked_then_evaluate_zero_shot(tmp_path, encoder_dir):
    """A model learns the directed labels from marked English files and is scored with
    the KBP37/RELX metric, alone and on French."""
    train_f = write_marked(tmp_path / "train.txt", EN_TEMPLATES, 120, 2)
    dev_f = write_marked(tmp_path / "dev.txt", EN_TEMPLATES, 20, 3, start_id=1000)
    fr_f = write_marked(tmp_path / "fr.txt", FR_TEMPLATES, 20, 4, start_id=2000)
    runner = CliRunner()
    out = tmp_path / "model"
    result = runner.invoke(app, [
        "train", "--model", str(encoder_dir), "--out", str(out),
        "--marked", f"train:en:{train_f}", "--marked", f"dev:en:{dev_f}",
        *LEARN,
    ])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dev"]["en"]["marked_f1"] >= 0.9, metrics["dev"]["en"]
    assert json.loads((out / "train_inputs.json").read_text())["marked"] == [
        f"train:en:{train_f}", f"dev:en:{dev_f}"]
    result = runner.invoke(app, ["evaluate", "--model", str(out), "--marked", f"en:{dev_f}",
                                 "--marked", f"fr:{fr_f}"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["metrics"]["en"]["marked_f1"] == pytest.approx(
        metrics["dev"]["en"]["marked_f1"])
    assert report["metrics"]["fr"]["marked_sentences"] == 20
    assert 0.0 <= report["metrics"]["fr"]["marked_f1"] <= 1.0
    assert set(report["metrics"]["en"]["marked_per_type"]) == {
        "per:employee_of", "per:cities_of_residence"}
    bad = runner.invoke(app, ["train", "--model", str(encoder_dir), "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "--marked" in bad.output
    bad = runner.invoke(app, ["train", "--model", str(encoder_dir), "--out", str(tmp_path / "x"),
                              "--marked", f"train:en:{train_f}", "data.relation_repr='markers'",
                              "train.freeze_word_embeddings=true"])
    assert bad.exit_code == 2 and "freeze_word_embeddings" in bad.output


def test_freeze_word_embeddings_keeps_them(tmp_path, encoder_dir):
    from safetensors.torch import load_file

    from xlre.training import train
    from xlre.training.settings import load_settings

    f = write_marked(tmp_path / "train.txt", EN_TEMPLATES, 20, 5)
    settings = load_settings(None, ["train.epochs=1", "train.batch_size=4", "train.tracker='none'",
                                    "train.freeze_word_embeddings=true", "train.learning_rate=1e-2",
                                    "data.max_seq_length=64"])
    train(None, str(encoder_dir), tmp_path / "m", settings,
          marked=[MarkedSource(f, "en", "train"), MarkedSource(f, "en", "dev")])
    before = load_file(encoder_dir / "model.safetensors")
    after = load_file(tmp_path / "m" / "model.safetensors")
    key = next(k for k in before if k.endswith("word_embeddings.weight"))
    assert (after[f"encoder.{key.removeprefix('roberta.')}"] == before[key]).all()
    moved = next(k for k in before if k.endswith("layer.0.attention.self.query.weight"))
    assert not (after[f"encoder.{moved.removeprefix('roberta.')}"] == before[moved]).all()


@pytest.mark.parametrize("loss", ["bce", "adaptive"])
def test_punct_markers_train_with_frozen_embeddings(tmp_path, punct_encoder_dir, loss):
    """punct marks pairs with words the encoder has, so it trains with frozen word
    embeddings and learns the directed labels, with either relation loss."""
    train_f = write_marked(tmp_path / "train.txt", EN_TEMPLATES, 120, 2)
    dev_f = write_marked(tmp_path / "dev.txt", EN_TEMPLATES, 20, 3, start_id=1000)
    out = tmp_path / "model"
    result = CliRunner().invoke(app, [
        "train", "--model", str(punct_encoder_dir), "--out", str(out),
        "--marked", f"train:en:{train_f}", "--marked", f"dev:en:{dev_f}",
        "data.relation_repr='punct'", "train.freeze_word_embeddings=true",
        f"model.relation_loss='{loss}'",
        *LEARN,
    ])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dev"]["en"]["marked_f1"] >= 0.9, metrics["dev"]["en"]
    config = json.loads((out / "config.json").read_text())
    assert (config["relation_repr"], config["relation_loss"]) == ("punct", loss)


def test_punct_needs_the_marker_words(tmp_path):
    from transformers import AutoTokenizer

    enc = build_tiny_xlmr(tmp_path / "enc", corpus=[s for p in EN_FR_PAIRS for s in p])
    tok = AutoTokenizer.from_pretrained(enc)
    with pytest.raises(DataError, match="no subword for the marker '@'"):
        MarkerScheme.for_tokenizer(tok, LabelMaps(("ENT",), ("r",)), "punct")


def test_marked_files_of_one_basename_keep_apart(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = write_marked(tmp_path / "a" / "dev.txt", EN_TEMPLATES, 3, 1)
    b = write_marked(tmp_path / "b" / "dev.txt", EN_TEMPLATES, 3, 2)
    recs, _ = read_sources([MarkedSource(a, "en", "dev"), MarkedSource(b, "en", "dev")])
    ids = [r["pair_id"] for r in recs]
    bags = [rel["bag"] for r in recs for rel in r["relations"]]
    assert len(ids) == len(set(ids)) == 6 and len(bags) == len(set(bags)) == 12
