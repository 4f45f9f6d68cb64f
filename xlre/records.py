"""Typed records of the relation-extraction side (DESIGN.md, "Core records").

Spans come from :mod:`alignment.records`; token ends and character ends are exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from alignment.records import Span

#: The explicit label for "no KB relation between this pair"; never guessed from text.
NA = "NA"

EntitySource = Literal["kb", "ner", "projected"]


@dataclass(frozen=True, slots=True)
class Entity:
    """An entity mention: where it is, its type label, its KB id (if linked), its origin."""

    span: Span
    label: str
    kb_id: str | None
    source: EntitySource
    text: str = ""


@dataclass(frozen=True, slots=True)
class RelationMention:
    """A relation between two entities of one sentence (indices into its entity list).

    ``relation`` is a KB relation id or :data:`NA`. A pair with several KB relations
    gets one record per relation.
    """

    head: int
    tail: int
    relation: str
    source: Literal["distant", "projected", "gold", "model"] = "distant"
