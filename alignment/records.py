"""Typed records shared by the aligner: sentence pairs, tokenised text and word links.

Every record is a frozen dataclass. Token indices are 0-based; ``*_end`` fields are
exclusive, as in Python slices.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SentencePair:
    """One line of a parallel corpus.

    ``line_no`` is the 1-based line number in the input file(s), so any later error
    can point back at the place the pair came from.
    """

    pair_id: str
    src_lang: str
    tgt_lang: str
    src_text: str
    tgt_text: str
    line_no: int


@dataclass(frozen=True, slots=True)
class Span:
    """A contiguous run of tokens and the characters they cover (ends exclusive)."""

    tok_start: int
    tok_end: int
    char_start: int
    char_end: int

    def __post_init__(self) -> None:
        assert 0 <= self.tok_start <= self.tok_end, self
        assert 0 <= self.char_start <= self.char_end, self


@dataclass(frozen=True, slots=True)
class TokenizedText:
    """A text and its tokens, each with the character offsets it covers in ``text``."""

    text: str
    tokens: tuple[str, ...]
    char_starts: tuple[int, ...]
    char_ends: tuple[int, ...]

    def __post_init__(self) -> None:
        assert len(self.tokens) == len(self.char_starts) == len(self.char_ends)

    def __len__(self) -> int:
        return len(self.tokens)

    def span(self, tok_start: int, tok_end: int) -> Span:
        """The :class:`Span` covering tokens ``tok_start`` to ``tok_end`` (exclusive)."""
        if not 0 <= tok_start < tok_end <= len(self.tokens):
            raise IndexError(
                f"token range {tok_start}:{tok_end} is outside 0:{len(self.tokens)}"
            )
        return Span(tok_start, tok_end, self.char_starts[tok_start], self.char_ends[tok_end - 1])


@dataclass(frozen=True, slots=True, order=True)
class Link:
    """One word link: source token ``src_tok`` is aligned to target token ``tgt_tok``.

    ``score`` is the aligner's confidence in [0, 1] where the method gives one
    (similarity for neural alignment, direction agreement for eflomal), else ``None``.
    """

    src_tok: int
    tgt_tok: int
    score: float | None = None


@dataclass(frozen=True, slots=True)
class Links:
    """The word alignment of one sentence pair, links sorted by (src_tok, tgt_tok)."""

    links: tuple[Link, ...] = ()

    @classmethod
    def from_pairs(
        cls, pairs: Iterable[tuple[int, int]], scores: dict[tuple[int, int], float] | None = None
    ) -> Links:
        """Build from (src, tgt) index pairs, with optional scores keyed by pair."""
        scores = scores or {}
        return cls(tuple(Link(i, j, scores.get((i, j))) for i, j in sorted(set(pairs))))

    def __iter__(self) -> Iterator[Link]:
        return iter(self.links)

    def __len__(self) -> int:
        return len(self.links)

    def pairs(self) -> set[tuple[int, int]]:
        """The links as a set of (src_tok, tgt_tok) pairs."""
        return {(link.src_tok, link.tgt_tok) for link in self.links}

    def to_pharaoh(self) -> str:
        """0-indexed Pharaoh text: ``i-j`` pairs separated by single spaces."""
        return " ".join(f"{link.src_tok}-{link.tgt_tok}" for link in self.links)

    def scores_text(self) -> str:
        """Scores in link order, ``-`` where a link has none (for ``--scores-out``)."""
        return " ".join("-" if link.score is None else f"{link.score:.4f}" for link in self.links)
