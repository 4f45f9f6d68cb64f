"""Aggregation of extracted triples into one graph: nodes, edges, evidence, confidence.

Consumes JSONL triples (``xlre extract`` output, :meth:`xlre.records.Triple.to_json`);
produces one graph in the chosen format, streaming, so millions of triples export in
bounded memory.

**Aggregation.** The same (subject, relation, object) read in many sentences, in any
language, becomes one edge with its evidence count, every piece of evidence (document,
sentence, language, model, score, character offsets) and a combined confidence by
**noisy-or** over independent sources, ``1 - prod(1 - score_i)``, where ``score_i`` is a
source's best score for the fact. A source is one sentence of one document, or, when
documents carry a ``group`` (a sentence and its translations: one source pair of a
parallel corpus), the whole group: a translation restates its original and adds no
independent evidence. So a fact read in three unrelated sentences at 0.6 gets 0.936, and
read at 0.6 in an English sentence and at 0.7 in its Chinese translation (one group)
gets 0.7. The same reading given twice (same document, offsets and model: a file passed
twice, say) counts once. A node is its KB id when the argument has
one, else its normalised surface text (NFC, casefolded, whitespace collapsed) with its
entity type; its label in each language is the surface form most often seen in that
language, or the KB's first alias when a KB is given. Grouping happens in a temporary
SQLite database on disk, not in Python dicts, and edges come out sorted by (subject,
relation, object).

**IRIs.** KB ids that are Wikidata ids become ``http://www.wikidata.org/entity/Q…`` and
``http://www.wikidata.org/prop/direct/P…``; other ids, unlinked entities, statements
and evidence get IRIs under ``base_iri``.

**Confidence and provenance in RDF** use standard RDF reification: every edge is written
as a plain triple *and* as an ``rdf:Statement`` carrying ``xlre:confidence``,
``xlre:evidenceCount`` and ``xlre:evidence`` nodes. Reification is plain RDF 1.1, so
every RDF tool reads it (rdflib, Jena, pyoxigraph, Neo4j's n10s, Blazegraph); RDF-star
and RDF 1.2 triple terms would be more compact, but support for them across parsers and
stores is still uneven, and a graph that half the tools reject is no export.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import sqlite3
import tempfile
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from xlre.kg.reading import ExportError
from xlre.records import Triple

logger = logging.getLogger(__name__)

DEFAULT_BASE_IRI = "https://xlre.example.org/"
WD_ENTITY = "http://www.wikidata.org/entity/"
WD_PROP = "http://www.wikidata.org/prop/direct/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
XSD = "http://www.w3.org/2001/XMLSchema#"
_WD_Q = re.compile(r"Q[1-9][0-9]*")
_WD_P = re.compile(r"P[1-9][0-9]*")
ProgressFn = Callable[[int], None]


def normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def node_key(kb_id: str | None, text: str, label: str | None) -> str:
    if kb_id:
        return f"kb:{kb_id}"
    return f"text:{label or 'ENT'}:{normalise(text)}"


@dataclass(frozen=True)
class Node:
    key: str
    kb_id: str | None
    type: str | None
    labels: dict[str, str]  # language -> label
    iri: str


@dataclass(frozen=True)
class EvidenceRow:
    doc_id: str
    sentence: str
    lang: str
    model: str
    score: float
    subject_start: int
    subject_end: int
    object_start: int
    object_end: int
    group: str | None = None

    @property
    def source(self) -> tuple[str, ...]:
        """The independent source this reading belongs to (see the module docstring)."""
        return ("group", self.group) if self.group is not None else ("sentence", self.doc_id,
                                                                         self.sentence)


@dataclass(frozen=True)
class Edge:
    subject: str  # node keys
    relation: str
    object: str
    confidence: float
    evidence: tuple[EvidenceRow, ...]
    relation_labels: dict[str, str]

    @property
    def count(self) -> int:
        return len(self.evidence)

    @property
    def sources(self) -> int:
        """Independent sources among the evidence (what the confidence combines)."""
        return len({ev.source for ev in self.evidence})


class Graph:
    """Triples aggregated into nodes and edges in a SQLite file (see the module docstring)."""

    def __init__(self, workdir: Path, base_iri: str = DEFAULT_BASE_IRI,
                 kb: Any = None) -> None:
        if not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://\S+$", base_iri):
            raise ExportError(f"base IRI {base_iri!r} is not an absolute IRI; give one like "
                              f"{DEFAULT_BASE_IRI}")
        self.base = base_iri if base_iri.endswith(("/", "#")) else base_iri + "/"
        self.kb = kb
        self.db = sqlite3.connect(workdir / "graph.sqlite")
        self.db.executescript("""
            PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA temp_store = FILE;
            CREATE TABLE evidence (s TEXT, r TEXT, o TEXT, score REAL, doc TEXT, sentence TEXT,
                lang TEXT, model TEXT, ss INT, se INT, os INT, oe INT, grp TEXT);
            CREATE TABLE surface (key TEXT, kb_id TEXT, type TEXT, lang TEXT, text TEXT,
                n INT, PRIMARY KEY (key, lang, text));
            CREATE TABLE rel_label (r TEXT, lang TEXT, label TEXT, PRIMARY KEY (r, lang));
        """)
        self._pending: list[tuple] = []
        self._surfaces: list[tuple] = []
        self._labels: list[tuple] = []

    def add(self, t: Triple) -> None:
        s = node_key(t.subject.kb_id, t.subject.text, t.subject.label)
        o = node_key(t.object.kb_id, t.object.text, t.object.label)
        ev = t.evidence
        self._pending.append((s, t.relation, o, t.score, ev.doc_id, ev.sentence, ev.lang,
                              ev.model, t.subject.char_start, t.subject.char_end,
                              t.object.char_start, t.object.char_end, ev.group))
        for key, arg in ((s, t.subject), (o, t.object)):
            self._surfaces.append((key, arg.kb_id, arg.label, ev.lang, arg.text))
        if t.relation_label:
            self._labels.append((t.relation, ev.lang, t.relation_label))
        if len(self._pending) >= 10_000:
            self.flush()

    def flush(self) -> None:
        with self.db:
            self.db.executemany("INSERT INTO evidence VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                self._pending)
            self.db.executemany(
                "INSERT INTO surface VALUES (?,?,?,?,?,1) ON CONFLICT (key, lang, text) "
                "DO UPDATE SET n = n + 1", self._surfaces)
            self.db.executemany("INSERT OR IGNORE INTO rel_label VALUES (?,?,?)", self._labels)
        self._pending, self._surfaces, self._labels = [], [], []

    # ---------------------------------------------------------------- IRIs
    def entity_iri(self, key: str) -> str:
        if key.startswith("kb:"):
            kb_id = key[3:]
            if _WD_Q.fullmatch(kb_id):
                return WD_ENTITY + kb_id
            return f"{self.base}entity/{quote(kb_id, safe='')}"
        return f"{self.base}entity/text/{quote(key[5:], safe='')}"

    def relation_iri(self, rel: str) -> str:
        if _WD_P.fullmatch(rel):
            return WD_PROP + rel
        return f"{self.base}relation/{quote(rel, safe='')}"

    def statement_iri(self, edge: Edge) -> str:
        digest = hashlib.sha1(f"{edge.subject}\x00{edge.relation}\x00{edge.object}".encode())
        return f"{self.base}statement/{digest.hexdigest()[:20]}"

    # ---------------------------------------------------------------- reading back
    def nodes(self) -> Iterator[Node]:
        self.flush()
        rows = self.db.execute(
            "SELECT key, kb_id, type, lang, text, n FROM surface ORDER BY key, lang, n DESC, text")
        for key, group in itertools.groupby(rows, key=lambda r: r[0]):
            group = list(group)
            labels: dict[str, str] = {}
            for _, _, _, lang, text, _ in group:
                labels.setdefault(lang, text)  # the most frequent surface per language
            kb_id = next((g[1] for g in group if g[1]), None)
            typ = max((g[2] for g in group if g[2]), default=None,
                      key=lambda t: sum(g[5] for g in group if g[2] == t))
            if self.kb is not None and kb_id in getattr(self.kb, "entities", {}):
                ent = self.kb.entities[kb_id]
                labels = {lang: aliases[0] for lang, aliases in ent.labels.items() if aliases}
                typ = ent.type or typ
            yield Node(key, kb_id, typ, labels, self.entity_iri(key))

    def relation_labels(self) -> dict[str, dict[str, str]]:
        """Relation names per language: the KB's when given, else those the triples carry."""
        self.flush()
        out: dict[str, dict[str, str]] = {}
        for r, lang, label in self.db.execute("SELECT r, lang, label FROM rel_label"):
            out.setdefault(r, {})[lang] = label
        if self.kb is not None:
            for (r,) in self.db.execute("SELECT DISTINCT r FROM evidence"):
                if r in self.kb.relations:
                    out[r] = dict(self.kb.relations[r].labels)
        return out

    def edges(self) -> Iterator[Edge]:
        self.flush()
        names = self.relation_labels()
        rows = self.db.execute(
            "SELECT s, r, o, score, doc, sentence, lang, model, ss, se, os, oe, grp FROM evidence "
            "ORDER BY s, r, o, doc, ss, se, os, oe, model, score DESC")
        self.duplicate_evidence = 0
        for (s, r, o), group in itertools.groupby(rows, key=lambda x: x[:3]):
            kept: list[EvidenceRow] = []
            last = None
            for g in group:
                mention = (g[4], g[7], g[8], g[9], g[10], g[11])
                if mention == last:  # the same reading twice (e.g. a file given twice)
                    self.duplicate_evidence += 1
                    continue
                last = mention
                kept.append(EvidenceRow(g[4], g[5], g[6], g[7], g[3], g[8], g[9], g[10], g[11],
                                        g[12]))
            evidence = tuple(kept)
            best: dict[tuple[str, ...], float] = {}
            for ev in evidence:
                score = min(max(ev.score, 0.0), 1.0)
                best[ev.source] = max(best.get(ev.source, 0.0), score)
            keep = 1.0
            for score in best.values():
                keep *= 1.0 - score
            yield Edge(s, r, o, 1.0 - keep, evidence, names.get(r, {}))

    def close(self) -> None:
        self.db.close()


@contextmanager
def aggregate(triples: Iterable[Triple], base_iri: str = DEFAULT_BASE_IRI, kb: Any = None,
              progress: ProgressFn | None = None) -> Iterator[Graph]:
    """A :class:`Graph` of ``triples`` in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="xlre-graph-") as tmp:
        graph = Graph(Path(tmp), base_iri, kb)
        try:
            for n, t in enumerate(triples, start=1):
                graph.add(t)
                if progress is not None and n % 10_000 == 0:
                    progress(10_000)
            graph.flush()
            yield graph
        finally:
            graph.close()


