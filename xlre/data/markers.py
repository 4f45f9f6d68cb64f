"""Entity markers of a pair (``relation_repr`` ``markers`` or ``punct``), shared by
training features and extraction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from xlre.data.config import DataError
from xlre.data.labels import LabelMaps
from xlre.data.windows import Marker, word_pieces

#: ``relation_repr="punct"``: the words around the first and the second entity of a pair.
PUNCT_MARKERS = ("@", "#")


@dataclass(frozen=True)
class MarkerScheme:
    """How ``relation_repr`` ``markers`` or ``punct`` marks the entities of a pair.

    Shared by training features and extraction so both build the same sequences. Build it
    with :meth:`for_tokenizer`.
    """

    relation_repr: str
    #: markers: the id of each typed marker token (``<h:PER>`` ...).
    typed: dict[str, int]
    #: punct: the subword ids of the words around the first and the second entity.
    punct: tuple[tuple[int, ...], tuple[int, ...]]

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, labels: LabelMaps,
                      relation_repr: str) -> MarkerScheme | None:
        """The scheme of ``relation_repr`` (``None`` for pooling), checked on ``tokenizer``."""
        if relation_repr == "markers":
            tokens = labels.marker_tokens()
            ids = tokenizer.convert_tokens_to_ids(tokens)
            unk = tokenizer.unk_token_id
            missing = [t for t, i in zip(tokens, ids, strict=True) if i is None or i == unk]
            if missing:
                raise DataError(
                    f"the tokenizer lacks the entity markers {missing[:4]}; build the model "
                    "with XlreModel.from_encoder, which adds them"
                )
            return cls(relation_repr, dict(zip(tokens, ids, strict=True)), ((), ()))
        if relation_repr == "punct":
            pieces = word_pieces(tokenizer, [list(PUNCT_MARKERS)])[0]
            unk = tokenizer.unk_token_id
            for word, ids in zip(PUNCT_MARKERS, pieces, strict=True):
                if not ids or unk in ids:
                    raise DataError(
                        f"the tokenizer has no subword for the marker {word!r} of "
                        "data.relation_repr=punct; use relation_repr=markers or pooling"
                    )
            return cls(relation_repr, {}, (tuple(pieces[0]), tuple(pieces[1])))
        return None

    @property
    def extra_tokens(self) -> int:
        """Tokens the markers add to a window."""
        if self.relation_repr == "markers":
            return 4
        return 2 * (len(self.punct[0]) + len(self.punct[1]))

    def groups(self, pairs: Sequence[tuple[int, int]]) -> list[list[tuple[int, int]]]:
        """Ordered entity pairs grouped by marked sequence, in first-seen order.

        markers: one sequence per ordered pair; punct: one per unordered pair.
        """
        if self.relation_repr == "markers":
            return [[p] for p in pairs]
        grouped: dict[frozenset[int], list[tuple[int, int]]] = {}
        for p in pairs:
            grouped.setdefault(frozenset(p), []).append(p)
        return list(grouped.values())

    def markers(self, head: tuple[int, int, str], tail: tuple[int, int, str]) -> list[Marker]:
        """Markers around ``head`` and ``tail``, each ``(word_start, word_end, type)``.

        punct marks by text order, not by role, so both directions share one sequence.
        """
        if self.relation_repr == "markers":
            return [(a, b, (self.typed[f"<{role}:{typ}>"],), (self.typed[f"</{role}:{typ}>"],))
                    for role, (a, b, typ) in (("h", head), ("t", tail))]
        first, second = sorted((head, tail), key=lambda e: (e[0], e[1]))
        return [(first[0], first[1], self.punct[0], self.punct[0]),
                (second[0], second[1], self.punct[1], self.punct[1])]
