"""RDF writers: N-Triples, Turtle and JSON-LD of an aggregated graph (reification for
confidence and provenance; see :mod:`xlre.kg.aggregate`)."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from typing import Any, TextIO

from xlre.kg.aggregate import RDF, RDFS, XSD, Graph


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


