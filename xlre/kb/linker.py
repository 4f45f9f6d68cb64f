"""Entity linking: gazetteer mentions -> single KB ids.

Ambiguity: an alias shared by several entities gives a mention with several
candidates. :class:`EntityLinker` keeps the candidate that has a KB fact with another
entity of the same sentence when exactly one does (``resolved_by_kb``); otherwise the
mention is dropped and counted (``ambiguous``): a wrong link is worse than none for
distant supervision.

An entity's ``text`` is always ``sentence[char_start:char_end]`` of its span.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from alignment.records import TokenizedText
from xlre.kb.gazetteer import Gazetteer
from xlre.kb.knowledge_base import KnowledgeBase
from xlre.records import Entity


@dataclass
class LinkStats:
    """Counts of what linking did, summed over sentences."""

    mentions: int = 0
    linked: int = 0
    resolved_by_kb: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    def merge(self, other: LinkStats) -> None:
        self.mentions += other.mentions
        self.linked += other.linked
        self.resolved_by_kb += other.resolved_by_kb
        self.dropped.update(other.dropped)

    def as_dict(self) -> dict[str, object]:
        return {"mentions": self.mentions, "linked": self.linked,
                "resolved_by_kb": self.resolved_by_kb, "dropped": dict(self.dropped)}


class EntityLinker:
    """Links gazetteer mentions to single KB ids, resolving ambiguity by KB facts."""

    def __init__(self, kb: KnowledgeBase, gazetteer: Gazetteer) -> None:
        self.kb = kb
        self.gazetteer = gazetteer

    def link(self, tok: TokenizedText, stats: LinkStats | None = None) -> list[Entity]:
        """Entities (``source="kb"``) of one tokenized sentence, in text order."""
        stats = stats if stats is not None else LinkStats()
        mentions = self.gazetteer.find(tok)
        stats.mentions += len(mentions)
        chosen: list[str | None] = []
        for k, m in enumerate(mentions):
            if len(m.candidates) == 1:
                chosen.append(m.candidates[0])
                continue
            others = {c for j, o in enumerate(mentions) if j != k for c in o.candidates}
            backed = [c for c in m.candidates if any(self.kb.connected(c, o) for o in others if o != c)]
            if len(backed) == 1:
                chosen.append(backed[0])
                stats.resolved_by_kb += 1
            else:
                chosen.append(None)
                stats.dropped["ambiguous"] += 1
        entities = []
        for m, kb_id in zip(mentions, chosen, strict=True):
            if kb_id is None:
                continue
            ent = self.kb.entities[kb_id]
            span = tok.span(m.tok_start, m.tok_end)
            # the text is always the sentence's slice at the entity's offsets
            entities.append(Entity(span, ent.type or "ENT", kb_id, "kb",
                                   tok.text[span.char_start:span.char_end]))
        stats.linked += len(entities)
        return entities
