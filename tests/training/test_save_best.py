"""``Trainer.save_best``: the best model of OUT is replaced whole or not at all."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from accelerate import Accelerator
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer

from tests.helpers.tiny_models import build_tiny_xlmr
from xlre.training import loop
from xlre.training.loop import Trainer


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return build_tiny_xlmr(tmp_path_factory.mktemp("enc"), corpus=["a small corpus", "un petit"])


def _trainer(out: Path, encoder_dir: Path, seed: int) -> SimpleNamespace:
    torch.manual_seed(seed)
    model = AutoModel.from_pretrained(encoder_dir)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_()
    return SimpleNamespace(
        accelerator=Accelerator(cpu=True),
        model=model,
        tokenizer=AutoTokenizer.from_pretrained(encoder_dir),
        out_dir=out,
        main=True,
    )


def _tree(path: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()
    }


def _with_old_model(tmp_path: Path, encoder_dir: Path) -> Path:
    """OUT with a saved best model, settings and a checkpoint beside it."""
    out = tmp_path / "model"
    Trainer.save_best(_trainer(out, encoder_dir, seed=1))
    (out / "train.toml").write_text("[train]\n", encoding="utf-8")
    (out / "checkpoints" / "step-00000003").mkdir(parents=True)
    (out / "checkpoints" / "step-00000003" / "trainer_state.json").write_text("{}")
    return out


def test_a_normal_save_replaces_the_model_and_keeps_the_rest(tmp_path, encoder_dir):
    out = _with_old_model(tmp_path, encoder_dir)
    before = _tree(out)
    trainer = _trainer(out, encoder_dir, seed=2)
    Trainer.save_best(trainer)
    after = _tree(out)
    assert after["model.safetensors"] != before["model.safetensors"]
    saved = load_file(out / "model.safetensors")
    for name, value in trainer.model.state_dict().items():
        assert torch.equal(saved[name], value), name
    assert after["train.toml"] == before["train.toml"]
    assert after["checkpoints/step-00000003/trainer_state.json"] == b"{}"
    assert sorted(after) == sorted(before)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_save_that_fails_midway_leaves_the_old_model(tmp_path, encoder_dir, monkeypatch):
    out = _with_old_model(tmp_path, encoder_dir)
    before = _tree(out)
    trainer = _trainer(out, encoder_dir, seed=2)

    def killed(*args, **kwargs):  # the weights are written, the tokenizer not yet
        raise OSError("killed while saving")

    monkeypatch.setattr(trainer.tokenizer, "save_pretrained", killed)
    with pytest.raises(OSError, match="killed while saving"):
        Trainer.save_best(trainer)
    assert _tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


def test_a_failed_swap_puts_the_old_model_back(tmp_path, encoder_dir, monkeypatch):
    out = _with_old_model(tmp_path, encoder_dir)
    before = _tree(out)
    rename = Path.rename

    def failing_rename(self, target):
        if ".partial-" in self.name:  # moving the new model in
            raise OSError("killed while swapping")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", failing_rename)
    # The two-rename swap, taken where the system cannot exchange two paths atomically.
    monkeypatch.setattr(loop, "_exchange", lambda a, b: False)
    with pytest.raises(OSError, match="killed while swapping"):
        Trainer.save_best(_trainer(out, encoder_dir, seed=2))
    assert _tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
