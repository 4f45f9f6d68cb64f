"""The multitask model: bag attention, losses, heads, save and reload."""

from __future__ import annotations

import math

import pytest
import torch

from tests.helpers.handmade import LABELS, build_hand_encoder, data_config, write_run
from xlre.data import (
    Collator,
    LabelMaps,
    TrainUnits,
    build_relation_data,
)
from xlre.modeling import (
    XlreConfig,
    XlreModel,
    adaptive_threshold_loss,
    bernoulli_symmetric_kl,
    class_weights,
    multilabel_loss,
)

_config = data_config


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory):
    return build_hand_encoder(tmp_path_factory.mktemp("enc"))


@pytest.fixture()
def run_dir(tmp_path):
    return write_run(tmp_path / "run")



def _tiny_model(encoder_dir, **settings) -> XlreModel:
    model, _ = XlreModel.from_encoder(str(encoder_dir), LabelMaps(("PER",), ("R",)), **settings)
    return model.eval()


def test_bag_attention_on_a_hand_made_bag(encoder_dir):
    model = _tiny_model(encoder_dir)
    hidden = model.relation_matrix.in_features
    with torch.no_grad():
        model.relation_matrix.weight.zero_()
        model.relation_matrix.weight[0, 0] = 1.0  # M_R = e_0
        model.relation_matrix.bias.fill_(0.5)
    x = torch.zeros(3, hidden)
    x[0, 0], x[1, 1], x[2, 0] = 2.0, 1.0, -1.0
    # Bag 0 = {x0, x1, x2}; bag 1 = {x1} (padded with -1).
    bag_index = torch.tensor([[0, 1, 2], [1, -1, -1]])
    logits, attn = model.bag_scores(x, bag_index, return_attention=True)
    # Scores x_i . M_R are 2, 0, -1 -> softmax weights e^2, 1, e^-1 over their sum.
    z = math.exp(2) + 1 + math.exp(-1)
    expected = torch.tensor([math.exp(2) / z, 1 / z, math.exp(-1) / z])
    assert torch.allclose(attn[0, :, 0], expected, atol=1e-6)
    # s_R = sum a_i x_i; its first coordinate is 2 a_0 - a_2; the bag logit is that + 0.5.
    assert logits[0, 0].item() == pytest.approx(float(2 * expected[0] - expected[2]) + 0.5, abs=1e-6)
    # A one-member bag attends fully to it; padding gets weight 0.
    assert attn[1, :, 0].tolist() == pytest.approx([1.0, 0.0, 0.0])
    assert logits[1, 0].item() == pytest.approx(0.0 + 0.5)


def test_adaptive_threshold_loss_by_hand():
    logits = torch.tensor([[2.0, -1.0, 0.5], [-3.0, -2.0, -1.0], [1.0, 3.0, -4.0]])
    gold = torch.tensor([[1, 0, 0], [0, 0, 0], [1, 1, 0]])
    e = math.exp
    rows = [
        # one gold relation: log(1 + e^-l_gold) + log(1 + sum over the others e^l)
        math.log1p(e(-2.0)) + math.log(1 + e(-1.0) + e(0.5)),
        # none: the threshold (logit 0) against every relation
        math.log(1 + e(-3.0) + e(-2.0) + e(-1.0)),
        # two: each gold one against the threshold, in one softmax over {0, gold logits}
        -(1.0 - math.log(1 + e(1.0) + e(3.0))) - (3.0 - math.log(1 + e(1.0) + e(3.0)))
        + math.log(1 + e(-4.0)),
    ]
    assert adaptive_threshold_loss(logits, gold).item() == pytest.approx(sum(rows) / 3, rel=1e-6)
    # Gold logits far above 0 and the rest far below: almost no loss.
    sure = torch.tensor([[20.0, -20.0, -20.0]])
    assert adaptive_threshold_loss(sure, torch.tensor([[1, 0, 0]])).item() < 1e-7


def test_symmetric_kl_is_zero_only_for_equal_predictions():
    a = torch.tensor([[2.0, -1.0]])
    assert bernoulli_symmetric_kl(a, a).item() == pytest.approx(0.0, abs=1e-7)
    b = torch.tensor([[-2.0, -1.0]])
    p, q = torch.sigmoid(torch.tensor(2.0)), torch.sigmoid(torch.tensor(-2.0))
    kl = (p - q) * (torch.log(p) - torch.log(q)) + (q - p) * (torch.log(1 - p) - torch.log(1 - q))
    assert bernoulli_symmetric_kl(a, b).item() == pytest.approx(kl.item() / 2, rel=1e-5)


def test_heads_and_weights_switch_off(run_dir, encoder_dir):
    model, tok = XlreModel.from_encoder(str(encoder_dir), LABELS, agreement=False,
                                        bag_weight=0.0)
    data = build_relation_data(run_dir, tok, _config(), LABELS)
    units = TrainUnits(data.splits["train"], "bag", 4, seed=1)
    batch = Collator(data.splits["train"], 3, tok.pad_token_id)([units[i] for i in range(len(units))])
    batch.pop("rows")
    out = model(**batch)
    assert out.agreement_loss is None and out.bag_loss is None
    assert out.sentence_loss is not None and out.entity_loss is not None
    assert out.loss.item() == pytest.approx(out.entity_loss.item() + out.sentence_loss.item(),
                                            rel=1e-5)
    entity_only, _ = XlreModel.from_encoder(str(encoder_dir), LABELS, relation_head=False)
    out = entity_only(**batch)
    assert out.relation_logits is None and out.loss.item() == pytest.approx(out.entity_loss.item())


def test_save_and_reload_gives_identical_outputs(tmp_path, run_dir, encoder_dir):
    model, tok = XlreModel.from_encoder(str(encoder_dir), LABELS, relation_repr="markers")
    model.eval()
    data = build_relation_data(run_dir, tok, _config(relation_repr="markers"), LABELS)
    rows = list(range(len(data.splits["train"])))
    batch = Collator(data.splits["train"], 3, tok.pad_token_id)(rows)
    batch.pop("rows")
    before = model(**batch)
    model.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").exists()
    assert not list((tmp_path / "m").glob("*.bin")) and not list((tmp_path / "m").glob("*.pkl"))
    again = XlreModel.from_pretrained(tmp_path / "m").eval()
    assert isinstance(again.config, XlreConfig)
    assert again.config.relations == list(LABELS.relations)
    assert again.config.relation_repr == "markers"
    after = again(**batch)
    assert torch.equal(before.entity_logits, after.entity_logits)
    assert torch.equal(before.relation_logits, after.relation_logits)


def test_class_weights_by_hand():
    # Counts 1, 4 and 0 (never a label): the mean over the seen ones is 2.5.
    w = class_weights([1, 4, 0], 0.5)
    assert w.tolist() == pytest.approx([math.sqrt(2.5), math.sqrt(2.5 / 4), 1.0])
    assert class_weights([1, 4, 0], 1.0).tolist() == pytest.approx([2.5, 2.5 / 4, 1.0])
    assert class_weights([1, 4], 0.0) is None
    assert class_weights([0, 0], 0.5) is None
    with pytest.raises(ValueError, match="0 or more"):
        class_weights([1], -1.0)


def test_weighted_losses_scale_only_the_positive_terms():
    logits = torch.tensor([[0.3, -1.2, 2.0], [-0.5, 0.8, 0.1]])
    gold = torch.tensor([[1, 0, 0], [0, 1, 1]])
    w = torch.tensor([3.0, 0.5, 2.0])

    def bce(x: float, y: int, weight: float) -> float:
        p = 1 / (1 + math.exp(-x))
        return -(weight * y * math.log(p) + (1 - y) * math.log(1 - p))

    rows = [sum(bce(x, y, wi) for x, y, wi in zip(lr, gr, w.tolist(), strict=True))
            for lr, gr in zip(logits.tolist(), gold.tolist(), strict=True)]
    assert multilabel_loss(logits, gold, w).item() == pytest.approx(sum(rows) / 2, rel=1e-6)
    assert multilabel_loss(logits, gold, torch.ones(3)).item() == pytest.approx(
        multilabel_loss(logits, gold).item(), rel=1e-6)
    # Adaptive: only the gold terms are weighted, the threshold term is not.
    unweighted = adaptive_threshold_loss(logits, gold).item()
    neg_only = adaptive_threshold_loss(logits, gold, torch.zeros(3)).item()
    assert 0 < neg_only < unweighted
    assert adaptive_threshold_loss(logits, gold, torch.full((3,), 2.0)).item() == pytest.approx(
        2 * unweighted - neg_only, rel=1e-6)
