"""Knowledge bases: entities with aliases per language, relations, and facts.

A KB directory holds three files (see DESIGN.md):

* ``entities.jsonl``: ``{"id": "Q90", "type": "LOC", "labels": {"en": ["Paris"], ...}}``
  (``type`` is optional; so is ``popularity``, a count such as Wikidata sitelinks that
  the linker ranks candidates by, :mod:`xlre.kb.linker`);
* ``relations.jsonl``: ``{"id": "P17", "labels": {"en": "country", "fr": "pays"}}``;
* ``triples.tsv``: ``Q90<TAB>P17<TAB>Q142``.

Loading validates every line and stops at the first problem with the file, the line
and the fix. Facts are indexed by (head, tail) so distant labelling is one dict lookup.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from alignment.errors import CorpusError
from alignment.textfile import strict_lines

logger = logging.getLogger(__name__)

ENTITIES_FILE = "entities.jsonl"
RELATIONS_FILE = "relations.jsonl"
TRIPLES_FILE = "triples.tsv"
KB_FILES = (ENTITIES_FILE, RELATIONS_FILE, TRIPLES_FILE)
#: Wikidata properties whose values are languages (official, native, spoken, of a work,
#: of a film, of a name).
LANGUAGE_PROPERTIES = frozenset({"P37", "P103", "P1412", "P407", "P364", "P2936"})


class KBError(CorpusError):
    """A KB file is malformed; the message names the file, the line and the fix."""


@dataclass(frozen=True, slots=True)
class KBEntity:
    id: str
    type: str | None
    labels: dict[str, tuple[str, ...]]
    #: How well known the entity is (Wikidata: its sitelinks); None: not given.
    popularity: int | None = None


@dataclass(frozen=True, slots=True)
class KBRelation:
    id: str
    labels: dict[str, str]

    def label(self, lang: str = "en") -> str:
        """The relation's name in ``lang``, else in English, else its id."""
        return self.labels.get(lang) or self.labels.get("en") or self.id


@dataclass
class KnowledgeBase:
    """Entities, relations and facts of a KB, indexed for distant supervision."""

    entities: dict[str, KBEntity] = field(default_factory=dict)
    relations: dict[str, KBRelation] = field(default_factory=dict)
    facts: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)
    path: Path | None = None
    _degree: dict[str, int] | None = field(default=None, repr=False, compare=False)
    _languages: frozenset[str] | None = field(default=None, repr=False, compare=False)

    @property
    def n_triples(self) -> int:
        return sum(len(r) for r in self.facts.values())

    def relations_between(self, head: str, tail: str) -> tuple[str, ...]:
        """KB relation ids that hold from ``head`` to ``tail`` (empty: none known)."""
        return self.facts.get((head, tail), ())

    def connected(self, a: str, b: str) -> bool:
        """True when the KB has a fact between ``a`` and ``b`` in either direction."""
        return (a, b) in self.facts or (b, a) in self.facts

    def degree(self, ent_id: str) -> int:
        """How many KB facts ``ent_id`` takes part in, as head or tail."""
        if self._degree is None:
            degree: dict[str, int] = {}
            for (head, tail), rels in self.facts.items():
                degree[head] = degree.get(head, 0) + len(rels)
                degree[tail] = degree.get(tail, 0) + len(rels)
            self._degree = degree
        return self._degree.get(ent_id, 0)

    def prior(self, ent_id: str) -> int:
        """The linking prior of ``ent_id``: its ``popularity`` when the KB gives one, else
        its number of facts (:meth:`degree`)."""
        ent = self.entities.get(ent_id)
        if ent is not None and ent.popularity is not None:
            return ent.popularity
        return self.degree(ent_id)

    def languages(self) -> set[str]:
        return {lang for e in self.entities.values() for lang in e.labels}

    def entity_type(self, ent_id: str) -> str | None:
        """The coarse type of ``ent_id`` (None: the KB gives none)."""
        return self.entities[ent_id].type

    def names(self, ent_id: str, lang: str) -> tuple[str, ...]:
        """The aliases of ``ent_id`` in ``lang`` (empty: none, or no such entity)."""
        ent = self.entities.get(ent_id)
        return ent.labels.get(lang, ()) if ent is not None else ()

    def is_language(self, ent_id: str) -> bool:
        """True when ``ent_id`` is the value of a language property
        (:data:`LANGUAGE_PROPERTIES`) in more KB facts than it is their subject. Real KBs
        hold facts the wrong way round ("Greek language, official language: Greece"),
        which would make Greece, Ukraine or the EU languages; a language is the value
        of many such facts and the subject of few."""
        if self._languages is None:
            balance: Counter[str] = Counter()
            for (head, tail), rels in self.facts.items():
                n = sum(1 for r in rels if r in LANGUAGE_PROPERTIES)
                if n:
                    balance[tail] += n
                    balance[head] -= n
            self._languages = frozenset(e for e, n in balance.items() if n > 0)
        return ent_id in self._languages

    def aliases(self, lang: str) -> Iterator[tuple[str, str]]:
        """(alias, entity id) for every alias in ``lang``."""
        for ent in self.entities.values():
            for alias in ent.labels.get(lang, ()):
                yield alias, ent.id

    def summary(self) -> dict[str, object]:
        return {
            "entities": len(self.entities),
            "relations": len(self.relations),
            "triples": self.n_triples,
            "entity_pairs_with_facts": len(self.facts),
            "aliases_by_language": {
                lang: sum(len(e.labels.get(lang, ())) for e in self.entities.values())
                for lang in sorted(self.languages())
            },
        }


def _json_lines(path: Path) -> Iterator[tuple[int, dict]]:
    for line_no, line in strict_lines(path, KBError):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise KBError(path, line_no, f"invalid JSON ({err.msg} at column {err.colno})",
                          "write one JSON object per line") from None
        if not isinstance(obj, dict):
            raise KBError(path, line_no, "expected a JSON object", "write one JSON object per line")
        yield line_no, obj


def _require_id(obj: dict, path: Path, line_no: int, seen: dict[str, int]) -> str:
    ident = obj.get("id")
    if not isinstance(ident, str) or not ident.strip():
        raise KBError(path, line_no, 'missing or empty "id"', 'give every line an "id" string such as "Q90"')
    if ident in seen:
        raise KBError(path, line_no, f"duplicate id {ident!r} (first on line {seen[ident]})",
                      "merge the two lines or give one a different id")
    seen[ident] = line_no
    return ident


def load_relations(path: Path) -> dict[str, KBRelation]:
    """The relations of a KB's ``relations.jsonl``, validated line by line."""
    relations: dict[str, KBRelation] = {}
    seen: dict[str, int] = {}
    for line_no, obj in _json_lines(path):
        ident = _require_id(obj, path, line_no, seen)
        raw = obj.get("labels", {})
        if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
            raise KBError(path, line_no, f'relation {ident}: "labels" must map language -> name',
                          'write e.g. "labels": {"en": "country", "fr": "pays"}')
        relations[ident] = KBRelation(ident, dict(raw))
    return relations


def load_kb(kb_dir: Path | str) -> KnowledgeBase:
    """Load and validate a KB directory (see the module docstring)."""
    kb_dir = Path(kb_dir)
    start = time.perf_counter()
    if not kb_dir.is_dir():
        raise KBError(kb_dir, None, "is not a directory",
                      f"pass a directory holding {ENTITIES_FILE}, {RELATIONS_FILE} and {TRIPLES_FILE}")
    for name in (ENTITIES_FILE, RELATIONS_FILE, TRIPLES_FILE):
        if not (kb_dir / name).is_file():
            problem = "is a directory, not a file" if (kb_dir / name).is_dir() else "file not found"
            raise KBError(kb_dir / name, None, problem,
                          f"a KB directory needs {ENTITIES_FILE}, {RELATIONS_FILE} and {TRIPLES_FILE}")
    kb = KnowledgeBase(path=kb_dir)

    path = kb_dir / ENTITIES_FILE
    seen: dict[str, int] = {}
    for line_no, obj in _json_lines(path):
        ident = _require_id(obj, path, line_no, seen)
        raw = obj.get("labels")
        if not isinstance(raw, dict):
            raise KBError(path, line_no, f'entity {ident}: "labels" must be an object of language -> aliases',
                          'write e.g. "labels": {"en": ["Paris"], "fr": ["Paris"]}')
        labels: dict[str, tuple[str, ...]] = {}
        for lang, aliases in raw.items():
            if isinstance(aliases, str):
                aliases = [aliases]
            if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
                raise KBError(path, line_no, f"entity {ident}: aliases for {lang!r} must be a list of strings",
                              f'write e.g. "{lang}": ["Paris", "City of Light"]')
            labels[lang] = tuple(dict.fromkeys(a.strip() for a in aliases if a.strip()))
        etype = obj.get("type")
        if etype is not None and not isinstance(etype, str):
            raise KBError(path, line_no, f'entity {ident}: "type" must be a string', 'write e.g. "type": "LOC"')
        popularity = obj.get("popularity")
        if popularity is not None and (not isinstance(popularity, int) or isinstance(popularity, bool)
                                       or popularity < 0):
            raise KBError(path, line_no, f'entity {ident}: "popularity" must be a whole number >= 0',
                          'write e.g. "popularity": 120 (its Wikidata sitelinks), or leave it out')
        kb.entities[ident] = KBEntity(ident, etype, labels, popularity)
    if not kb.entities:
        raise KBError(path, None, "the KB has no entities (no entity lines in the file)",
                      "write one JSON object per entity; a KB with no entities links nothing")

    kb.relations.update(load_relations(kb_dir / RELATIONS_FILE))

    path = kb_dir / TRIPLES_FILE
    facts: dict[tuple[str, str], list[str]] = {}
    for line_no, line in strict_lines(path, KBError):
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != 3:
            raise KBError(path, line_no, f"expected 3 tab-separated fields (head, relation, tail), found {len(fields)}",
                          "write each fact as HEAD<TAB>RELATION<TAB>TAIL")
        head, rel, tail = (f.strip() for f in fields)
        for role, ident, table, fix_file in (
            ("head", head, kb.entities, ENTITIES_FILE),
            ("relation", rel, kb.relations, RELATIONS_FILE),
            ("tail", tail, kb.entities, ENTITIES_FILE),
        ):
            if ident not in table:
                raise KBError(path, line_no, f"unknown {role} id {ident!r}",
                              f"add {ident} to {fix_file} or remove the fact")
        rels = facts.setdefault((head, tail), [])
        if rel not in rels:
            rels.append(rel)
    kb.facts = {k: tuple(v) for k, v in facts.items()}
    logger.info("loaded KB %s in %.2fs: %s", kb_dir, time.perf_counter() - start, kb.summary())
    return kb
