"""Projection of source-side token spans onto the target side through word links.

Rules, applied to one source span ``[s, e)`` of a pair with word links L:

1. **Aligned tokens.** T = target tokens linked to a source token of the span.
2. **Unaligned.** T empty: the span is dropped (``unaligned``), unless exactly one
   anchor (see 6) exists, which is then taken (``anchor``).
3. **Contiguity.** The candidate is the smallest target range covering T. A token
   inside it that is not in T but is linked to a source token *outside* the span
   belongs to something else, so the span is dropped (``discontiguous``), unless an
   anchor (see 6) holds some of T: it is then snapped to the anchor holding most of T.
   Unlinked gap tokens (French ``de`` in ``Université de Lyon``) are kept.
4. **Trimming.** Punctuation-only tokens at either edge of a multi-token candidate
   are trimmed.
5. **Identical tokens.** Names and numbers are often written the same in both
   languages; :func:`identical_links` adds a link between a source and a target token
   that are identical (at least 2 characters, starting with an uppercase letter or a
   digit) and each occur once in their sentence. Callers add these to L.
6. **Anchors.** Callers may pass candidate target spans found by other evidence (an
   alias of the same KB entity in the target sentence, a target-side NER span). A
   candidate overlapping an anchor is replaced by the anchor it overlaps most
   (``snapped``).

Several spans of one sentence: :func:`project_spans` drops every candidate that
overlaps another one (``overlap``), since one target token cannot belong to two
entities.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from alignment.records import Span, TokenizedText

Pair = tuple[int, int]

#: Outcomes of a projection: those of KEPT keep a span, those of DROPPED are drop reasons.
#: ``narrowed`` and ``alias_mismatch`` come from callers that check a projected span
#: against the entity's target-language names (:mod:`xlre.annotate.projection`).
KEPT = ("projected", "snapped", "anchor", "narrowed")
DROPPED = ("unaligned", "discontiguous", "overlap", "empty", "alias_mismatch")


@dataclass(frozen=True, slots=True)
class Projection:
    """Where a source span lands on the target side (``span`` is None when dropped)."""

    span: Span | None
    outcome: str

    @property
    def kept(self) -> bool:
        return self.span is not None


def _is_punct(token: str) -> bool:
    return all(unicodedata.category(c).startswith("P") for c in token)


def identical_links(src: TokenizedText, tgt: TokenizedText) -> set[Pair]:
    """Links between identical name-like tokens occurring once on each side (rule 5)."""

    def unique(tokens: Sequence[str]) -> dict[str, int]:
        seen: dict[str, int] = {}
        dup: set[str] = set()
        for k, t in enumerate(tokens):
            if len(t) >= 2 and (t[0].isupper() or t[0].isdigit()):
                if t in seen:
                    dup.add(t)
                seen[t] = k
        return {t: k for t, k in seen.items() if t not in dup}

    src_u, tgt_u = unique(src.tokens), unique(tgt.tokens)
    return {(i, tgt_u[t]) for t, i in src_u.items() if t in tgt_u}


def project_span(
    span: Span,
    links: Iterable[Pair],
    tgt: TokenizedText,
    anchors: Sequence[Span] = (),
) -> Projection:
    """Project one source token span onto ``tgt`` (rules 1-4 and 6 of the module)."""
    links = links if isinstance(links, (set, frozenset)) else set(links)
    s, e = span.tok_start, span.tok_end
    if s >= e:
        return Projection(None, "empty")
    inside = {j for i, j in links if s <= i < e}
    if not inside:
        if len(anchors) == 1:
            return Projection(anchors[0], "anchor")
        return Projection(None, "unaligned")
    lo, hi = min(inside), max(inside) + 1
    outside = {j for i, j in links if not s <= i < e}
    if any(j in outside and j not in inside for j in range(lo, hi)):
        # An anchor holding some of the linked tokens is better evidence than the stray
        # links that broke the range: snap to the one holding most of them.
        best, most = None, 0
        for anchor in anchors:
            held = sum(1 for j in inside if anchor.tok_start <= j < anchor.tok_end)
            if held > most:
                best, most = anchor, held
        if best is not None:
            return Projection(best, "snapped")
        return Projection(None, "discontiguous")
    while hi - lo > 1 and _is_punct(tgt.tokens[lo]):
        lo += 1
    while hi - lo > 1 and _is_punct(tgt.tokens[hi - 1]):
        hi -= 1
    best, best_overlap = None, 0
    for anchor in anchors:
        overlap = min(hi, anchor.tok_end) - max(lo, anchor.tok_start)
        if overlap > best_overlap:
            best, best_overlap = anchor, overlap
    if best is not None:
        return Projection(best, "snapped")
    return Projection(tgt.span(lo, hi), "projected")


def project_spans(
    spans: Sequence[Span],
    links: Iterable[Pair],
    tgt: TokenizedText,
    anchors: Sequence[Sequence[Span]] | None = None,
) -> list[Projection]:
    """Project every span of a sentence; overlapping results are all dropped."""
    links = set(links)
    anchors = anchors or [()] * len(spans)
    out = [project_span(sp, links, tgt, an) for sp, an in zip(spans, anchors, strict=True)]
    clash = set()
    for a in range(len(out)):
        for b in range(a + 1, len(out)):
            pa, pb = out[a].span, out[b].span
            if pa and pb and pa.tok_start < pb.tok_end and pb.tok_start < pa.tok_end:
                clash |= {a, b}
    return [Projection(None, "overlap") if k in clash else p for k, p in enumerate(out)]
