"""GraphML (networkx, Gephi, yEd) of an aggregated graph, written as it streams out."""

from __future__ import annotations

import json
from typing import TextIO

from xlre.kg.aggregate import Graph


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


