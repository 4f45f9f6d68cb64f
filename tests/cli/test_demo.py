"""xlre demo end to end in its reduced size, with its outputs checked."""

from __future__ import annotations

import json

import rdflib
from typer.testing import CliRunner

from xlre.cli import app
from xlre.kg import read_triples


def test_quick_demo_end_to_end(tmp_path):
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--quick", "--out", str(out)])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "demo.json").read_text())
    st = summary["stages"]
    assert st["annotate"]["pairs"] == 600
    assert st["annotate"]["relations"]["en"] > 0 and st["annotate"]["relations"]["fr"] > 0
    # The model is a real checkpoint with its metrics, in both languages.
    metrics = json.loads((out / "model" / "metrics.json").read_text())
    for lang in ("en", "fr"):
        assert metrics["test"][lang]["relation_micro_f1"] > 0.3, metrics["test"][lang]
        assert st["extract"]["heldout_scores"][lang]["gold"] > 0
    # Extraction found triples in both languages, from held-out sentences only.
    triples = list(read_triples([out / "triples.jsonl"]))
    assert len(triples) == st["extract"]["triples"] > 0
    assert {t.evidence.lang for t in triples} == {"en", "fr"}
    assert all(t.evidence.doc_id.startswith("heldout-") for t in triples)
    assert st["extract"]["heldout_scores"]["all"]["f1"] > 0.2
    # The Turtle file parses and holds every edge; the store answers the query.
    g = rdflib.Graph().parse(out / "graph.ttl", format="turtle")
    statements = set(g.subjects(rdflib.RDF.type, rdflib.RDF.Statement))
    assert len(statements) == st["export"]["edges"] > 0
    assert sum(int(row[1]) for row in st["query"]["rows"]) == st["export"]["edges"]
    assert "xlre demo" in result.output and "held-out F1" in result.output
    # A second run replaces the first; a foreign directory is refused.
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    bad = CliRunner().invoke(app, ["demo", "--quick", "--out", str(foreign)])
    assert bad.exit_code == 2 and "not an earlier demo" in bad.output
    assert (foreign / "keep.txt").exists()
