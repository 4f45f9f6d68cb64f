"""Windows over long sentences, shared by training features and extraction.

Long sentences are never cut: a sentence whose subwords do not fit ``max_seq_length`` is
split into overlapping windows; each word is labelled in exactly one window; an entity
pair goes to the first window that holds both entities, and pairs no window can hold are
dropped and counted (``instances_dropped_too_far``). A single word longer than a window
makes its sentence unusable: it is counted (``sentences_unfittable``), never truncated.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Window:
    """Words ``[ctx_lo, ctx_hi)`` go into the sequence; ``[lab_lo, lab_hi)`` are labelled."""

    ctx_lo: int
    ctx_hi: int
    lab_lo: int
    lab_hi: int


def plan_windows(counts: Sequence[int], budget: int) -> list[Window] | None:
    """Cover words with subword ``counts`` by windows of at most ``budget`` subwords.

    One window when everything fits. Otherwise the words are cut into label chunks of
    about half the budget, each widened left and right with context while it fits.
    ``None`` when a single word is longer than ``budget``.
    """
    n = len(counts)
    if sum(counts) <= budget:
        return [Window(0, n, 0, n)]
    if max(counts) > budget:
        return None
    chunks: list[tuple[int, int]] = []
    lo, used = 0, 0
    for i, c in enumerate(counts):
        if i > lo and used + c > budget // 2:
            chunks.append((lo, i))
            lo, used = i, 0
        used += c
    chunks.append((lo, n))
    windows = []
    for lab_lo, lab_hi in chunks:
        ctx_lo, ctx_hi = lab_lo, lab_hi
        used = sum(counts[lab_lo:lab_hi])
        grew = True
        while grew:
            grew = False
            if ctx_lo > 0 and used + counts[ctx_lo - 1] <= budget:
                ctx_lo -= 1
                used += counts[ctx_lo]
                grew = True
            if ctx_hi < n and used + counts[ctx_hi] <= budget:
                used += counts[ctx_hi]
                ctx_hi += 1
                grew = True
        windows.append(Window(ctx_lo, ctx_hi, lab_lo, lab_hi))
    return windows


@dataclass(frozen=True)
class EncodedWindow:
    """The subword ids of one window and where each word (and marker) landed."""

    ids: list[int]
    first: dict[int, int]   # word -> position of its first subword
    end: dict[int, int]     # word -> position just after its last subword
    opened: dict[int, int]  # word -> position of the marker opening an entity there


def encode_window(
    pieces: Sequence[Sequence[int]],
    win: Window,
    cls_id: int,
    sep_id: int,
    markers: Sequence[Marker] = (),
) -> EncodedWindow:
    """``<s>`` + the subwords of words ``[win.ctx_lo, win.ctx_hi)`` + ``</s>``.

    ``markers`` are ``(word_start, word_end, open_ids, close_ids)``: the marker tokens go
    before the first and after the last word of that span; ``opened`` points at the first
    token of the opening marker. Words with no subword are skipped (they get no position).
    """
    before: dict[int, list[tuple[int, ...]]] = defaultdict(list)
    after: dict[int, list[int]] = defaultdict(list)
    for start, stop, open_ids, close_ids in markers:
        before[start].append(open_ids)
        after[stop - 1].extend(close_ids)
    ids = [cls_id]
    first: dict[int, int] = {}
    end: dict[int, int] = {}
    opened: dict[int, int] = {}
    for w in range(win.ctx_lo, win.ctx_hi):
        for m in before.get(w, ()):
            opened.setdefault(w, len(ids))
            ids.extend(m)
        if pieces[w]:
            first[w] = len(ids)
            ids.extend(pieces[w])
            end[w] = len(ids)
        ids.extend(after.get(w, ()))
    ids.append(sep_id)
    return EncodedWindow(ids, first, end, opened)


#: ``(word_start, word_end, open_ids, close_ids)``: marker tokens around a span of words.
Marker = tuple[int, int, tuple[int, ...], tuple[int, ...]]


def word_pieces(tokenizer: Any, words_batch: list[list[str]]) -> list[list[list[int]]]:
    """Subword ids of every word of every sentence, in one tokenizer call.

    A word the tokenizer turns into nothing (whitespace) gets an empty list; an empty
    sentence gets an empty list of words.
    """
    enc = tokenizer([w if w else ["."] for w in words_batch], is_split_into_words=True,
                    add_special_tokens=False)
    out = []
    for i, words in enumerate(words_batch):
        pieces: list[list[int]] = [[] for _ in words]
        if words:
            for tok_id, w in zip(enc["input_ids"][i], enc.word_ids(i), strict=True):
                if w is not None:
                    pieces[w].append(tok_id)
        out.append(pieces)
    return out
