"""Knowledge-graph export and the embedded store, on hand-made triples."""

from __future__ import annotations

import csv
import json

import networkx as nx
import pytest
import rdflib
from rdflib.compare import isomorphic
from typer.testing import CliRunner

from xlre.cli import app
from xlre.kg import (
    ExportError,
    ReadReport,
    StoreError,
    export,
    load_store,
    query_store,
    read_triples,
)
from xlre.records import Argument, Evidence, Triple

XLRE = "https://kg.test/ns#"
WD = "http://www.wikidata.org/entity/"
WDT = "http://www.wikidata.org/prop/direct/"


def _t(s, s_id, r, o, o_id, score, doc, lang, s_type="LOC", o_type="LOC", label=None):
    sentence = f"{s} ... {o}"
    return Triple(Argument(s, 0, len(s), s_id, s_type), r,
                  Argument(o, len(s) + 5, len(s) + 5 + len(o), o_id, o_type), score,
                  Evidence(doc, sentence, lang, "models/m"), label)


TRIPLES = [
    # One fact read three times, in two languages: one edge.
    _t("Lyon", "Q456", "P17", "France", "Q142", 0.6, "d1", "en", label="country"),
    _t("Lyon", "Q456", "P17", "France", "Q142", 0.5, "d2", "fr", label="pays"),
    _t("Lyon", "Q456", "P17", "France", "Q142", 0.8, "d3", "en", label="country"),
    # Unlinked entities: keyed by normalised text and type; a non-Wikidata relation.
    _t("Acme  Corp", None, "founded_by", "Bob Stone", None, 0.9, "d4", "en", "ORG", "PER"),
    _t("Acme Corp", None, "founded_by", "Bob Stone", None, 0.5, "d5", "en", "ORG", "PER"),
    # A non-Wikidata KB id.
    _t("Bob Stone", "X2", "P108", "Acme Corp", None, 0.7, "d6", "en", "PER", "ORG"),
]
# Noisy-or of 0.6, 0.5, 0.8: 1 - 0.4 * 0.5 * 0.2 = 0.96; of 0.9 and 0.5: 0.95.
LYON_CONF, ACME_CONF = 0.96, 0.95


@pytest.fixture()
def triples_file(tmp_path):
    path = tmp_path / "triples.jsonl"
    path.write_text("".join(json.dumps(t.to_json()) + "\n" for t in TRIPLES), encoding="utf-8")
    return path


def _export(path, fmt, out):
    return export([path], fmt, out, base_iri="https://kg.test/")


def test_aggregation_counts_and_noisy_or(triples_file, tmp_path):
    summary = _export(triples_file, "nt", tmp_path / "g.nt")
    assert summary["triples"] == 6
    assert summary["edges"] == 3  # Lyon-France, Acme-Bob, Bob-Acme
    # Lyon, France, Acme Corp (unlinked ORG), Bob Stone unlinked (PER) and Bob Stone X2.
    assert summary["nodes"] == 5
    g = rdflib.Graph().parse(tmp_path / "g.nt", format="nt")
    stmt = next(g.subjects(rdflib.RDF.predicate, rdflib.URIRef(WDT + "P17")))
    assert float(g.value(stmt, rdflib.URIRef(XLRE + "confidence"))) == pytest.approx(LYON_CONF)
    assert int(g.value(stmt, rdflib.URIRef(XLRE + "evidenceCount"))) == 3
    docs = {str(g.value(e, rdflib.URIRef(XLRE + "docId")))
            for e in g.objects(stmt, rdflib.URIRef(XLRE + "evidence"))}
    assert docs == {"d1", "d2", "d3"}
    langs = {str(g.value(e, rdflib.URIRef(XLRE + "lang")))
             for e in g.objects(stmt, rdflib.URIRef(XLRE + "evidence"))}
    assert langs == {"en", "fr"}
    founded = rdflib.URIRef("https://kg.test/relation/founded_by")
    stmt2 = next(g.subjects(rdflib.RDF.predicate, founded))
    assert float(g.value(stmt2, rdflib.URIRef(XLRE + "confidence"))) == pytest.approx(ACME_CONF)
    assert int(g.value(stmt2, rdflib.URIRef(XLRE + "evidenceCount"))) == 2


def test_the_same_reading_twice_counts_once(triples_file, tmp_path):
    _export_two = export([triples_file, triples_file], "nt", tmp_path / "g.nt",
                         base_iri="https://kg.test/")
    assert _export_two["triples"] == 12 and _export_two["edges"] == 3
    g = rdflib.Graph().parse(tmp_path / "g.nt", format="nt")
    stmt = next(g.subjects(rdflib.RDF.predicate, rdflib.URIRef(WDT + "P17")))
    assert int(g.value(stmt, rdflib.URIRef(XLRE + "evidenceCount"))) == 3
    assert float(g.value(stmt, rdflib.URIRef(XLRE + "confidence"))) == pytest.approx(LYON_CONF)


def test_iris_labels_and_plain_edges(triples_file, tmp_path):
    _export(triples_file, "nt", tmp_path / "g.nt")
    g = rdflib.Graph().parse(tmp_path / "g.nt", format="nt")
    lyon, france = rdflib.URIRef(WD + "Q456"), rdflib.URIRef(WD + "Q142")
    assert (lyon, rdflib.URIRef(WDT + "P17"), france) in g
    bob = rdflib.URIRef("https://kg.test/entity/X2")  # a KB id that is not Wikidata's
    acme = rdflib.URIRef("https://kg.test/entity/text/ORG%3Aacme%20corp")
    assert (bob, rdflib.URIRef(WDT + "P108"), acme) in g
    labels = {(str(o), o.language) for o in g.objects(lyon, rdflib.RDFS.label)}
    assert labels == {("Lyon", "en"), ("Lyon", "fr")}
    p17 = {(str(o), o.language) for o in g.objects(rdflib.URIRef(WDT + "P17"), rdflib.RDFS.label)}
    assert p17 == {("country", "en"), ("pays", "fr")}
    # "Acme  Corp" and "Acme Corp" are one node; the most frequent form names it.
    assert {str(o) for o in g.objects(acme, rdflib.RDFS.label)} == {"Acme Corp"}


@pytest.mark.parametrize(("fmt", "parser"), [("ttl", "turtle"), ("jsonld", "json-ld")])
def test_turtle_and_jsonld_parse_to_the_same_graph(triples_file, tmp_path, fmt, parser):
    _export(triples_file, "nt", tmp_path / "g.nt")
    _export(triples_file, fmt, tmp_path / f"g.{fmt}")
    reference = rdflib.Graph().parse(tmp_path / "g.nt", format="nt")
    other = rdflib.Graph().parse(tmp_path / f"g.{fmt}", format=parser)
    assert len(other) == len(reference) > 0
    assert set(other) == set(reference)


def test_hard_strings_round_trip_exactly_in_every_rdf_format(tmp_path):
    """Quotes, backslashes, newlines, tabs and non-ASCII text survive nt, ttl and jsonld."""
    s, o = 'Zürich "HB" \\ Nord', "東京\tTokyo\nCity"
    sentence = f'He said "{s}"\\n\r\nthen\t{o}.'
    t = Triple(Argument(s, 0, len(s), None, "LOC"), "near",
               Argument(o, 10, 10 + len(o), "Q1490", "LOC"), 0.75,
               Evidence('d"1\\', sentence, "de", "models/m"), 'nahe "bei"')
    path = tmp_path / "hard.jsonl"
    path.write_text(json.dumps(t.to_json()) + "\n", encoding="utf-8")
    graphs = {}
    for fmt, parser in (("nt", "nt"), ("ttl", "turtle"), ("jsonld", "json-ld")):
        _export(path, fmt, tmp_path / f"hard.{fmt}")
        graphs[fmt] = rdflib.Graph().parse(tmp_path / f"hard.{fmt}", format=parser)
    assert len(graphs["nt"]) > 0
    assert isomorphic(graphs["nt"], graphs["ttl"]) and isomorphic(graphs["nt"], graphs["jsonld"])
    for g in graphs.values():
        labels = {(str(x), x.language) for x in g.objects(None, rdflib.RDFS.label)}
        assert labels == {(s, "de"), (o, "de"), ('nahe "bei"', "de")}
        ev = g.value(None, rdflib.URIRef(XLRE + "docId"), rdflib.Literal('d"1\\'))
        text = g.value(ev, rdflib.URIRef(XLRE + "sentence"))
        assert (str(text), text.language) == (sentence, "de")


def test_an_iri_rdf_refuses_is_a_clear_error(triples_file, tmp_path):
    with pytest.raises(ExportError, match=r"'https://kg\.test/a\|b/' is not a valid IRI"):
        export([triples_file], "ttl", tmp_path / "g.ttl", base_iri="https://kg.test/a|b/")
    assert not (tmp_path / "g.ttl").exists() and not (tmp_path / ".g.ttl.tmp").exists()


def test_graphml_reads_back_with_networkx(triples_file, tmp_path):
    _export(triples_file, "graphml", tmp_path / "g.graphml")
    g = nx.read_graphml(tmp_path / "g.graphml")
    assert g.number_of_nodes() == 5 and g.number_of_edges() == 3
    data = next(d for _, _, d in g.edges(data=True) if d["relation"] == "P17")
    assert data["evidence_count"] == 3 and data["confidence"] == pytest.approx(LYON_CONF)
    assert data["relation_label"] == "country"
    assert len(json.loads(data["evidence"])) == 3
    assert g.nodes["kb:Q456"]["label"] == "Lyon" and g.nodes["kb:Q456"]["type"] == "LOC"


def test_neo4j_csvs(triples_file, tmp_path):
    _export(triples_file, "neo4j", tmp_path / "neo")
    with open(tmp_path / "neo" / "nodes.csv", newline="") as fh:
        nodes = list(csv.reader(fh))
    with open(tmp_path / "neo" / "relationships.csv", newline="") as fh:
        rels = list(csv.reader(fh))
    assert nodes[0] == ["id:ID", "name", "kb_id", "iri", "labels:string[]", ":LABEL"]
    assert rels[0] == [":START_ID", ":END_ID", ":TYPE", "relation_id", "relation_label",
                       "confidence:double", "evidence_count:int", "evidence_docs:string[]"]
    assert len(nodes) == 1 + 5 and len(rels) == 1 + 3
    lyon = next(r for r in rels if r[3] == "P17")
    assert lyon[:3] == ["kb:Q456", "kb:Q142", "P17"]
    assert lyon[6] == "3" and lyon[7] == "d1;d2;d3"
    ids = {n[0] for n in nodes[1:]}
    assert {r[0] for r in rels[1:]} | {r[1] for r in rels[1:]} <= ids
    assert [n[5] for n in nodes[1:] if n[0] == "kb:X2"] == ["Entity;PER"]


def test_store_load_and_sparql(triples_file, tmp_path):
    store = tmp_path / "store"
    summary = load_store([triples_file], store, base_iri="https://kg.test/")
    assert summary["edges"] == 3 and summary["quads_in_store"] > 0
    result = query_store(store, f"""
        PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
        PREFIX x: <{XLRE}>
        SELECT ?s ?o ?c WHERE {{ ?st rdf:predicate <{WDT}P17> ; rdf:subject ?s ;
                                    rdf:object ?o ; x:evidenceCount ?c }}""")
    assert result["variables"] == ["s", "o", "c"]
    assert result["rows"] == [[WD + "Q456", WD + "Q142", "3"]]
    assert query_store(store, f"ASK {{ <{WD}Q456> <{WDT}P17> <{WD}Q142> }}") == {"boolean": True}
    with pytest.raises(StoreError, match="does not parse"):
        query_store(store, "SELEKT nothing")
    with pytest.raises(StoreError, match="no store here"):
        query_store(tmp_path / "missing", "ASK {}")


@pytest.mark.parametrize(("line", "reason", "message"), [
    ("", "empty_line", "the line is empty"),
    ("{not json", "invalid_json", "invalid JSON"),
    ('{"relation": "P17"}', "missing_field", "missing field 'subject'"),
    ("[1, 2]", "not_an_object", "the line is not a JSON object"),
])
def test_bad_lines(tmp_path, triples_file, line, reason, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(triples_file.read_text() + line + "\n")
    with pytest.raises(ExportError, match=f"bad.jsonl:7: {message}"):
        list(read_triples([path]))
    report = ReadReport()
    assert len(list(read_triples([path], skip_bad=True, report=report))) == 6
    assert report.skipped == {reason: 1}


def test_cli_export_and_kg(triples_file, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["export", "--triples", str(triples_file), "--format", "ttl",
                              "--out", str(tmp_path / "g.ttl")])
    assert res.exit_code == 0, res.output
    assert len(rdflib.Graph().parse(tmp_path / "g.ttl", format="turtle")) > 0
    res = runner.invoke(app, ["export", "--triples", str(triples_file), "--format", "xml",
                              "--out", str(tmp_path / "g.xml")])
    assert res.exit_code == 2 and "not one of" in res.output
    store = tmp_path / "store"
    res = runner.invoke(app, ["kg", "load", "--triples", str(triples_file), "--store", str(store)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["kg", "query", "--store", str(store), "--json",
                              f"SELECT ?o WHERE {{ <{WD}Q456> <{WDT}P17> ?o }}"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == {"variables": ["o"], "rows": [[WD + "Q142"]]}


def _query_confidences(store):
    result = query_store(store, f"""
        PREFIX rdf: <http://www.w3.org/1999/02/22-rdf-syntax-ns#>
        PREFIX x: <{XLRE}>
        SELECT ?st ?c ?n WHERE {{ ?st rdf:predicate <{WDT}P17> ; x:confidence ?c ;
                                     x:evidenceCount ?n }}""")
    return result["rows"]


def test_a_second_load_into_a_store_is_refused_or_replaces_it(triples_file, tmp_path):
    store = tmp_path / "store"
    load_store([triples_file], store, base_iri="https://kg.test/")
    size = len(query_store(store, "SELECT * WHERE { ?s ?p ?o }")["rows"])
    batch2 = tmp_path / "batch2.jsonl"
    batch2.write_text(json.dumps(_t("Lyon", "Q456", "P17", "France", "Q142", 0.5, "d9", "en")
                                 .to_json()) + "\n", encoding="utf-8")
    with pytest.raises(StoreError, match=r"already holds \d+ triples.*--replace"):
        load_store([batch2], store, base_iri="https://kg.test/")
    assert len(query_store(store, "SELECT * WHERE { ?s ?p ?o }")["rows"]) == size
    # replace with both batches: one confidence, one evidence list, recomputed over all 4
    summary = load_store([triples_file, batch2], store, base_iri="https://kg.test/",
                         replace=True)
    assert summary["quads_replaced"] == size
    (row,) = _query_confidences(store)
    assert float(row[1]) == pytest.approx(1 - 0.4 * 0.5 * 0.2 * 0.5) and row[2] == "4"
    evidence = query_store(store, f"SELECT ?e WHERE {{ <{row[0]}> <{XLRE}evidence> ?e }}")
    assert len(evidence["rows"]) == 4
    res = CliRunner().invoke(app, ["kg", "load", "--triples", str(batch2), "--store", str(store)])
    assert res.exit_code == 2 and "--replace" in res.output
    res = CliRunner().invoke(app, ["kg", "load", "--triples", str(batch2), "--store", str(store),
                                   "--replace", "--base-iri", "https://kg.test/"])
    assert res.exit_code == 0, res.output
    (row,) = _query_confidences(store)
    assert float(row[1]) == pytest.approx(0.5) and row[2] == "1"


def test_a_translation_is_not_independent_evidence(tmp_path):
    """Noisy-or runs over sources: a group (one source pair) or else one sentence."""
    def fact(score, doc, lang, group=None, sentence=None, start=0):
        t = _t("Lyon", "Q456", "P17", "France", "Q142", score, doc, lang)
        ev = t.evidence
        shift = lambda a: Argument(a.text, a.char_start + start, a.char_end + start,  # noqa: E731
                                   a.kb_id, a.label)
        return Triple(shift(t.subject), t.relation, shift(t.object), t.score,
                      Evidence(ev.doc_id, sentence or ev.sentence, ev.lang, ev.model, start,
                               group=group))

    triples = [fact(0.6, "en:1", "en", group="pair-1"), fact(0.7, "zh:1", "zh", group="pair-1"),
               fact(0.5, "en:2", "en", group="pair-2"),
               # one document, two sentences: two sources
               fact(0.2, "d3", "en", sentence="Lyon is in France."),
               fact(0.2, "d3", "en", sentence="Lyon, France, again.", start=19)]
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(t.to_json()) + "\n" for t in triples), encoding="utf-8")
    assert json.loads(path.read_text().splitlines()[0])["group"] == "pair-1"
    export([path], "nt", tmp_path / "g.nt", base_iri="https://kg.test/")
    g = rdflib.Graph().parse(tmp_path / "g.nt", format="nt")
    stmt = next(g.subjects(rdflib.RDF.predicate, rdflib.URIRef(WDT + "P17")))
    # sources: pair-1 at its best 0.7, pair-2 at 0.5, two sentences of d3 at 0.2
    assert float(g.value(stmt, rdflib.URIRef(XLRE + "confidence"))) == pytest.approx(
        1 - 0.3 * 0.5 * 0.8 * 0.8)
    assert int(g.value(stmt, rdflib.URIRef(XLRE + "evidenceCount"))) == 5
    assert int(g.value(stmt, rdflib.URIRef(XLRE + "sourceCount"))) == 4
    groups = {str(o) for o in g.objects(None, rdflib.URIRef(XLRE + "group"))}
    assert groups == {"pair-1", "pair-2"}
