"""Generated toy parallel pairs whose right word alignment is known."""

from __future__ import annotations

import random

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
