"""Links from a similarity matrix (SimAlign's argmax, itermax and match), and the windows
that embed sentences longer than the encoder takes (see :mod:`alignment.aligners.neural`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

METHODS: tuple[str, ...] = ("argmax", "itermax", "match", "softmax")

#: awesome-align's probability threshold for ``softmax`` extraction (Dou & Neubig, 2021).
SOFTMAX_THRESHOLD = 1e-3

#: simalign's itermax constants: damping of half-aligned cells, and argmax rounds in all.
ITERMAX_ALPHA = 0.9
ITERMAX_MAX_COUNT = 2


def window_starts(n_subwords: int, width: int) -> list[int]:
    """Start offsets of the overlapping windows that cover ``n_subwords`` subwords.

    Windows are ``width`` long with stride ``width // 2``; the last one ends at the
    sentence end. A sentence that fits gets one window starting at 0.
    """
    if width < 1:
        raise ValueError(f"window width must be at least 1, got {width}")
    if n_subwords <= width:
        return [0]
    stride = max(1, width // 2)
    starts = list(range(0, n_subwords - width, stride))
    starts.append(n_subwords - width)
    return starts


def pick_windows(n_subwords: int, width: int, starts: Sequence[int]) -> np.ndarray:
    """For each subword, the index (into ``starts``) of the window it is taken from.

    The chosen window is the one where the subword is farthest from a cut edge; the
    sentence's own start and end are not cuts. Ties go to the earlier window.
    """
    pos = np.arange(n_subwords)[:, None]
    begin = np.asarray(starts)[None, :]
    end = begin + width  # exclusive
    inside = (pos >= begin) & (pos < end)
    left = np.where(begin == 0, n_subwords, pos - begin)
    right = np.where(end >= n_subwords, n_subwords, end - 1 - pos)
    room = np.where(inside, np.minimum(left, right), -1)
    choice = room.argmax(axis=1)
    assert inside[np.arange(n_subwords), choice].all()
    return choice


# ------------------------------------------------------------------ link extraction


def argmax_links(sim: np.ndarray) -> np.ndarray:
    """Boolean matrix of mutual-argmax cells (simalign's ``inter``)."""
    m, n = sim.shape
    out = np.zeros((m, n), dtype=bool)
    if m == 0 or n == 0:
        return out
    best_tgt = sim.argmax(axis=1)
    best_src = sim.argmax(axis=0)
    rows = np.flatnonzero(best_src[best_tgt] == np.arange(m))
    out[rows, best_tgt[rows]] = True
    return out


def itermax_links(
    sim: np.ndarray, alpha: float = ITERMAX_ALPHA, max_count: int = ITERMAX_MAX_COUNT
) -> np.ndarray:
    """Boolean matrix of simalign's itermax links.

    Starts from :func:`argmax_links`; each further round (``max_count - 1`` of them)
    takes mutual argmaxes of the similarities with both-sides-aligned cells zeroed and
    one-side-aligned cells scaled by ``alpha``, and keeps the new links that touch an
    unaligned row or column. Matrices with a side of 2 or fewer keep plain argmax.
    """
    m, n = sim.shape
    links = argmax_links(sim)
    if min(m, n) <= 2:
        return links
    sim64 = sim.astype(np.float64)
    for _ in range(max_count - 1):
        free_row = ~links.any(axis=1)
        free_col = ~links.any(axis=0)
        if not free_row.any() or not free_col.any():
            break
        weight = np.minimum(alpha * (free_row[:, None].astype(np.float64) + free_col[None, :]), 1.0)
        damped = sim64 * weight
        touches_free = free_row[:, None] | free_col[None, :]
        fwd = np.zeros((m, n), dtype=bool)
        fwd[np.arange(m), damped.argmax(axis=1)] = True
        bwd = np.zeros((m, n), dtype=bool)
        bwd[damped.argmax(axis=0), np.arange(n)] = True
        new = fwd & bwd & touches_free
        if not new.any():
            break
        links |= new
    return links


def match_links(sim: np.ndarray) -> np.ndarray:
    """Boolean matrix of the maximum-weight matching (simalign's ``mwmf``)."""
    from scipy.optimize import linear_sum_assignment

    out = np.zeros(sim.shape, dtype=bool)
    if sim.size == 0:
        return out
    rows, cols = linear_sum_assignment(sim, maximize=True)
    out[rows, cols] = True
    return out


def softmax_scores(dot: np.ndarray) -> np.ndarray:
    """awesome-align's bidirectional link probabilities from raw dot products.

    Each source row is softmaxed over the targets and each target column over the
    sources; a cell's score is the smaller of its two probabilities, so
    ``softmax_scores(dot) >= threshold`` holds exactly where both directions give the
    pair at least ``threshold`` (awesome-align's extraction). Scores are in [0, 1].
    """
    if dot.size == 0:
        return np.zeros(dot.shape, dtype=np.float32)
    d = dot.astype(np.float64)
    fwd = np.exp(d - d.max(axis=1, keepdims=True))
    fwd /= fwd.sum(axis=1, keepdims=True)
    bwd = np.exp(d - d.max(axis=0, keepdims=True))
    bwd /= bwd.sum(axis=0, keepdims=True)
    return np.minimum(fwd, bwd).astype(np.float32)


LINKERS = {"argmax": argmax_links, "itermax": itermax_links, "match": match_links}
