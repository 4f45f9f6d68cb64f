"""Helpers between character offsets and token spans."""

from __future__ import annotations

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
