"""Typed records of the relation-extraction side (DESIGN.md, "Core records").

Spans come from :mod:`alignment.records`; token ends and character ends are exclusive.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from alignment.records import Span

#: The explicit label for "no KB relation between this pair"; never guessed from text.
NA = "NA"

EntitySource = Literal["kb", "ner", "projected", "gold"]


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


@dataclass(frozen=True, slots=True)
class Argument:
    """The subject or object of a triple: its text, KB id (if linked), type and offsets.

    ``char_start`` / ``char_end`` are offsets into the document text (end exclusive).
    """

    text: str
    char_start: int
    char_end: int
    kb_id: str | None = None
    label: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "kb_id": self.kb_id, "label": self.label,
                "char_start": self.char_start, "char_end": self.char_end}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Argument:
        return cls(text=obj["text"], char_start=int(obj["char_start"]),
                   char_end=int(obj["char_end"]), kb_id=obj.get("kb_id"),
                   label=obj.get("label"))


@dataclass(frozen=True, slots=True)
class Evidence:
    """Where a triple was read: the document, the sentence, its language and the model."""

    doc_id: str
    sentence: str
    lang: str
    model: str
    sentence_start: int = 0  # offset of the sentence in the document
    #: Documents that say the same thing (a sentence and its translation: one source
    #: pair) share a group; aggregation counts a group as one piece of evidence.
    group: str | None = None


@dataclass(frozen=True, slots=True)
class Triple:
    """One extracted (subject, relation, object) with its score and evidence.

    JSON form (one line of ``xlre extract`` output)::

        {"subject": {"text", "kb_id", "label", "char_start", "char_end"},
         "relation": "P17", "relation_label": "country",
         "object": {...}, "score": 0.97, "lang": "en", "doc_id": "d1",
         "sentence": "...", "sentence_start": 0, "model": "models/demo"}

    plus ``"group"`` when the document had one (:class:`Evidence`).
    """

    subject: Argument
    relation: str
    object: Argument
    score: float
    evidence: Evidence
    relation_label: str | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "subject": self.subject.to_json(),
            "relation": self.relation,
            "relation_label": self.relation_label,
            "object": self.object.to_json(),
            "score": self.score,
            "lang": self.evidence.lang,
            "doc_id": self.evidence.doc_id,
            "sentence": self.evidence.sentence,
            "sentence_start": self.evidence.sentence_start,
            "model": self.evidence.model,
        }
        if self.evidence.group is not None:
            out["group"] = self.evidence.group
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Triple:
        """Parse the JSON form; a missing field raises ``KeyError`` naming it."""
        return cls(
            subject=Argument.from_json(obj["subject"]),
            relation=str(obj["relation"]),
            object=Argument.from_json(obj["object"]),
            score=float(obj["score"]),
            evidence=Evidence(doc_id=str(obj["doc_id"]), sentence=obj["sentence"],
                              lang=obj["lang"], model=obj["model"],
                              sentence_start=int(obj.get("sentence_start", 0)),
                              group=None if obj.get("group") is None else str(obj["group"])),
            relation_label=obj.get("relation_label"),
        )
