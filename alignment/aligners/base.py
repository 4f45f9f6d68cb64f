"""The interface every word aligner implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from alignment.errors import UserError
from alignment.records import Links


class AlignerError(UserError, RuntimeError):
    """An aligner could not align its input; the message says why and what to do."""


class WordAligner(ABC):
    """Aligns tokenised sentence pairs.

    ``align`` takes the source and target sides as token sequences of equal length
    (one entry per pair) and returns one :class:`Links` per pair, in order. Token
    indices in the links refer to the given token sequences. An aligner never drops or
    reorders pairs; a pair it cannot align raises :class:`AlignerError` rather than
    coming back silently empty.
    """

    name: str = "base"

    @abstractmethod
    def align(
        self, src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]]
    ) -> list[Links]:
        """Align ``src[k]`` with ``tgt[k]`` for every k."""

    @staticmethod
    def _check_lengths(src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]]) -> None:
        if len(src) != len(tgt):
            raise ValueError(
                f"source and target must have the same number of sentences, "
                f"got {len(src)} and {len(tgt)}"
            )
