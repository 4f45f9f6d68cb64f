"""NeuralAligner (batched SimAlign) against simalign itself, on tiny random encoders."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from alignment.aligners import get_aligner
from alignment.aligners.base import AlignerError
from alignment.aligners.neural import NeuralAligner, pick_windows, window_starts
from alignment.records import Links
from tests.helpers.tiny_models import EN_FR_PAIRS, build_tiny_xlmr, with_max_positions

LAYER = 2  # of the tiny model's 4: exercises the layer cut
PAIRS = [(en.split(), fr.split()) for en, fr in EN_FR_PAIRS[:20]]
SRC = [s for s, _ in PAIRS]
TGT = [t for _, t in PAIRS]
# Over 90 subwords with the tiny tokenizer, well past the 36 of the 40-position copy.
LONG = " ".join(en for en, _ in EN_FR_PAIRS[20:33]).split()


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Tiny random XLM-R, 128 tokens a sequence."""
    return build_tiny_xlmr(tmp_path_factory.mktemp("tiny-xlmr"))


@pytest.fixture(scope="session")
def tiny40_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same weights with only 40 positions (38 tokens, 36 subwords a sequence)."""
    return with_max_positions(tiny_dir, tmp_path_factory.mktemp("tiny-xlmr-40"), 40)


@pytest.fixture(scope="session")
def simalign_ref(tiny_dir: Path) -> dict[str, list[list[tuple[int, int]]]]:
    """simalign's own links for PAIRS (subword level), per matching method."""
    from simalign import SentenceAligner

    sa = SentenceAligner(
        model=str(tiny_dir), token_type="bpe", matching_methods="aim", layer=LAYER, device="cpu"
    )
    ref: dict[str, list] = {"inter": [], "itermax": [], "mwmf": []}
    for s, t in PAIRS:
        out = sa.get_word_aligns(s, t)
        for key in ref:
            ref[key].append(sorted(out[key]))
    return ref


@pytest.mark.parametrize(("method", "key"), [("argmax", "inter"), ("itermax", "itermax"), ("match", "mwmf")])
def test_batched_equals_simalign(tiny_dir: Path, simalign_ref, method: str, key: str) -> None:
    aligner = NeuralAligner(str(tiny_dir), layer=LAYER, method=method, batch_size=8, device="cpu")
    links = aligner.align(SRC, TGT)
    assert [sorted(lk.pairs()) for lk in links] == simalign_ref[key]
    assert sum(len(lk) for lk in links) > len(PAIRS)


def test_word_level_equals_simalign(tiny_dir: Path) -> None:
    from simalign import SentenceAligner

    sa = SentenceAligner(
        model=str(tiny_dir), token_type="word", matching_methods="a", layer=LAYER, device="cpu"
    )
    ref = [sorted(sa.get_word_aligns(s, t)["inter"]) for s, t in PAIRS[:8]]
    aligner = NeuralAligner(str(tiny_dir), layer=LAYER, token_level="word", device="cpu")
    assert [sorted(lk.pairs()) for lk in aligner.align(SRC[:8], TGT[:8])] == ref


def test_subwords_are_tokenize_per_word(tiny_dir: Path) -> None:
    aligner = NeuralAligner(str(tiny_dir), layer=LAYER, device="cpu")
    words = [w for s in SRC for w in s] + ["xyzzy", ""]
    ids = aligner.subword_ids(words)
    for w, pieces in zip(words, ids, strict=True):
        assert len(pieces) == max(1, len(aligner._tokenizer.tokenize(w)))
    assert ids[-1] == (aligner._tokenizer.unk_token_id,)  # a word without subwords
    assert len(aligner._model.encoder.layer) == LAYER  # layers above LAYER are not run


def assert_same_links(a: list[Links], b: list[Links]) -> None:
    """Same links; scores equal up to float rounding (padding changes the last bits)."""
    assert [lk.pairs() for lk in a] == [lk.pairs() for lk in b]
    for la, lb in zip(a, b, strict=True):
        for x, y in zip(la, lb, strict=True):
            assert x.score == pytest.approx(y.score, abs=1e-5)


def test_batch_size_does_not_change_links(tiny_dir: Path) -> None:
    one = NeuralAligner(str(tiny_dir), layer=LAYER, method="itermax", batch_size=1, device="cpu")
    eight = NeuralAligner(str(tiny_dir), layer=LAYER, method="itermax", batch_size=8, device="cpu")
    assert_same_links(one.align(SRC, TGT), eight.align(SRC, TGT))


def test_onednn_linears_change_nothing_but_speed(tiny_dir: Path) -> None:
    default = NeuralAligner(str(tiny_dir), layer=LAYER, method="match", device="cpu")
    plain = NeuralAligner(str(tiny_dir), layer=LAYER, method="match", device="cpu", onednn=False)
    assert plain.onednn_linears == 0
    if torch.backends.mkldnn.is_available():
        assert default.onednn_linears > 0
    assert_same_links(default.align(SRC, TGT), plain.align(SRC, TGT))


@pytest.mark.parametrize("method", ["argmax", "itermax", "match"])
def test_scores_present_and_in_unit_range(tiny_dir: Path, method: str) -> None:
    aligner = get_aligner("simalign", model=str(tiny_dir), layer=LAYER, method=method, device="cpu")
    links = aligner.align(SRC[:6], TGT[:6])
    assert all(len(lk) for lk in links)
    for lk in links:
        for link in lk:
            assert link.score is not None and 0.0 <= link.score <= 1.0


def test_empty_side_gives_empty_links(tiny_dir: Path) -> None:
    aligner = NeuralAligner(str(tiny_dir), layer=LAYER, device="cpu")
    links = aligner.align([[], SRC[0], SRC[1], []], [TGT[0], [], TGT[1], []])
    assert [len(lk) for lk in links[:2]] == [0, 0] and len(links[3]) == 0
    assert_same_links(links[2:3], aligner.align([SRC[1]], [TGT[1]]))
    assert aligner.align([], []) == []


def test_window_plan() -> None:
    assert window_starts(30, 36) == [0]
    starts = window_starts(100, 36)
    assert starts == [0, 18, 36, 54, 64]
    choice = pick_windows(100, 36, starts)
    # Each subword sits in its window, and never next to a cut edge when it can avoid it.
    for p, w in enumerate(choice.tolist()):
        s = starts[w]
        assert s <= p < s + 36
        left = p - s if s > 0 else 10**9
        right = s + 35 - p if s + 36 < 100 else 10**9
        assert min(left, right) >= 8


def _window_reference(model_dir: Path, ids: tuple[int, ...], width: int) -> torch.Tensor:
    """Independent windowed embedding: run every window, keep the best-placed copy."""
    from transformers import AutoModel

    model = AutoModel.from_pretrained(model_dir).eval()
    n = len(ids)
    starts = [*range(0, n - width, width // 2), n - width]
    per_window = []
    with torch.inference_mode():
        for s in starts:
            seq = torch.tensor([[0, *ids[s : s + width], 2]])
            per_window.append(model(input_ids=seq, output_hidden_states=True).hidden_states[LAYER][0, 1:-1])
    rows = []
    for p in range(n):
        best, best_room = None, -1
        for w, s in enumerate(starts):
            if not s <= p < s + width:
                continue
            room = min(p - s if s > 0 else n, s + width - 1 - p if s + width < n else n)
            if room > best_room:
                best, best_room = w, room
        rows.append(per_window[best][p - starts[best]])
    return torch.stack(rows)


def test_long_sentences_are_windowed_not_cut(tiny_dir: Path, tiny40_dir: Path) -> None:
    short = NeuralAligner(str(tiny40_dir), layer=LAYER, method="match", batch_size=4, device="cpu")
    full = NeuralAligner(str(tiny_dir), layer=LAYER, method="match", batch_size=4, device="cpu")
    assert short.max_subwords == 36 and full.max_subwords == 126
    n_sub = sum(len(p) for p in short.subword_ids(LONG))
    assert n_sub >= 90

    # Where a sentence fits, the 40-position copy computes what the original does.
    assert_same_links(short.align(SRC[:8], TGT[:8]), full.align(SRC[:8], TGT[:8]))

    # A long sentence: every subword gets a vector, from its best-placed window.
    (vectors,) = short.encode([LONG])
    assert vectors.shape == (n_sub, 32)
    ids = tuple(i for p in short.subword_ids(LONG) for i in p)
    torch.testing.assert_close(vectors, _window_reference(tiny40_dir, ids, 36), atol=1e-5, rtol=1e-4)

    # Aligned with itself by matching, every word is linked, including those past the window.
    mixed = short.align([SRC[0], LONG, SRC[1]], [TGT[0], LONG, TGT[1]])
    linked = {i for i, _ in mixed[1].pairs()}
    assert linked == set(range(len(LONG)))
    assert max(j for _, j in mixed[1].pairs()) == len(LONG) - 1
    # Short pairs batched with the long one are unaffected by it.
    assert_same_links([mixed[0], mixed[2]], short.align([SRC[0], SRC[1]], [TGT[0], TGT[1]]))
    argmax = NeuralAligner(str(tiny40_dir), layer=LAYER, device="cpu").align([LONG], [LONG[::-1]])
    assert len(argmax[0]) > 0


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"method": "fwd"}, ["'fwd'", "argmax", "itermax", "match"]),
        ({"token_level": "bpe"}, ["'bpe'", "subword", "word"]),
        ({"layer": 5}, ["layer 5", "4 hidden layers", "0 (embeddings) to 4"]),
        ({"layer": -1}, ["layer -1", "0 (embeddings) to 4"]),
        ({"batch_size": 0}, ["batch_size", "0"]),
    ],
)
def test_bad_settings_are_named(tiny_dir: Path, kwargs: dict, words: list[str]) -> None:
    with pytest.raises(ValueError) as info:
        NeuralAligner(str(tiny_dir), **{"layer": LAYER, **kwargs})
    for word in words:
        assert word in str(info.value)


def test_unloadable_model_is_an_aligner_error(tmp_path: Path) -> None:
    with pytest.raises(AlignerError, match="local directory"):
        NeuralAligner(str(tmp_path))


def test_strings_instead_of_tokens_are_refused(tiny_dir: Path) -> None:
    aligner = NeuralAligner(str(tiny_dir), layer=LAYER, device="cpu")
    with pytest.raises(ValueError, match="sequence of tokens"):
        aligner.align(["the cat"], [["le", "chat"]])


def test_family_defaults_pick_layer_and_token_level(tiny_dir: Path) -> None:
    from types import SimpleNamespace

    from alignment.aligners.neural import family_defaults

    e5_small = SimpleNamespace(num_hidden_layers=12, hidden_size=384)
    assert family_defaults(e5_small) == {"layer": 7, "token_level": "word"}
    base = SimpleNamespace(num_hidden_layers=12, hidden_size=768)
    assert family_defaults(base) == {"layer": 8, "token_level": "subword"}
    large = SimpleNamespace(num_hidden_layers=24, hidden_size=1024)
    assert family_defaults(large)["layer"] == 16
    # The tiny test encoder (4 layers, 32 wide): two thirds of its depth, subword level;
    # explicit settings win.
    aligner = NeuralAligner(str(tiny_dir), device="cpu")
    assert (aligner.layer, aligner.token_level) == (3, "subword")
    aligner = NeuralAligner(str(tiny_dir), layer=1, token_level="word", device="cpu")
    assert (aligner.layer, aligner.token_level) == (1, "word")
