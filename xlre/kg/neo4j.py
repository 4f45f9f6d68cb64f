"""Neo4j bulk-import CSVs (``neo4j-admin database import full``) of an aggregated graph,
written as the graph streams out."""

from __future__ import annotations

import csv
import re
from pathlib import Path

from xlre.kg.aggregate import Graph


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


