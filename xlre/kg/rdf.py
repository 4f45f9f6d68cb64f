"""RDF writers: N-Triples, Turtle and JSON-LD of an aggregated graph (reification for
confidence and provenance; see :mod:`xlre.kg.aggregate`).

The graph becomes a stream of :class:`pyoxigraph.Triple` (:func:`rdf_triples`, a generator
over the graph's own generators) that :func:`pyoxigraph.serialize` writes as it comes, so
no format holds the graph in memory and all escaping is pyoxigraph's. The writers take a
file opened in binary mode.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache
from typing import BinaryIO

import pyoxigraph as ox

from xlre.kg.aggregate import RDF, RDFS, XSD, Graph
from xlre.kg.reading import ExportError

PREFIXES = {"rdf": RDF, "rdfs": RDFS, "xsd": XSD}


def _iri(value: str) -> ox.NamedNode:
    try:
        return ox.NamedNode(value)
    except (TypeError, ValueError) as exc:
        raise ExportError(f"cannot write {value!r} as an RDF IRI: {exc}") from None


def _lit(value: str, lang: str | None = None, dtype: ox.NamedNode | None = None) -> ox.Literal:
    try:
        if lang:
            return ox.Literal(value, language=lang)
        if dtype is not None:
            return ox.Literal(value, datatype=dtype)
        return ox.Literal(value)
    except (TypeError, ValueError) as exc:
        raise ExportError(f"cannot write {value!r} as an RDF literal: {exc}") from None


def _lang_tag(lang: str) -> str | None:
    return lang if re.fullmatch(r"[a-zA-Z]{1,8}(-[a-zA-Z0-9]{1,8})*", lang or "") and \
        lang != "und" else None


@lru_cache(maxsize=1024)
def _language(lang: str) -> str | None:
    """The language tag of literals in ``lang``: :func:`_lang_tag`'s, when pyoxigraph also
    takes it as BCP 47 (it refuses ``a`` or ``en-x``); ``None`` (a plain literal) if not."""
    tag = _lang_tag(lang)
    if tag is None:
        return None
    try:
        ox.Literal("", language=tag)
    except ValueError:
        return None
    return tag


def _namespace(graph: Graph) -> str:
    """The xlre vocabulary's namespace, once the base IRI is known to be a valid IRI (the
    graph's other IRIs are the base plus percent-encoded or plain ASCII names)."""
    try:
        ox.NamedNode(graph.base)
    except ValueError as exc:
        raise ExportError(f"base IRI {graph.base!r} is not a valid IRI for RDF: {exc}") from None
    return graph.base + "ns#"


def rdf_triples(graph: Graph) -> Iterator[ox.Triple]:
    """Every RDF triple of the graph, as it streams out of the graph's SQLite file."""
    triple = ox.Triple
    x = _namespace(graph)
    label, rdf_type, statement = _iri(RDFS + "label"), _iri(RDF + "type"), _iri(RDF + "Statement")
    rdf_s, rdf_p, rdf_o = _iri(RDF + "subject"), _iri(RDF + "predicate"), _iri(RDF + "object")
    double, integer = _iri(XSD + "double"), _iri(XSD + "integer")
    entity_type, kb_id = _iri(x + "entityType"), _iri(x + "kbId")
    confidence, evidence_count, evidence = (_iri(x + "confidence"), _iri(x + "evidenceCount"),
                                            _iri(x + "evidence"))
    source_count = _iri(x + "sourceCount")
    doc_id, sentence, lang_p, model, score, group = (
        _iri(x + n) for n in ("docId", "sentence", "lang", "model", "score", "group"))
    offsets = [_iri(x + n) for n in ("subjectStart", "subjectEnd", "objectStart", "objectEnd")]
    for node in graph.nodes():
        s = _iri(node.iri)
        for lang, text in sorted(node.labels.items()):
            yield triple(s, label, _lit(text, lang=_language(lang)))
        if node.type:
            yield triple(s, entity_type, _lit(node.type))
        if node.kb_id:
            yield triple(s, kb_id, _lit(node.kb_id))
    labelled: set[str] = set()
    for edge in graph.edges():
        s, p, o = (_iri(graph.entity_iri(edge.subject)), _iri(graph.relation_iri(edge.relation)),
                   _iri(graph.entity_iri(edge.object)))
        yield triple(s, p, o)
        if edge.relation not in labelled:
            labelled.add(edge.relation)
            for lang, text in sorted(edge.relation_labels.items()):
                yield triple(p, label, _lit(text, lang=_language(lang)))
        st_iri = graph.statement_iri(edge)
        st = _iri(st_iri)
        yield triple(st, rdf_type, statement)
        yield triple(st, rdf_s, s)
        yield triple(st, rdf_p, p)
        yield triple(st, rdf_o, o)
        yield triple(st, confidence, _lit(repr(round(edge.confidence, 6)), dtype=double))
        yield triple(st, evidence_count, _lit(str(edge.count), dtype=integer))
        yield triple(st, source_count, _lit(str(edge.sources), dtype=integer))
        for j, ev in enumerate(edge.evidence):
            e = _iri(f"{st_iri}/evidence/{j}")
            yield triple(st, evidence, e)
            yield triple(e, doc_id, _lit(ev.doc_id))
            yield triple(e, sentence, _lit(ev.sentence, lang=_language(ev.lang)))
            yield triple(e, lang_p, _lit(ev.lang))
            yield triple(e, model, _lit(ev.model))
            if ev.group is not None:
                yield triple(e, group, _lit(ev.group))
            yield triple(e, score, _lit(repr(round(ev.score, 6)), dtype=double))
            for name, value in zip(offsets, (ev.subject_start, ev.subject_end, ev.object_start,
                                             ev.object_end), strict=True):
                yield triple(e, name, _lit(str(value), dtype=integer))


# --------------------------------------------------------------------------- writers
def write_nt(graph: Graph, fh: BinaryIO) -> None:
    """N-Triples (pyoxigraph's canonical form: one triple a line, UTF-8)."""
    ox.serialize(rdf_triples(graph), fh, ox.RdfFormat.N_TRIPLES)


def write_ttl(graph: Graph, fh: BinaryIO) -> None:
    """Turtle with the rdf, rdfs, xsd and xlre prefixes; one block per subject run."""
    ox.serialize(rdf_triples(graph), fh, ox.RdfFormat.TURTLE,
                 prefixes={**PREFIXES, "xlre": _namespace(graph)})


def write_jsonld(graph: Graph, fh: BinaryIO) -> None:
    """JSON-LD in expanded form: an array of node objects, one per subject run."""
    ox.serialize(rdf_triples(graph), fh, ox.RdfFormat.JSON_LD)
