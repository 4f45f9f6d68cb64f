"""Shared fixtures: small hand-made parallel corpora written on the fly."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

# A toy lexicon whose translations are word-for-word and monotone, so the right
# alignment of every generated pair is known: token k links to token k.
LEXICON = {
    "the": "le", "dog": "chien", "cat": "chat", "bird": "oiseau", "fish": "poisson",
    "horse": "cheval", "wolf": "loup", "sees": "voit", "eats": "mange", "follows": "suit",
    "likes": "aime", "big": "gros", "small": "petit", "old": "vieux", "and": "et",
}
NOUNS = ["dog", "cat", "bird", "fish", "horse", "wolf"]
VERBS = ["sees", "eats", "follows", "likes"]
ADJS = ["big", "small", "old"]


def toy_pairs(n: int, seed: int = 0) -> list[tuple[list[str], list[str]]]:
    """``n`` generated (english tokens, french tokens) pairs with identity alignment."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        words = ["the", rng.choice(NOUNS), rng.choice(VERBS), "the"]
        if rng.random() < 0.5:
            words.append(rng.choice(ADJS))
        words.append(rng.choice(NOUNS))
        if rng.random() < 0.3:
            words += ["and", "the", rng.choice(NOUNS)]
        out.append((words, [LEXICON[w] for w in words]))
    return out


@pytest.fixture(scope="session")
def toy_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TSV corpus of 300 toy pairs (``src<TAB>tgt``)."""
    path = tmp_path_factory.mktemp("toy") / "toy.tsv"
    lines = [" ".join(s) + "\t" + " ".join(t) for s, t in toy_pairs(300)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
