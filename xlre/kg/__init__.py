"""Triples -> knowledge graph: reading, aggregation, RDF / Neo4j / GraphML, SPARQL store.

Consumes JSONL triples (``xlre extract`` output: files, or finished directories of
parts); produces one graph with one edge per fact, its evidence and a combined
confidence, in N-Triples, Turtle, JSON-LD, Neo4j import CSVs or GraphML, or loaded into
an embedded pyoxigraph store.
"""

from xlre.kg.aggregate import DEFAULT_BASE_IRI, Edge, EvidenceRow, Graph, Node, aggregate, normalise
from xlre.kg.export import FORMATS, export
from xlre.kg.reading import (
    PARTS_FORMAT,
    PARTS_MANIFEST,
    ExportError,
    ReadReport,
    part_files,
    read_parts_manifest,
    read_triples,
    triple_files,
)
from xlre.kg.store import StoreError, load_store, query_store

__all__ = [
    "DEFAULT_BASE_IRI",
    "FORMATS",
    "PARTS_FORMAT",
    "PARTS_MANIFEST",
    "Edge",
    "EvidenceRow",
    "ExportError",
    "Graph",
    "Node",
    "ReadReport",
    "StoreError",
    "aggregate",
    "export",
    "load_store",
    "normalise",
    "part_files",
    "query_store",
    "read_parts_manifest",
    "read_triples",
    "triple_files",
]
