"""``xlre export``: extracted triples -> one knowledge graph file (or Neo4j directory).

Reads the triples (:mod:`xlre.kg.reading`), aggregates them (:mod:`xlre.kg.aggregate`)
and writes them with the format's writer, under a temporary name and then renamed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from xlre.kb import load_kb
from xlre.kg.aggregate import DEFAULT_BASE_IRI, Graph, ProgressFn, aggregate
from xlre.kg.graphml import write_graphml
from xlre.kg.neo4j import write_neo4j
from xlre.kg.rdf import write_jsonld, write_nt, write_ttl
from xlre.kg.reading import ExportError, ReadReport, read_triples

FORMATS = ("nt", "ttl", "jsonld", "neo4j", "graphml")


_WRITERS: dict[str, Callable[[Graph, Any], None]] = {
    "nt": write_nt, "ttl": write_ttl, "jsonld": write_jsonld, "graphml": write_graphml}
# pyoxigraph's serializer (xlre.kg.rdf) writes bytes; the GraphML writer writes text.
_BINARY = frozenset({"nt", "ttl", "jsonld"})


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
                with (open(tmp, "wb") if fmt in _BINARY
                      else open(tmp, "w", encoding="utf-8")) as fh:
                    _WRITERS[fmt](graph, fh)
                os.replace(tmp, out)
            finally:
                tmp.unlink(missing_ok=True)
    return {**report.as_dict(), "nodes": n_nodes, "edges": n_edges, "format": fmt,
            "out": str(out), "seconds": round(time.perf_counter() - start, 2)}
