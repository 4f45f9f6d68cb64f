"""LoRA training (model.peft = "lora"): adapters on the encoder, heads fully trained, the
saved model merged and loadable without peft, checkpoints resumable, bad settings refused."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import torch
from safetensors.torch import load_file

from alignment.errors import SettingError
from tests.helpers.handmade import PAIRS, build_hand_encoder, write_run
from xlre.extraction import Extractor
from xlre.modeling import (
    XlreConfig,
    XlreModel,
    add_lora,
    count_parameters,
    load_model_dir,
    merged_state_dict,
)
from xlre.training import CHECKPOINTS, latest_checkpoint, train
from xlre.training.loop import Trainer
from xlre.training.settings import load_settings

FAST = [
    "data.dev_fraction=0.0", "data.test_fraction=0.0", "data.max_seq_length=128",
    "train.learning_rate=1e-2", "train.head_learning_rate=1e-2", "train.batch_size=4",
    "train.warmup_ratio=0.0", "train.early_stopping_patience=0", "train.tracker='none'",
    "model.peft='lora'",
]
TEXTS = [(text, lang) for _, pair, _, _ in PAIRS for text, lang in zip(pair, ("en", "fr"),
                                                                       strict=True)]


@pytest.fixture
def peft():
    return pytest.importorskip("peft")


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return build_hand_encoder(tmp_path_factory.mktemp("enc"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return write_run(tmp_path_factory.mktemp("run"))


def _triples(extractor):
    out = []
    for text, lang in TEXTS:
        for t in extractor.extract([text], lang=lang):
            out.append(((t.subject.text, t.subject.char_start), t.relation,
                        (t.object.text, t.object.char_start), t.score))
    return out


def test_lora_trains_adapters_and_heads_only_and_saves_merged(tmp_path, run_dir, encoder_dir,
                                                              peft):
    out = tmp_path / "model"
    settings = load_settings(None, [*FAST, "train.epochs=25", "model.head_dropout=0.0",
                                    "model.lora_dropout=0.0"])
    trainer = Trainer.prepare(run_dir, str(encoder_dir), out, settings)
    model = trainer.accelerator.unwrap_model(trainer.model)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    # Only adapters in the encoder; every head parameter trainable.
    assert all(".lora_" in n for n in trainable if n.startswith("encoder."))
    assert {n for n, _ in model.named_parameters() if not n.startswith("encoder.")} <= trainable
    adapted = [n for n in trainable if n.endswith(".lora_A.default.weight")]
    assert len(adapted) == 4 * 4  # 4 layers x (query, key, value, attention.output.dense)
    while not trainer.done:
        assert trainer.run_epoch()
        trainer.end_epoch()

    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed  # it trained
    assert changed <= trainable  # base encoder weights, embeddings, layer norms: fixed
    assert any(".lora_B." in k for k in changed)  # B starts at 0: the adapters learned
    assert any(k.startswith("relation_matrix.") for k in changed)
    summary_counts = count_parameters(model)
    assert trainer.param_counts == summary_counts

    # The saved directory is a plain xlre model: no LoRA entries, LoRA recorded in config.
    saved = load_file(out / "model.safetensors")
    assert not [k for k in saved if "lora_" in k or "base_layer" in k]
    record = json.loads((out / "config.json").read_text())["peft_training"]
    assert record == {"method": "lora", "rank": 8, "alpha": 16.0, "dropout": 0.0,
                      "target_modules": ["query", "key", "value", "attention.output.dense"],
                      "adapted_modules": 16}
    reloaded, tokenizer = load_model_dir(out)
    assert not any(isinstance(m, peft.tuners.lora.LoraLayer) for m in reloaded.modules())

    # The reloaded model extracts what the in-memory model (adapters unmerged) extracts.
    live = _triples(Extractor(model, trainer.tokenizer, "live", threshold=0.3))
    loaded = _triples(Extractor(reloaded, tokenizer, "loaded", threshold=0.3))
    assert live, "the model should have learned some triples"
    assert [t[:3] for t in live] == [t[:3] for t in loaded]
    assert max(abs(a[3] - b[3]) for a, b in zip(live, loaded, strict=True)) < 1e-5
    # Training can go on with the adapters as they were (save merged a copy).
    assert any(isinstance(m, peft.tuners.lora.LoraLayer) for m in model.modules())
    assert all(torch.equal(after[k], model.state_dict()[k]) for k in after)

    metrics = trainer.finish()
    assert "train" not in metrics
    summary = json.loads((out / "history.json").read_text())["summary"]
    assert summary["peft"] == "lora"
    assert summary["trainable_parameters"] == summary_counts["trainable_parameters"]
    assert 0 < summary["trainable_share"] < 1


def test_merged_weights_give_the_adapted_outputs(encoder_dir, peft):
    from tests.helpers.handmade import LABELS

    model, tok = XlreModel.from_encoder(str(encoder_dir), LABELS)
    add_lora(model, rank=4, alpha=8.0, dropout=0.0, target_modules=["query", "value"])
    torch.manual_seed(0)
    with torch.no_grad():  # B is 0 at the start: give the adapters something to merge
        for name, param in model.named_parameters():
            if ".lora_B." in name:
                param.normal_(std=0.5)
    model.eval()
    batch = tok(["Alice Martin was born in Paris ."], return_tensors="pt")
    want = model.encoder(**batch).last_hidden_state
    state = model.state_dict()
    copy = {k: v.clone() for k, v in state.items()}
    merged = merged_state_dict(state, model.config.peft_training)
    assert all(torch.equal(copy[k], state[k]) for k in state)  # inputs untouched
    plain = XlreModel(XlreConfig(**{**model.config.to_dict(), "peft_training": {}})).eval()
    plain.load_state_dict(merged)  # strict: the plain names, nothing left over
    got = plain.encoder(**batch).last_hidden_state
    assert (got - want).abs().max() < 1e-5
    # The adapters moved the weights: merging did something.
    query = "encoder.encoder.layer.0.attention.self.query"
    assert (merged[f"{query}.weight"] - state[f"{query}.base_layer.weight"]).abs().max() > 1e-3


def test_trainable_share_of_real_shapes(peft):
    """XLM-R base and multilingual-e5-small shapes (on the meta device: no weights)."""
    from tests.helpers.handmade import LABELS

    shapes = {
        "xlm-roberta-base": dict(model_type="xlm-roberta", vocab_size=250002, hidden_size=768,
                                 num_hidden_layers=12, num_attention_heads=12,
                                 intermediate_size=3072, max_position_embeddings=514),
        "multilingual-e5-small": dict(model_type="bert", vocab_size=250037, hidden_size=384,
                                      num_hidden_layers=12, num_attention_heads=12,
                                      intermediate_size=1536, max_position_embeddings=512),
    }
    for name, enc in shapes.items():
        with torch.device("meta"):
            model = XlreModel(XlreConfig(encoder=enc, entity_types=list(LABELS.entity_types),
                                         relations=list(LABELS.relations)))
            add_lora(model, rank=8, alpha=16.0, dropout=0.05,
                     target_modules=["query", "key", "value", "attention.output.dense"])
        counts = count_parameters(model)
        h = enc["hidden_size"]
        lora = 12 * 4 * 8 * (h + h)
        heads = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("encoder."))
        assert counts["trainable_parameters"] == lora + heads, name
        assert counts["trainable_share"] < 0.01, (name, counts)


def test_lora_resume_equals_uninterrupted(tmp_path, run_dir, encoder_dir, peft):
    base = [*FAST, "train.epochs=2", "train.batch_size=2", "train.checkpoint_every_steps=1",
            "train.keep_checkpoints=10", "train.freeze_word_embeddings=true"]
    full = tmp_path / "full"
    train(run_dir, str(encoder_dir), full, load_settings(None, base))
    cut = tmp_path / "cut"
    assert train(run_dir, str(encoder_dir), cut,
                 load_settings(None, [*base, "train.stop_after_steps=3"])) == {
        "stopped_at_step": 3}
    shutil.rmtree(cut / CHECKPOINTS / "step-00000003")
    ckpt = load_file(latest_checkpoint(cut) / "model.safetensors")
    assert any(".lora_A." in k for k in ckpt)  # checkpoints keep the adapters unmerged
    train(run_dir, str(encoder_dir), cut, load_settings(None, base), resume=True)
    a, b = load_file(full / "model.safetensors"), load_file(cut / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.mark.parametrize(("override", "message"), [
    ("model.peft='qlora'", r"model\.peft = 'qlora' is not one of: none, lora"),
    ("model.lora_rank=0", r"model\.lora_rank must be at least 1"),
    ("model.lora_alpha=0", r"model\.lora_alpha must be > 0"),
    ("model.lora_dropout=1.0", r"model\.lora_dropout must lie in \[0, 1\)"),
    ("model.lora_target_modules=[]", r"model\.lora_target_modules = \[\] should be"),
    ("model.lora_target_modules='query'", r"model\.lora_target_modules = 'query' should be a list of strings"),
    ("data.relation_repr='markers'", r"model\.peft=lora keeps the encoder's word embeddings"),
])
def test_bad_lora_settings_are_refused(override, message):
    with pytest.raises(SettingError, match=message) as err:
        load_settings(None, ["model.peft='lora'", override])
    assert "\n" not in str(err.value)


def test_unknown_target_module_names_the_encoders_layers(tmp_path, run_dir, encoder_dir, peft):
    settings = load_settings(None, [*FAST, "model.lora_target_modules=['q_proj', 'value']"])
    with pytest.raises(SettingError, match=r"'q_proj' names no linear layer of the encoder; "
                       r"its linear layers .*attention\.self\.query") as err:
        train(run_dir, str(encoder_dir), tmp_path / "m", settings)
    assert "\n" not in str(err.value)


def test_missing_peft_names_the_extra(tmp_path, run_dir, encoder_dir, monkeypatch):
    monkeypatch.setitem(sys.modules, "peft", None)  # import peft -> ImportError
    with pytest.raises(SettingError, match=r"pip install 'xlre\[peft\]'"):
        train(run_dir, str(encoder_dir), tmp_path / "m", load_settings(None, FAST))
    assert not (tmp_path / "m" / "train.toml").exists()  # refused before anything was written
