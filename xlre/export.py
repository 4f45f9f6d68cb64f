"""Knowledge-graph export of extracted triples: aggregation, RDF, Neo4j, GraphML.

Consumes JSONL triples (``xlre extract`` output, :meth:`xlre.records.Triple.to_json`);
produces one graph in the chosen format, streaming, so millions of triples export in
bounded memory.

**Aggregation.** The same (subject, relation, object) read in many sentences, in any
language, becomes one edge with its evidence count, every piece of evidence (document,
sentence, language, model, score, character offsets) and a combined confidence by
**noisy-or**, ``1 - prod(1 - score_i)``: each sentence is taken as independent evidence,
so a fact read three times at 0.6 gets 0.936. The same reading given twice (same
document, offsets and model: a file passed twice, say) counts once. A node is its KB id when the argument has
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

import csv
import hashlib
import itertools
import json
import logging
import os
import re
import sqlite3
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import quote

from xlre.records import Triple

logger = logging.getLogger(__name__)

FORMATS = ("nt", "ttl", "jsonld", "neo4j", "graphml")
DEFAULT_BASE_IRI = "https://xlre.example.org/"
WD_ENTITY = "http://www.wikidata.org/entity/"
WD_PROP = "http://www.wikidata.org/prop/direct/"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
XSD = "http://www.w3.org/2001/XMLSchema#"
_WD_Q = re.compile(r"Q[1-9][0-9]*")
_WD_P = re.compile(r"P[1-9][0-9]*")
ProgressFn = Callable[[int], None]


class ExportError(ValueError):
    """Triples cannot be read or exported; the message names the file, line and fix."""


# --------------------------------------------------------------------------- reading
@dataclass
class ReadReport:
    """Triples read, and those skipped (with ``skip_bad``) by reason."""

    triples: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"triples": self.triples, "skipped": dict(sorted(self.skipped.items()))}


def read_triples(paths: Iterable[str | Path], skip_bad: bool = False,
                 report: ReadReport | None = None) -> Iterator[Triple]:
    """Triples from JSONL files (``"-"``: standard input), line by line.

    A bad line (empty, invalid JSON, a missing or mistyped field) raises
    :class:`ExportError` with the file and line, or with ``skip_bad`` is counted.
    """
    import sys

    report = report if report is not None else ReadReport()

    def bad(name: str, line_no: int, reason: str, message: str) -> None:
        if not skip_bad:
            raise ExportError(f"{name}:{line_no}: {message}. Fix: give one triple a line as "
                              "xlre extract writes them (or pass --skip-bad)")
        report.skipped[reason] = report.skipped.get(reason, 0) + 1

    for path in paths:
        name = str(path)
        try:
            fh: TextIO = sys.stdin if name == "-" else open(path, encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise ExportError(f"{name}: cannot open ({exc.strerror})") from None
        try:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    bad(name, line_no, "empty_line", "the line is empty")
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    bad(name, line_no, "invalid_json", f"invalid JSON ({exc.msg})")
                    continue
                if not isinstance(obj, dict):
                    bad(name, line_no, "not_an_object", "the line is not a JSON object")
                    continue
                try:
                    triple = Triple.from_json(obj)
                except KeyError as exc:
                    bad(name, line_no, "missing_field", f"missing field {exc.args[0]!r}")
                    continue
                except (TypeError, ValueError, AttributeError) as exc:
                    bad(name, line_no, "bad_field", f"a field has the wrong type ({exc})")
                    continue
                report.triples += 1
                yield triple
        except UnicodeDecodeError as exc:
            raise ExportError(f"{name}: not valid UTF-8 ({exc.reason}); convert it to "
                              "UTF-8") from None
        finally:
            if name != "-":
                fh.close()


# --------------------------------------------------------------------------- aggregation
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
                lang TEXT, model TEXT, ss INT, se INT, os INT, oe INT);
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
                              t.object.char_start, t.object.char_end))
        for key, arg in ((s, t.subject), (o, t.object)):
            self._surfaces.append((key, arg.kb_id, arg.label, ev.lang, arg.text))
        if t.relation_label:
            self._labels.append((t.relation, ev.lang, t.relation_label))
        if len(self._pending) >= 10_000:
            self.flush()

    def flush(self) -> None:
        with self.db:
            self.db.executemany("INSERT INTO evidence VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
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
            "SELECT s, r, o, score, doc, sentence, lang, model, ss, se, os, oe FROM evidence "
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
                kept.append(EvidenceRow(g[4], g[5], g[6], g[7], g[3], g[8], g[9], g[10], g[11]))
            evidence = tuple(kept)
            keep = 1.0
            for ev in evidence:
                keep *= 1.0 - min(max(ev.score, 0.0), 1.0)
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


# --------------------------------------------------------------------------- RDF terms
def _iri(value: str) -> str:
    return "<" + "".join(f"\\u{ord(c):04X}" if c in '<>"{}|^`\\' or ord(c) <= 0x20 else c
                         for c in value) + ">"


def _lit(value: str, lang: str | None = None, dtype: str | None = None) -> str:
    escaped = (value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
               .replace("\r", "\\r"))
    if lang:
        return f'"{escaped}"@{lang}'
    if dtype:
        return f'"{escaped}"^^<{dtype}>'
    return f'"{escaped}"'


def _lang_tag(lang: str) -> str | None:
    return lang if re.fullmatch(r"[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*", lang or "") and \
        lang != "und" else None


def rdf_triples(graph: Graph) -> Iterator[tuple[str, str, str]]:
    """Every RDF triple of the graph as N-Triples terms (subject, predicate, object)."""
    x = graph.base + "ns#"
    for node in graph.nodes():
        s = _iri(node.iri)
        for lang, label in sorted(node.labels.items()):
            tag = _lang_tag(lang)
            yield s, _iri(RDFS + "label"), _lit(label, lang=tag)
        if node.type:
            yield s, _iri(x + "entityType"), _lit(node.type)
        if node.kb_id:
            yield s, _iri(x + "kbId"), _lit(node.kb_id)
    labelled: set[str] = set()
    for edge in graph.edges():
        s, p, o = (_iri(graph.entity_iri(edge.subject)), _iri(graph.relation_iri(edge.relation)),
                   _iri(graph.entity_iri(edge.object)))
        yield s, p, o
        if edge.relation not in labelled:
            labelled.add(edge.relation)
            for lang, label in sorted(edge.relation_labels.items()):
                yield p, _iri(RDFS + "label"), _lit(label, lang=_lang_tag(lang))
        st = _iri(graph.statement_iri(edge))
        yield st, _iri(RDF + "type"), _iri(RDF + "Statement")
        yield st, _iri(RDF + "subject"), s
        yield st, _iri(RDF + "predicate"), p
        yield st, _iri(RDF + "object"), o
        yield st, _iri(x + "confidence"), _lit(repr(round(edge.confidence, 6)), dtype=XSD + "double")
        yield st, _iri(x + "evidenceCount"), _lit(str(edge.count), dtype=XSD + "integer")
        for j, ev in enumerate(edge.evidence):
            e = _iri(f"{graph.statement_iri(edge)}/evidence/{j}")
            yield st, _iri(x + "evidence"), e
            yield e, _iri(x + "docId"), _lit(ev.doc_id)
            yield e, _iri(x + "sentence"), _lit(ev.sentence, lang=_lang_tag(ev.lang))
            yield e, _iri(x + "lang"), _lit(ev.lang)
            yield e, _iri(x + "model"), _lit(ev.model)
            yield e, _iri(x + "score"), _lit(repr(round(ev.score, 6)), dtype=XSD + "double")
            for name, value in (("subjectStart", ev.subject_start), ("subjectEnd", ev.subject_end),
                                ("objectStart", ev.object_start), ("objectEnd", ev.object_end)):
                yield e, _iri(x + name), _lit(str(value), dtype=XSD + "integer")


# --------------------------------------------------------------------------- writers
def write_nt(graph: Graph, fh: TextIO) -> None:
    for s, p, o in rdf_triples(graph):
        fh.write(f"{s} {p} {o} .\n")


def write_ttl(graph: Graph, fh: TextIO) -> None:
    """Turtle: full IRIs in angle brackets (always valid), one block per subject run."""
    fh.write(f"@prefix rdf: <{RDF}> .\n@prefix rdfs: <{RDFS}> .\n@prefix xsd: <{XSD}> .\n\n")
    current = None
    for s, p, o in rdf_triples(graph):
        if s == current:
            fh.write(f" ;\n    {p} {o}")
        else:
            if current is not None:
                fh.write(" .\n")
            fh.write(f"{s}\n    {p} {o}")
            current = s
    if current is not None:
        fh.write(" .\n")


def _jsonld_object(term: str) -> dict[str, str]:
    if term.startswith("<"):
        return {"@id": _unescape_iri(term[1:-1])}
    body, _, tail = term[1:].rpartition('"')
    value = json.loads('"' + body + '"')
    if tail.startswith("@"):
        return {"@value": value, "@language": tail[1:]}
    if tail.startswith("^^"):
        return {"@value": value, "@type": tail[3:-1]}
    return {"@value": value}


def _unescape_iri(value: str) -> str:
    return re.sub(r"\\u([0-9A-F]{4})", lambda m: chr(int(m.group(1), 16)), value)


def write_jsonld(graph: Graph, fh: TextIO) -> None:
    """JSON-LD in expanded form: one node object per subject run, written as it comes."""
    fh.write('{"@context": ' + json.dumps({"rdfs": RDFS, "xsd": XSD}) + ',\n "@graph": [')
    first = True
    for s, group in itertools.groupby(rdf_triples(graph), key=lambda t: t[0]):
        node: dict[str, Any] = {"@id": _unescape_iri(s[1:-1])}
        for _, p, o in group:
            node.setdefault(_unescape_iri(p[1:-1]), []).append(_jsonld_object(o))
        fh.write(("\n  " if first else ",\n  ") + json.dumps(node, ensure_ascii=False))
        first = False
    fh.write("\n]}\n")


def write_neo4j(graph: Graph, out_dir: Path) -> None:
    """``nodes.csv`` and ``relationships.csv`` for ``neo4j-admin database import full``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "nodes.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["id:ID", "name", "kb_id", "iri", "labels:string[]", ":LABEL"])
        for node in graph.nodes():
            name = node.labels.get("en") or next(iter(node.labels.values()), "")
            labels = ";".join(f"{v}@{k}" for k, v in sorted(node.labels.items()))
            kinds = "Entity" + (f";{_neo_label(node.type)}" if node.type else "")
            w.writerow([node.key, name, node.kb_id or "", node.iri, labels, kinds])
    with open(out_dir / "relationships.csv", "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow([":START_ID", ":END_ID", ":TYPE", "relation_id", "relation_label",
                    "confidence:double", "evidence_count:int", "evidence_docs:string[]"])
        for edge in graph.edges():
            label = edge.relation_labels.get("en") or next(iter(edge.relation_labels.values()),
                                                            "")
            docs = ";".join(ev.doc_id.replace(";", ",") for ev in edge.evidence)
            w.writerow([edge.subject, edge.object, _neo_label(edge.relation), edge.relation,
                        label, f"{edge.confidence:.6f}", edge.count, docs])


def _neo_label(value: str) -> str:
    cleaned = re.sub(r"[^0-9A-Za-z_]", "_", value)
    return cleaned if cleaned and not cleaned[0].isdigit() else f"_{cleaned}"


def _xml(value: str) -> str:
    value = "".join(c for c in value if c in "\t\n\r" or ord(c) >= 0x20)
    return (value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def write_graphml(graph: Graph, fh: TextIO) -> None:
    """GraphML (directed, parallel edges allowed) for networkx, Gephi, yEd."""
    fh.write('<?xml version="1.0" encoding="UTF-8"?>\n'
             '<graphml xmlns="http://graphml.graphdrawing.org/xmlns">\n')
    keys = [("label", "node", "string"), ("kb_id", "node", "string"),
            ("type", "node", "string"), ("iri", "node", "string"),
            ("relation", "edge", "string"), ("relation_label", "edge", "string"),
            ("confidence", "edge", "double"), ("evidence_count", "edge", "int"),
            ("evidence", "edge", "string")]
    for name, target, kind in keys:
        fh.write(f'  <key id="{name}" for="{target}" attr.name="{name}" '
                 f'attr.type="{kind}"/>\n')
    fh.write('  <graph id="xlre" edgedefault="directed">\n')
    for node in graph.nodes():
        label = node.labels.get("en") or next(iter(node.labels.values()), "")
        fh.write(f'    <node id="{_xml(node.key)}">')
        for k, v in (("label", label), ("kb_id", node.kb_id), ("type", node.type),
                     ("iri", node.iri)):
            if v:
                fh.write(f'<data key="{k}">{_xml(v)}</data>')
        fh.write("</node>\n")
    for n, edge in enumerate(graph.edges()):
        label = edge.relation_labels.get("en") or next(iter(edge.relation_labels.values()), "")
        evidence = json.dumps([ev.__dict__ for ev in edge.evidence], ensure_ascii=False)
        fh.write(f'    <edge id="e{n}" source="{_xml(edge.subject)}" '
                 f'target="{_xml(edge.object)}">'
                 f'<data key="relation">{_xml(edge.relation)}</data>'
                 f'<data key="relation_label">{_xml(label)}</data>'
                 f'<data key="confidence">{edge.confidence:.6f}</data>'
                 f'<data key="evidence_count">{edge.count}</data>'
                 f'<data key="evidence">{_xml(evidence)}</data></edge>\n')
    fh.write("  </graph>\n</graphml>\n")


_WRITERS: dict[str, Callable[[Graph, TextIO], None]] = {
    "nt": write_nt, "ttl": write_ttl, "jsonld": write_jsonld, "graphml": write_graphml}


def export(
    paths: Iterable[str | Path],
    fmt: str,
    out: str | Path,
    base_iri: str = DEFAULT_BASE_IRI,
    kb: Any = None,
    skip_bad: bool = False,
    progress: ProgressFn | None = None,
) -> dict[str, Any]:
    """Export the triples in ``paths`` as ``fmt`` to ``out`` (a directory for ``neo4j``).

    Files are written under a temporary name and renamed, so a failed export leaves no
    half-written graph. Returns counts: triples read and skipped, nodes, edges, seconds.
    """
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    if kb is not None and not hasattr(kb, "entities"):
        from xlre.kb import load_kb

        kb = load_kb(kb)
    start = time.perf_counter()
    out = Path(out)
    report = ReadReport()
    with aggregate(read_triples(paths, skip_bad, report), base_iri, kb, progress) as graph:
        n_nodes = graph.db.execute("SELECT COUNT(DISTINCT key) FROM surface").fetchone()[0]
        n_edges = graph.db.execute(
            "SELECT COUNT(*) FROM (SELECT 1 FROM evidence GROUP BY s, r, o)").fetchone()[0]
        if fmt == "neo4j":
            tmp_dir = out.with_name(f".{out.name}.tmp")
            write_neo4j(graph, tmp_dir)
            if out.exists():
                for name in ("nodes.csv", "relationships.csv"):
                    os.replace(tmp_dir / name, out / name)
                tmp_dir.rmdir()
            else:
                os.replace(tmp_dir, out)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            tmp = out.with_name(f".{out.name}.tmp")
            try:
                with open(tmp, "w", encoding="utf-8") as fh:
                    _WRITERS[fmt](graph, fh)
                os.replace(tmp, out)
            finally:
                tmp.unlink(missing_ok=True)
    return {**report.as_dict(), "nodes": n_nodes, "edges": n_edges, "format": fmt,
            "out": str(out), "seconds": round(time.perf_counter() - start, 2)}
