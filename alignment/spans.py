"""Helpers between character offsets and token spans."""

from __future__ import annotations

import operator

from alignment.records import Span, TokenizedText


def char_to_token_span(tok: TokenizedText, char_start: int, char_end: int) -> Span | None:
    """The smallest token span covering the characters ``[char_start, char_end)``.

    None when no token overlaps them (the characters are all whitespace).
    """
    first = last = None
    for k, (s, e) in enumerate(zip(tok.char_starts, tok.char_ends, strict=True)):
        if e > char_start and s < char_end:
            if first is None:
                first = k
            last = k
    if first is None or last is None:
        return None
    return tok.span(first, last + 1)


def find_on_token_boundaries(tok: TokenizedText, needle: str) -> list[Span]:
    """Every occurrence of ``needle`` in ``tok.text`` that starts and ends on tokens."""
    if not needle:
        return []
    starts = {s: k for k, s in enumerate(tok.char_starts)}
    ends = {e: k for k, e in enumerate(tok.char_ends)}
    out = []
    pos = tok.text.find(needle)
    while pos >= 0:
        end = pos + len(needle)
        if pos in starts and end in ends:
            out.append(tok.span(starts[pos], ends[end] + 1))
        pos = tok.text.find(needle, pos + 1)
    return out


def spans_text(tok: TokenizedText) -> str:
    """``tok``'s token offsets as ``start-end`` items separated by spaces (the form of
    one side of a spans file: :func:`align_corpus`'s ``spans_path``)."""
    return " ".join([f"{s}-{e}" for s, e in zip(tok.char_starts, tok.char_ends, strict=True)])


def tokens_from_spans(text: str, spans: str) -> TokenizedText:
    """The :class:`TokenizedText` of ``text`` whose token offsets :func:`spans_text`
    wrote as ``spans``. Raises ``ValueError`` naming the first offending item when
    ``spans`` does not fit ``text`` (not numbers, empty or overlapping tokens, past its
    end): the caller names the file and line."""
    try:
        numbers = list(map(int, spans.replace("-", " ").split()))
    except ValueError:
        raise ValueError(f"{spans[:60]!r} is not a list of start-end token offsets") from None
    if len(numbers) % 2:
        raise ValueError(f"{spans[:60]!r} has an unpaired offset")
    starts, ends = tuple(numbers[0::2]), tuple(numbers[1::2])
    # Every token non-empty, each after the one before, all inside the text: checked
    # with C-level maps (this runs on every pair of a run); the loop below only names
    # the first offending token.
    if starts and not (starts[0] >= 0 and ends[-1] <= len(text) and all(map(operator.lt, starts, ends))
                       and all(map(operator.le, ends[:-1], starts[1:]))):
        prev = 0
        for s, e in zip(starts, ends, strict=True):
            if not prev <= s < e <= len(text):
                raise ValueError(f"token {s}-{e} is empty, overlaps the one before, or ends past "
                                 f"the text's {len(text)} characters")
            prev = e
    return TokenizedText(text, tuple(map(text.__getitem__, map(slice, starts, ends))), starts, ends)
