"""Symmetrisation of two directional word alignments.

``forward`` holds (src, tgt) links from aligning source to target and ``reverse`` the
links from aligning target to source, already flipped to (src, tgt) order. The
heuristics are those of Koehn et al. (2003) as implemented in Moses:

* ``intersect``: links found in both directions (high precision);
* ``union``: links found in either direction (high recall);
* ``grow-diag``: start from the intersection, then repeatedly add union links that
  neighbour an existing link (also diagonally) and align a word not yet aligned;
* ``grow-diag-final``: grow-diag, then add union links where either word is unaligned;
* ``grow-diag-final-and``: grow-diag, then add union links where both words are
  unaligned (the usual choice for phrase extraction and projection).
"""

from __future__ import annotations

from collections.abc import Iterable

from alignment.errors import SettingError

SYMMETRIZATIONS: tuple[str, ...] = (
    "intersect",
    "union",
    "grow-diag",
    "grow-diag-final",
    "grow-diag-final-and",
)

_NEIGHBOURS = ((-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))

Pair = tuple[int, int]


def symmetrize(forward: Iterable[Pair], reverse: Iterable[Pair], method: str) -> set[Pair]:
    """Combine two directional alignments with ``method`` (see module docstring)."""
    if method not in SYMMETRIZATIONS:
        raise SettingError(
            f"unknown symmetrization {method!r}; choose one of {', '.join(SYMMETRIZATIONS)}"
        )
    fwd, rev = set(forward), set(reverse)
    if method == "intersect":
        return fwd & rev
    union = fwd | rev
    if method == "union":
        return union
    links = _grow_diag(fwd & rev, union)
    if method == "grow-diag":
        return links
    need_both = method == "grow-diag-final-and"
    src_done = {i for i, _ in links}
    tgt_done = {j for _, j in links}
    for direction in (fwd, rev):
        for i, j in sorted(direction):
            src_free, tgt_free = i not in src_done, j not in tgt_done
            if (src_free and tgt_free) if need_both else (src_free or tgt_free):
                links.add((i, j))
                src_done.add(i)
                tgt_done.add(j)
    return links


def _grow_diag(start: set[Pair], union: set[Pair]) -> set[Pair]:
    links = set(start)
    src_done = {i for i, _ in links}
    tgt_done = {j for _, j in links}
    added = True
    while added:
        added = False
        for i, j in sorted(links):
            for di, dj in _NEIGHBOURS:
                cand = (i + di, j + dj)
                if cand in union and cand not in links and (
                    cand[0] not in src_done or cand[1] not in tgt_done
                ):
                    links.add(cand)
                    src_done.add(cand[0])
                    tgt_done.add(cand[1])
                    added = True
    return links
