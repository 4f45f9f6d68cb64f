"""Training with Accelerate on CPU: overfitting, save/reload, resume, settings, the CLI."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer
from typer.testing import CliRunner

from tests.helpers.handmade import PAIRS, write_run
from tests.helpers.tiny_models import EN_FR_PAIRS, TINY_CLI_SHAPE, build_tiny_xlmr
from xlre.cli import app
from xlre.data import DataConfig, build_relation_data
from xlre.evaluation import eval_loader, evaluate_model, predict_rows
from xlre.modeling import XlreModel
from xlre.training import CHECKPOINTS, TrainError, latest_checkpoint, train
from xlre.training.settings import SettingsError, load_settings, parse_override

FAST = [
    "data.dev_fraction=0.0", "data.test_fraction=0.0", "data.max_seq_length=128",
    "train.learning_rate=1e-2", "train.head_learning_rate=1e-2", "train.batch_size=4",
    "train.warmup_ratio=0.0", "train.early_stopping_patience=0", "train.tracker='none'",
]


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    texts = [s for _, p, _, _ in PAIRS for s in p] + [s for p in EN_FR_PAIRS for s in p]
    return build_tiny_xlmr(tmp_path_factory.mktemp("enc"), corpus=texts)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("run"))


def _predict(model_dir, run_dir):
    model = XlreModel.from_pretrained(model_dir).eval()
    tok = AutoTokenizer.from_pretrained(model_dir)
    data = build_relation_data(run_dir, tok, DataConfig(**model.config.data_config),
                               model.config.labels)
    seqs = data.splits["train"]
    rows = predict_rows(model, eval_loader(seqs, len(model.config.relations), tok.pad_token_id, 8))
    return model, seqs, rows


def test_overfit_three_pairs_save_reload(tmp_path, run_dir, encoder_dir):
    out = tmp_path / "model"
    settings = load_settings(None, [*FAST, "train.epochs=60", "model.head_dropout=0.0"])
    train(run_dir, str(encoder_dir), out, settings)
    history = json.loads((out / "history.json").read_text())
    assert history["epochs"][-1]["losses"]["loss"] < 0.1
    assert history["epochs"][-1]["losses"]["loss"] < history["epochs"][0]["losses"]["loss"] / 20
    for name in ("config.json", "model.safetensors", "tokenizer.json", "train.toml",
                 "metrics.json", "data_report.json"):
        assert (out / name).exists(), name
    model, seqs, rows = _predict(out, run_dir)
    # Every instance is predicted exactly as labelled, in both languages.
    for res, row in zip(rows, seqs, strict=True):
        for probs, gold in zip(res["probs"], row["inst_labels"], strict=True):
            assert [i for i, p in enumerate(probs) if p >= 0.5] == gold
        gold_tags = [row["entity_labels"][p] for p in row["label_pos"]]
        assert res["tags"] == gold_tags
    # The saved model is the trained one: same outputs as the last checkpoint's weights.
    ckpt = latest_checkpoint(out)
    again = XlreModel(model.config).eval()
    again.load_state_dict(load_file(ckpt / "model.safetensors"))
    tok = AutoTokenizer.from_pretrained(out)
    rows2 = predict_rows(again, eval_loader(seqs, 3, tok.pad_token_id, 8))
    assert [r["probs"] for r in rows] == [r["probs"] for r in rows2]


def _weights(model_dir):
    return load_file(model_dir / "model.safetensors")


@pytest.mark.parametrize(("accumulate", "every", "stop", "back_to", "epoch_ends", "extra"), [
    # 3 batches an epoch, one step each: killed after step 5, back to step 4 (epoch 2).
    (1, 2, 5, 4, [3, 6, 9], []),
    # Accumulating 2 batches: 2 steps an epoch; killed after 4, back to 3 (mid epoch 2).
    (2, 1, 4, 3, [2, 4, 6], []),
    # Batches grouped by length: the order is still a function of seed and epoch.
    (1, 2, 5, 4, [3, 6, 9], ["train.group_by_length=true"]),
])
def test_resume_equals_uninterrupted(tmp_path, run_dir, encoder_dir, accumulate, every, stop,
                                     back_to, epoch_ends, extra):
    base = [*FAST, *extra, "train.epochs=3", "train.batch_size=2",
            f"train.checkpoint_every_steps={every}",
            f"train.gradient_accumulation_steps={accumulate}", "train.keep_checkpoints=10"]
    full = tmp_path / "full"
    train(run_dir, str(encoder_dir), full, load_settings(None, base))
    cut = tmp_path / "cut"
    stopped = train(run_dir, str(encoder_dir), cut,
                    load_settings(None, [*base, f"train.stop_after_steps={stop}"]))
    assert stopped == {"stopped_at_step": stop}
    # As if killed after the last step but before its checkpoint was written.
    shutil.rmtree(cut / CHECKPOINTS / f"step-{stop:08d}")
    assert latest_checkpoint(cut).name == f"step-{back_to:08d}"
    with pytest.raises(TrainError, match="pass --resume"):
        train(run_dir, str(encoder_dir), cut, load_settings(None, base))
    with pytest.raises(TrainError, match="settings differ"):
        train(run_dir, str(encoder_dir), cut, load_settings(None, [*base, "train.seed=1"]),
              resume=True)
    train(run_dir, str(encoder_dir), cut, load_settings(None, base), resume=True)
    a, b = _weights(full), _weights(cut)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    hist_a = json.loads((full / "history.json").read_text())["epochs"]
    hist_b = json.loads((cut / "history.json").read_text())["epochs"]
    assert [h["step"] for h in hist_a] == [h["step"] for h in hist_b] == epoch_ends
    assert [h["losses"] for h in hist_a] == [h["losses"] for h in hist_b]


def test_settings_overrides_and_errors(tmp_path):
    assert parse_override("train.epochs=3") == ("train", "epochs", 3)
    assert parse_override("data.relation_repr=markers") == ("data", "relation_repr", "markers")
    assert parse_override("model.agreement=false") == ("model", "agreement", False)
    s = load_settings(None, ["train.learning_rate=1", "model.bag_weight=2"])
    assert s.train.learning_rate == 1.0 and s.model.bag_weight == 2.0
    with pytest.raises(SettingsError, match="valid fields of \\[train\\]"):
        load_settings(None, ["train.epoch=3"])
    with pytest.raises(SettingsError, match="should be int"):
        load_settings(None, ["train.epochs=3.5"])
    with pytest.raises(SettingsError, match="not one of"):
        load_settings(None, ["train.mil=bags"])
    with pytest.raises(SettingsError, match=r"table\.field"):
        load_settings(None, ["epochs=3"])
    path = tmp_path / "t.toml"
    path.write_text(s.to_toml())
    assert load_settings(path) == s
    path.write_text("[trian]\nepochs = 2\n")
    with pytest.raises(SettingsError, match="unknown table"):
        load_settings(path)


def test_cli_init_model_train_evaluate(tmp_path):
    run = write_run(tmp_path / "run", repeat=4)
    runner = CliRunner()
    enc = tmp_path / "enc"
    result = runner.invoke(app, ["init-model", "--tiny", "--run", str(run), "--out", str(enc),
                                 *TINY_CLI_SHAPE])
    assert result.exit_code == 0, result.output
    assert json.loads((enc / "xlre_encoder.json").read_text())["shape"]["hidden"] == 32
    out = tmp_path / "model"
    result = runner.invoke(app, ["train", "--run", str(run), "--model", str(enc), "--out",
                                 str(out), *FAST, "train.epochs=2"])
    assert result.exit_code == 0, result.output
    assert set(json.loads((out / "metrics.json").read_text())) == {"dev", "test"}
    result = runner.invoke(app, ["evaluate", "--model", str(out), "--run", str(run), "--split",
                                 "all", "--out", str(tmp_path / "eval")])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    # 3 sentence pairs x 4, two directed entity pairs a sentence, 3 KB pairs x 2 directions.
    counts = {lang: (report["metrics"][lang]["instances"], report["metrics"][lang]["bags"])
              for lang in ("en", "fr", "all")}
    assert counts == {"en": (24, 6), "fr": (24, 6), "all": (48, 6)}
    direct = evaluate_model(out, run, "all")["metrics"]
    for lang in ("en", "fr", "all"):
        figures = report["metrics"][lang]
        for key in ("relation_micro_f1", "relation_macro_f1", "entity_f1", "pr_auc"):
            assert figures[key] == pytest.approx(direct[lang][key]), (lang, key)
        assert set(figures["precision_at"]) == {"P@100", "P@200", "P@300"}
    assert (tmp_path / "eval" / "pr_curve-all.png").read_bytes()[:4] == b"\x89PNG"
    bad = runner.invoke(app, ["train", "--run", str(run), "--model", str(enc), "--out",
                              str(tmp_path / "m2"), "train.epochz=2"])
    assert bad.exit_code == 2 and "train.epochz" in bad.output
    bad = runner.invoke(app, ["evaluate", "--model", str(enc), "--run", str(run)])
    assert bad.exit_code == 2 and "not an xlre model" in bad.output


def test_two_processes_train_and_gather_like_one(tmp_path):
    """Two CPU processes (torchrun + gloo DDP) train with no code change, and their
    gathered dev figures equal a one-process evaluation of the saved model."""
    import os
    import subprocess
    import sys

    run = write_run(tmp_path / "run", repeat=6)
    runner = CliRunner()
    enc = tmp_path / "enc"
    assert runner.invoke(app, ["init-model", "--tiny", "--run", str(run), "--out", str(enc),
                               *TINY_CLI_SHAPE]).exit_code == 0
    out = tmp_path / "model"
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "xlre.cli", "--", "train", f"--run={run}", f"--model={enc}", f"--out={out}",
         "data.max_seq_length=128", "train.epochs=2", "train.batch_size=2",
         "data.dev_fraction=0.3", "data.test_fraction=0.3", "train.tracker='none'"],
        capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.count('"dev"') == 1  # only the main process reports
    history = json.loads((out / "history.json").read_text())
    assert history["summary"]["processes"] == 2
    gathered = json.loads((out / "metrics.json").read_text())["dev"]
    result = runner.invoke(app, ["evaluate", "--model", str(out), "--run", str(run), "--split",
                                 "dev"])
    assert result.exit_code == 0, result.output
    single = json.loads(result.stdout)["metrics"]
    for lang in ("en", "fr", "all"):
        for key in ("instances", "bags", "relation_micro_f1", "entity_f1", "pr_auc"):
            assert single[lang][key] == pytest.approx(gathered[lang][key]), (lang, key)


def test_length_grouped_order():
    from xlre.data import EpochSampler

    lengths = [(7 * i) % 23 for i in range(40)]
    sampler = EpochSampler(40, seed=3, lengths=lengths, group_size=8)
    orders = []
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        order = list(sampler)
        assert sorted(order) == list(range(40))
        for g in range(0, 40, 8):
            group = [lengths[i] for i in order[g:g + 8]]
            assert group == sorted(group, reverse=True)
        assert order == list(sampler)  # a function of seed and epoch
        orders.append(order)
    assert orders[0] != orders[1]
    with pytest.raises(ValueError, match="lengths"):
        EpochSampler(3, seed=0, lengths=[1, 2])


def test_max_steps_ends_training_with_a_finished_model(tmp_path, run_dir, encoder_dir):
    out = tmp_path / "short"
    calls = []
    metrics = train(run_dir, str(encoder_dir), out, load_settings(
        None, [*FAST, "train.epochs=3", "train.batch_size=2", "train.max_steps=1"]),
        progress=lambda kind, n, total: calls.append((kind, n, total)))
    assert "stopped_at_step" not in metrics and (out / "metrics.json").is_file()
    # The bar's total is the one batch training runs, not the epoch's three.
    assert [c for c in calls if c[0] == "train"] == [("train", 1, 1)]
    history = json.loads((out / "history.json").read_text())["epochs"]
    assert [h["step"] for h in history] == [1], "one step, then the end-of-training evaluation"
    XlreModel.from_pretrained(out)  # a loadable model
    with pytest.raises(SettingsError, match="max_steps"):
        load_settings(None, ["train.max_steps=-1"])


def test_balanced_epochs_train_on_the_sample_they_report(tmp_path, run_dir, encoder_dir):
    out = tmp_path / "balanced"
    train(run_dir, str(encoder_dir), out, load_settings(
        None, [*FAST, "train.epochs=2", "train.batch_size=1", "train.negatives_per_positive=0.5"]))
    report = json.loads((out / "data_report.json").read_text())
    positive, per_epoch = report["units_train_positive"], report["units_per_epoch"]
    assert 0 < positive < report["units_train"]
    assert per_epoch == positive + round(0.5 * positive) < report["units_train"]
    history = json.loads((out / "history.json").read_text())["epochs"]
    assert [h["step"] for h in history] == [per_epoch, 2 * per_epoch]  # batch_size 1


def test_class_weights_come_from_the_train_units_and_change_training(tmp_path, encoder_dir):
    from xlre.modeling import class_weights

    # A second P19 fact: P19 holds two bags, P17 and P108 one each.
    extra = ("hm-4", ("Carol Reed was born in Lyon .", "Carol Reed est née à Lyon ."),
             [((0, 2), (0, 2), "X4", "PER"), ((5, 6), (5, 6), "Q456", "LOC")],
             [(0, 1, "P19"), (1, 0, "NA")])
    run_dir = write_run(tmp_path / "run", (*PAIRS, extra))
    plain, weighted = tmp_path / "plain", tmp_path / "weighted"
    train(run_dir, str(encoder_dir), plain, load_settings(None, [*FAST, "train.epochs=1"]))
    train(run_dir, str(encoder_dir), weighted, load_settings(
        None, [*FAST, "train.epochs=1", "train.relation_class_weight=1.0"]))
    assert "relation_class_weights" not in json.loads((plain / "data_report.json").read_text())
    report = json.loads((weighted / "data_report.json").read_text())["relation_class_weights"]
    config = json.loads((weighted / "config.json").read_text())
    assert list(report) == config["relations"]
    # The weights are the inverse frequencies of the relations over the train units.
    from xlre.data import TrainUnits
    model, seqs, _ = _predict(weighted, run_dir)
    units = TrainUnits(seqs, "bag", model.config.data_config["max_bag_pairs"], 0)
    counts = [sum(1 for rels in units.relations if r in rels) for r in range(len(report))]
    assert sorted(counts) == [1, 1, 2]
    assert list(report.values()) == pytest.approx(class_weights(counts, 1.0).tolist(), abs=1e-4)
    loss = {name: json.loads((d / "history.json").read_text())["epochs"][0]["losses"]["loss"]
            for name, d in (("plain", plain), ("weighted", weighted))}
    assert loss["plain"] != loss["weighted"]


def test_final_evaluation_stores_the_threshold_chosen_on_dev(tmp_path, run_dir, encoder_dir):
    from accelerate import Accelerator

    from xlre.data import RelationData
    from xlre.evaluation import ALL, best_micro_threshold
    from xlre.training import final_evaluation

    out = tmp_path / "model"
    train(run_dir, str(encoder_dir), out, load_settings(None, [*FAST, "train.epochs=3"]))
    assert json.loads((out / "config.json").read_text())["relation_threshold"] == 0.5  # no dev
    model, seqs, rows = _predict(out, run_dir)
    probs = [p for r in rows for p in r["probs"]]
    gold = [ids for labs in seqs["inst_labels"] for ids in labs]
    expected, f1 = best_micro_threshold(probs, gold)
    assert expected != 0.5
    # The training sentences stand in for a dev split.
    data = RelationData({"dev": seqs, "test": seqs}, model.config.labels, None, {})
    tok = AutoTokenizer.from_pretrained(out)
    metrics, threshold = final_evaluation(out, data, Accelerator(cpu=True), 8, tok.pad_token_id,
                                          tune_threshold=True)
    assert threshold == {"value": expected, "chosen_on": "dev", "dev_score": f1}
    assert XlreModel.from_pretrained(out).config.relation_threshold == expected
    assert metrics["dev"][ALL]["relation_micro_f1"] == pytest.approx(f1)
    assert metrics["test"][ALL]["relation_micro_f1"] == pytest.approx(f1)  # scored with it


def test_train_on_two_runs_records_both_and_resumes(tmp_path, encoder_dir):
    runs = [write_run(tmp_path / "run-a"), write_run(tmp_path / "run-b")]
    out = tmp_path / "two"
    settings = load_settings(None, [*FAST, "train.epochs=2", "train.stop_after_steps=1"])
    assert train(runs, str(encoder_dir), out, settings) == {"stopped_at_step": 1}
    assert json.loads((out / "train_inputs.json").read_text())["run"] == [str(r) for r in runs]
    with pytest.raises(TrainError, match="the earlier run trained"):  # the same runs, or refused
        train(runs[:1], str(encoder_dir), out, settings, resume=True)
    metrics = train(runs, str(encoder_dir), out, load_settings(None, [*FAST, "train.epochs=2"]),
                    resume=True)
    assert "train" not in metrics and (out / "metrics.json").is_file()
    assert json.loads((out / "data_report.json").read_text())["records_src"] == 6


def test_a_source_only_model_is_evaluated_on_every_language(tmp_path, run_dir, encoder_dir):
    out = tmp_path / "en-only"
    train(run_dir, str(encoder_dir), out, load_settings(
        None, [*FAST, "train.epochs=1", "train.max_steps=1", "data.languages='en'"]))
    assert json.loads((out / "data_report.json").read_text())["records_dropped_language"] == 3
    result = evaluate_model(out, run_dir, "train")
    assert {"en", "fr"} <= set(result["metrics"])  # French zero-shot, not refused


class _RunsCode:
    """A pickle that, if unpickled, would write a file: what an untrusted checkpoint could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_resume_never_unpickles_code_from_a_checkpoint(tmp_path, run_dir, encoder_dir):
    out = tmp_path / "ckpt"
    settings = load_settings(None, [*FAST, "train.epochs=2", "train.stop_after_steps=1"])
    assert train(run_dir, str(encoder_dir), out, settings) == {"stopped_at_step": 1}
    ckpt = latest_checkpoint(out)
    marker = tmp_path / "ran"
    torch.save({"state": _RunsCode(marker), "param_groups": []}, ckpt / "optimizer.bin")
    with pytest.raises(TrainError, match="weights_only"):
        train(run_dir, str(encoder_dir), out, settings, resume=True)
    assert not marker.exists()


@pytest.mark.parametrize("route", ["int8", "onnx-int8"])
def test_evaluate_scores_an_optimised_route_through_the_bag_head(tmp_path, run_dir, encoder_dir, route):
    """evaluate --optimize ROUTE runs the bag head too (once broken: the int8 route
    quantised the relation matrix, whose weight bag scoring reads), close to fp32."""
    if route == "onnx-int8":
        pytest.importorskip("onnxruntime")
    out = tmp_path / "model"
    train(run_dir, str(encoder_dir), out, load_settings(None, [*FAST, "train.epochs=2"]))
    plain = evaluate_model(out, run_dir, "train", out_dir=tmp_path / "fp32")["metrics"]
    fast = evaluate_model(out, run_dir, "train", out_dir=tmp_path / route, optimize=route)["metrics"]
    assert set(fast) == set(plain)
    for lang in plain:
        assert abs(fast[lang]["relation_micro_f1"] - plain[lang]["relation_micro_f1"]) <= 0.34, lang


def test_a_head_refit_fits_the_relation_head_on_frozen_features(tmp_path, run_dir, encoder_dir):
    base = [*FAST, "train.epochs=1", "train.max_steps=1", "train.learning_rate=1e-5",
            "train.head_learning_rate=1e-2", "model.head_dropout=0.0"]
    plain, refit = tmp_path / "plain", tmp_path / "refit"
    train(run_dir, str(encoder_dir), plain, load_settings(None, base))
    train(run_dir, str(encoder_dir), refit, load_settings(
        None, [*base, "train.head_refit_epochs=150", "train.head_refit_batch_size=2",
                     "train.head_refit_learning_rate=1e-2"]))
    assert "head_refit" not in json.loads((plain / "history.json").read_text())["epochs"][0]
    summary = json.loads((refit / "history.json").read_text())["epochs"][0]["head_refit"]
    _, seqs, rows = _predict(refit, run_dir)
    gold = [ids for labs in seqs["inst_labels"] for ids in labs]
    assert summary["instances"] == len(gold) and summary["positive"] == sum(map(bool, gold))
    assert summary["steps"] == 150 * -(-len(gold) // 2) and summary["loss"] < 0.05
    # The refit reads the encoder and leaves it as fine-tuning left it.
    weights = {name: load_file(d / "model.safetensors") for name, d in (("plain", plain),
                                                                        ("refit", refit))}
    encoder = [k for k in weights["plain"] if k.startswith("encoder.")]
    assert encoder and all(torch.equal(weights["plain"][k], weights["refit"][k]) for k in encoder)
    assert not torch.equal(weights["plain"]["relation_matrix.weight"],
                           weights["refit"]["relation_matrix.weight"])
    # It fits the train instances: every gold relation above 0.5, every other one below.
    probs = [p for r in rows for p in r["probs"]]
    for p, ids in zip(probs, gold, strict=True):
        assert {r for r, v in enumerate(p) if v > 0.5} == set(ids)
    with pytest.raises(SettingsError, match="head_refit_batch_size"):
        load_settings(None, ["train.head_refit_batch_size=0"])


def test_a_head_warmup_fits_the_head_before_the_first_step_and_only_once(tmp_path, run_dir,
                                                                        encoder_dir):
    # Fine-tuning at a learning rate too small to move anything: what the model knows of
    # the relations after one step, the warmup taught it.
    base = [*FAST, "train.epochs=2", "train.learning_rate=1e-9", "train.head_learning_rate=1e-9",
            "model.head_dropout=0.0", "train.batch_size=2", "train.checkpoint_every_steps=1",
            "train.max_steps=2"]
    warm = [*base, "train.head_warmup_epochs=150", "train.head_refit_batch_size=2",
            "train.head_refit_learning_rate=1e-2"]
    plain, out = tmp_path / "plain", tmp_path / "warm"
    train(run_dir, str(encoder_dir), plain, load_settings(None, base))
    calls: list[str] = []
    stopped = train(run_dir, str(encoder_dir), out, load_settings(
        None, [*warm, "train.stop_after_steps=1"]), progress=lambda kind, *_: calls.append(kind))
    assert stopped == {"stopped_at_step": 1} and calls.count("refit") == 150
    calls.clear()
    train(run_dir, str(encoder_dir), out, load_settings(None, warm), resume=True, progress=lambda kind, *_: calls.append(kind))
    assert "refit" not in calls and "train" in calls  # resumed past the warmup: not again
    assert "head_warmup" not in json.loads((plain / "history.json").read_text())["summary"]
    history = json.loads((out / "history.json").read_text())
    summary = history["summary"]["head_warmup"]
    assert all("head_refit" not in e for e in history["epochs"])
    _, seqs, rows = _predict(out, run_dir)
    gold = [ids for labs in seqs["inst_labels"] for ids in labs]
    assert summary["instances"] == len(gold) and summary["steps"] == 150 * -(-len(gold) // 2)
    probs = [p for r in rows for p in r["probs"]]
    for p, ids in zip(probs, gold, strict=True):
        assert {r for r, v in enumerate(p) if v > 0.5} == set(ids)
    _, _, plain_rows = _predict(plain, run_dir)
    plain_probs = [p for r in plain_rows for p in r["probs"]]
    assert any({r for r, v in enumerate(p) if v > 0.5} != set(ids)
               for p, ids in zip(plain_probs, gold, strict=True))
    with pytest.raises(SettingsError, match="head_warmup_epochs"):
        load_settings(None, ["train.head_warmup_epochs=-1"])
