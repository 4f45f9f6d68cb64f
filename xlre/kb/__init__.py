"""Knowledge bases: records and loading, the alias gazetteer, the entity linker.

Consumes a KB directory (``entities.jsonl``, ``relations.jsonl``, ``triples.tsv``);
produces a :class:`KnowledgeBase` with its fact index, per-language alias gazetteers and
an :class:`EntityLinker` that turns tokenized text into linked entities.
"""

from xlre.kb.gazetteer import (
    CASE_POLICIES,
    UNSEGMENTED_SCRIPTS,
    Gazetteer,
    Mention,
    alias_languages,
    stop_words,
)
from xlre.kb.knowledge_base import (
    ENTITIES_FILE,
    RELATIONS_FILE,
    TRIPLES_FILE,
    KBEntity,
    KBError,
    KBRelation,
    KnowledgeBase,
    load_kb,
    load_relations,
)
from xlre.kb.linker import EntityLinker, LinkStats

__all__ = [
    "CASE_POLICIES",
    "ENTITIES_FILE",
    "RELATIONS_FILE",
    "TRIPLES_FILE",
    "UNSEGMENTED_SCRIPTS",
    "EntityLinker",
    "Gazetteer",
    "KBEntity",
    "KBError",
    "KBRelation",
    "KnowledgeBase",
    "LinkStats",
    "Mention",
    "alias_languages",
    "load_kb",
    "load_relations",
    "stop_words",
]
