"""Triple extraction end to end on a tiny model overfit to three hand-made pairs."""

from __future__ import annotations

import json
import os

import pytest
from typer.testing import CliRunner

import xlre.extraction.documents as documents_mod
from tests.helpers.handmade import PAIRS, write_run
from tests.helpers.tiny_models import EN_FR_PAIRS, build_tiny_xlmr
from xlre.cli import app
from xlre.extraction import Document, ExtractError, Extractor, read_documents
from xlre.training import train
from xlre.training.settings import load_settings

SETTINGS = [
    "data.dev_fraction=0.0", "data.test_fraction=0.0", "data.max_seq_length=128",
    "train.learning_rate=1e-2", "train.head_learning_rate=1e-2", "train.batch_size=4",
    "train.warmup_ratio=0.0", "train.early_stopping_patience=0", "train.tracker='none'",
    "train.epochs=60", "model.head_dropout=0.0",
]
EXPECTED = {
    ("Alice Martin", "P19", "Paris"),
    ("Paris", "P17", "France"),
    ("Bob Stone", "P108", "Acme Corp"),
}


def _kb(tmp_path):
    kb = tmp_path / "kb"
    kb.mkdir()
    ents = [("X1", "PER", ["Alice Martin"]), ("Q90", "LOC", ["Paris"]),
            ("Q142", "LOC", ["France"]), ("X2", "PER", ["Bob Stone"]),
            ("X3", "ORG", ["Acme Corp"])]
    (kb / "entities.jsonl").write_text("".join(
        json.dumps({"id": i, "type": t, "labels": {"en": a, "fr": a}}) + "\n" for i, t, a in ents))
    rels = [("P19", "place of birth", "lieu de naissance"), ("P17", "country", "pays"),
            ("P108", "employer", "employeur")]
    (kb / "relations.jsonl").write_text("".join(
        json.dumps({"id": i, "labels": {"en": en, "fr": fr}}) + "\n" for i, en, fr in rels))
    (kb / "triples.tsv").write_text("X1\tP19\tQ90\nQ90\tP17\tQ142\nX2\tP108\tX3\n")
    return kb


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    root = tmp_path_factory.mktemp("extract")
    kb = _kb(root)
    run = write_run(root / "run")
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["config"]["kb"] = str(kb)
    (run / "manifest.json").write_text(json.dumps(manifest))
    texts = [s for _, p, _, _ in PAIRS for s in p] + [s for p in EN_FR_PAIRS for s in p]
    enc = build_tiny_xlmr(root / "enc", corpus=texts)
    return root, run, enc, kb


@pytest.fixture(scope="module")
def model_dir(workdir):
    root, run, enc, _ = workdir
    train(run, str(enc), root / "pooling", load_settings(None, SETTINGS))
    return root / "pooling"


def _texts(triples):
    return {(t.subject.text, t.relation, t.object.text) for t in triples}


def test_extracts_the_trained_facts_with_offsets_and_provenance(model_dir):
    ex = Extractor.from_pretrained(model_dir)
    docs = [Document("en-doc", " ".join(p[1][0] for p in PAIRS), "en"),
            Document("fr-doc", " ".join(p[1][1] for p in PAIRS), "fr")]
    triples = list(ex.extract(docs))
    for doc in docs:
        mine = [t for t in triples if t.evidence.doc_id == doc.doc_id]
        for t in mine:
            for arg in (t.subject, t.object):
                assert doc.text[arg.char_start:arg.char_end] == arg.text
            assert t.evidence.lang == doc.lang and t.evidence.model == str(model_dir)
            start = t.evidence.sentence_start
            assert doc.text[start:start + len(t.evidence.sentence)] == t.evidence.sentence
            assert 0.5 <= t.score <= 1.0
        assert len({t.evidence.sentence for t in mine}) == 3  # three sentences were split
    assert _texts(t for t in triples if t.evidence.lang == "en") == EXPECTED
    fr = _texts(t for t in triples if t.evidence.lang == "fr")
    assert fr == {("Alice Martin", "P19", "Paris"), ("Paris", "P17", "France"),
                  ("Bob Stone", "P108", "Acme Corp")}
    # Relation names come from the training KB, in the text's language.
    labels = {(t.relation, t.evidence.lang): t.relation_label for t in triples}
    assert labels[("P19", "en")] == "place of birth"
    assert labels[("P19", "fr")] == "lieu de naissance"


def test_threshold_and_na_are_respected(model_dir):
    strict = Extractor.from_pretrained(model_dir, threshold=0.999999)
    loose = Extractor.from_pretrained(model_dir)
    text = PAIRS[0][1][0]
    assert len(list(strict.extract([text], lang="en"))) < len(list(loose.extract([text], lang="en")))
    # The reverse pair (Paris -> Alice Martin) is NA: no triple for it.
    assert all(t.subject.text != "Paris" for t in loose.extract([text], lang="en"))
    with pytest.raises(ExtractError, match="threshold"):
        Extractor.from_pretrained(model_dir, threshold=1.5)


def test_kb_linking_attaches_ids(model_dir, workdir):
    ex = Extractor.from_pretrained(model_dir, kb=workdir[3])
    triples = list(ex.extract([PAIRS[2][1][0]], lang="en"))
    assert {(t.subject.kb_id, t.relation, t.object.kb_id) for t in triples} == {
        ("X2", "P108", "X3")}
    # Without a language it is detected (en), and linking works the same.
    assert {(t.subject.kb_id, t.relation, t.object.kb_id, t.evidence.lang)
            for t in ex.extract([PAIRS[2][1][0]])} == {("X2", "P108", "X3", "en")}
    blind = Extractor.from_pretrained(model_dir, kb=workdir[3], detect_language=False)
    with pytest.raises(ExtractError, match="needs the text's language"):
        list(blind.extract([PAIRS[2][1][0]]))


def test_long_sentence_is_windowed_not_cut(model_dir):
    ex = Extractor.from_pretrained(model_dir)
    filler = " ".join(["and"] * 200)
    text = f"Alice Martin was born in Paris {filler} ."
    triples = list(ex.extract([text], lang="en"))
    assert ("Alice Martin", "P19", "Paris") in _texts(triples)


def test_markers_model_extracts_the_same_facts(workdir):
    root, run, enc, _ = workdir
    train(run, str(enc), root / "markers",
          load_settings(None, [*SETTINGS, "data.relation_repr='markers'"]))
    ex = Extractor.from_pretrained(root / "markers")
    docs = [Document(f"d{i}", p[1][0], "en") for i, p in enumerate(PAIRS)]
    assert _texts(ex.extract(docs)) == EXPECTED


def test_punct_model_extracts_the_same_facts(workdir):
    root, run, _, _ = workdir
    texts = [s for _, p, _, _ in PAIRS for s in p] + [s for p in EN_FR_PAIRS for s in p]
    # The punct markers must be subwords of the tokenizer, as they are in XLM-R's.
    enc = build_tiny_xlmr(root / "enc-punct", corpus=texts + ["@ Alice Martin @ # Paris # ."] * 5)
    train(run, str(enc), root / "punct",
          load_settings(None, [*SETTINGS, "data.relation_repr='punct'"]))
    ex = Extractor.from_pretrained(root / "punct")
    docs = [Document(f"d{i}", p[1][0], "en") for i, p in enumerate(PAIRS)]
    assert _texts(ex.extract(docs)) == EXPECTED


def test_spacy_component(model_dir):
    import spacy

    import xlre.extraction.spacy_component  # noqa: F401  (the entry point does this when installed)

    nlp = spacy.blank("en")
    nlp.add_pipe("xlre_relations", config={"model": str(model_dir)})
    doc = nlp(PAIRS[0][1][0])
    assert _texts(doc._.xlre_triples) == {("Alice Martin", "P19", "Paris")}
    assert [(s.text, s.label_) for s in doc.spans["xlre_entities"]] == [
        ("Alice Martin", "PER"), ("Paris", "LOC")]
    docs = list(nlp.pipe([PAIRS[2][1][0], PAIRS[1][1][0]]))
    assert _texts(docs[0]._.xlre_triples) == {("Bob Stone", "P108", "Acme Corp")}
    assert _texts(docs[1]._.xlre_triples) == {("Paris", "P17", "France")}
    with pytest.raises(ValueError, match="needs a model directory"):
        spacy.blank("en").add_pipe("xlre_relations")


# --------------------------------------------------------------------------- CLI + input
def test_cli_text_jsonl_stdin_and_out(model_dir, tmp_path):
    runner = CliRunner()
    txt = tmp_path / "docs.txt"
    txt.write_text(PAIRS[0][1][0] + "\n" + PAIRS[2][1][0] + "\n")
    res = runner.invoke(app, ["extract", "--model", str(model_dir), "--lang", "en", str(txt)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.splitlines() if x.startswith("{\"subject")]
    assert {(x["subject"]["text"], x["relation"], x["object"]["text"]) for x in lines} == {
        ("Alice Martin", "P19", "Paris"), ("Bob Stone", "P108", "Acme Corp")}
    assert {x["doc_id"] for x in lines} == {f"{txt}:1", f"{txt}:2"}  # the path as given
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text(json.dumps({"id": "a", "text": PAIRS[1][1][1], "lang": "fr"}) + "\n")
    out = tmp_path / "triples.jsonl"
    res = runner.invoke(app, ["extract", "--model", str(model_dir), str(jsonl), "--out", str(out)])
    assert res.exit_code == 0, res.output
    got = [json.loads(x) for x in out.read_text().splitlines()]
    assert [(x["doc_id"], x["lang"], x["relation"]) for x in got] == [("a", "fr", "P17")]
    res = runner.invoke(app, ["extract", "--model", str(model_dir)],
                        input=json.dumps({"id": "s", "text": PAIRS[2][1][0], "lang": "en"}) + "\n")
    assert res.exit_code == 0, res.output
    assert '"doc_id": "s"' in res.stdout
    # a source pair's two sides share a group, which their triples carry to the graph
    jsonl.write_text("".join(json.dumps({"id": f"p1:{lang}", "text": PAIRS[1][1][k], "lang": lang,
                                         "group": "p1"}) + "\n"
                             for k, lang in enumerate(("en", "fr"))))
    res = runner.invoke(app, ["extract", "--model", str(model_dir), str(jsonl), "--out", str(out)])
    assert res.exit_code == 0, res.output
    got = [json.loads(x) for x in out.read_text().splitlines()]
    assert sorted((x["doc_id"], x["group"]) for x in got) == [("p1:en", "p1"), ("p1:fr", "p1")]


@pytest.mark.parametrize(("content", "reason", "message"), [
    ('{"id": 1, "text": "ok"}\n{"id": 2, "text": \n', "invalid_json", "docs.jsonl:2: invalid JSON"),
    ('{"id": 1, "body": "no text"}\n', "missing_text", 'docs.jsonl:1: no "text"'),
    ('{"id": 1, "text": "ok"}\n\n', "empty_line", "docs.jsonl:2: the line is empty"),
    ('{"id": 1, "text": "ok", "lang": "qqq"}\n', "unknown_language",
     "docs.jsonl:1: unknown language code 'qqq'"),
    ('{"id": 1, "text": "' + "x" * 50 + '"}\n', "too_long", "docs.jsonl:1: 50 characters"),
    ('{"id": 1, "text": "ok", "group": [1]}\n', "bad_group", 'docs.jsonl:1: "group" is [1]'),
])
def test_bad_input_is_named_or_counted(model_dir, tmp_path, monkeypatch, content, reason,
                                       message):
    monkeypatch.setattr(documents_mod, "MAX_CHARS", 40)
    path = tmp_path / "docs.jsonl"
    path.write_text(content)
    with pytest.raises(ExtractError) as err:
        list(read_documents([str(path)]))
    assert message in str(err.value).replace(str(tmp_path) + "/", "")
    report = documents_mod.InputReport()
    list(read_documents([str(path)], skip_bad=True, report=report))
    assert report.skipped == {reason: 1}
    res = CliRunner().invoke(app, ["extract", "--model", str(model_dir), str(path)])
    assert res.exit_code == 2 and message in res.output.replace(str(tmp_path) + "/", "")


def test_bad_text_file_and_model(model_dir, tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("caf\xe9\n".encode("latin-1"))
    with pytest.raises(ExtractError, match=r"latin1\.txt:1: invalid UTF-8 at byte 3"):
        list(read_documents([str(path)]))
    report = documents_mod.InputReport()
    assert list(read_documents([str(path)], skip_bad=True, report=report)) == []
    assert report.skipped == {"invalid_utf8": 1}
    with pytest.raises(ExtractError, match=r"no config\.json"):
        Extractor.from_pretrained(tmp_path)
    with pytest.raises(ExtractError, match="unknown language code"):
        list(Extractor.from_pretrained(model_dir).extract(["text"], lang="qqq"))


def test_an_entity_is_never_paired_with_itself(model_dir, workdir):
    from xlre.extraction.extractor import same_argument
    from xlre.records import Argument

    paris, paris2 = Argument("Paris", 0, 5, "Q90", "LOC"), Argument("paris", 9, 14, None, "LOC")
    assert same_argument(paris, paris2) and same_argument(paris, Argument("Lutèce", 0, 6, "Q90", "LOC"))
    assert not same_argument(paris, Argument("France", 0, 6, "Q142", "LOC"))
    ex = Extractor.from_pretrained(model_dir, kb=workdir[3], threshold=1e-9)  # every pair scores
    text = "Paris is the capital of France and Paris is in France."
    triples = list(ex.extract([text], lang="en"))
    assert triples, "the near-zero threshold lets every other pair through"
    assert all(t.subject.kb_id != t.object.kb_id and t.subject.text != t.object.text for t in triples)


@pytest.mark.parametrize("route", ["int8", "onnx-int8"])
def test_optimized_routes_give_the_fp32_triples_within_a_score_tolerance(model_dir, route):
    """--optimize ROUTE: the same triples as fp32, except where a score lies within TOL
    of the threshold (int8 rounding may move it across); every shared triple's score
    moves by at most TOL."""
    if route == "onnx-int8":
        pytest.importorskip("onnxruntime")
    tol = 0.05
    docs = [Document("en-doc", " ".join(p[1][0] for p in PAIRS), "en"),
            Document("fr-doc", " ".join(p[1][1] for p in PAIRS), "fr")]

    def run(optimize):
        ex = Extractor.from_pretrained(model_dir, device="cpu", optimize=optimize)
        return ex, {(t.evidence.doc_id, t.subject.text, t.relation, t.object.text): t.score
                    for t in ex.extract(docs)}

    ex32, fp32 = run(None)
    ex8, int8 = run(route)
    from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear

    from xlre.modeling.optimize import OnnxEncoder

    if route == "int8":
        assert any(isinstance(m, DynamicInt8Linear) for m in ex8.model.modules())
    else:
        assert isinstance(ex8.model.encoder, OnnxEncoder)
    assert not any(isinstance(m, DynamicInt8Linear | OnnxEncoder) for m in ex32.model.modules())
    assert fp32, "the fp32 model must extract something for the comparison to mean anything"
    threshold = ex32.threshold
    for key in fp32.keys() ^ int8.keys():
        score = fp32.get(key, int8.get(key))
        assert abs(score - threshold) <= tol, (key, score)
    for key in fp32.keys() & int8.keys():
        assert abs(fp32[key] - int8[key]) <= tol, (key, fp32[key], int8[key])


def test_onnx_route_caches_its_export_until_the_weights_change(model_dir, tmp_path, monkeypatch):
    pytest.importorskip("onnxruntime")
    import shutil

    from xlre.modeling import optimize

    monkeypatch.setattr(optimize, "int8_products_saturate", lambda: False)  # the full-range file
    model = tmp_path / "model"
    shutil.copytree(model_dir, model)
    first = Extractor.from_pretrained(model, device="cpu", optimize="onnx-int8").model.encoder
    made = (model / "onnx" / "encoder-int8.onnx").stat().st_mtime_ns
    second = Extractor.from_pretrained(model, device="cpu", optimize="onnx-int8").model.encoder
    assert first.path == second.path == model / "onnx" / "encoder-int8.onnx"
    assert (model / "onnx" / "encoder-int8.onnx").stat().st_mtime_ns == made  # reused
    weights = model / "model.safetensors"
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    Extractor.from_pretrained(model, device="cpu", optimize="onnx-int8")
    assert (model / "onnx" / "encoder-int8.onnx").stat().st_mtime_ns != made  # made again


def test_onnx_route_makes_its_export_again_when_the_recipe_changes(model_dir, tmp_path, monkeypatch):
    """A cache written by another quantisation recipe (an older xlre's, per tensor) is not
    reused; the file made by today's recipe holds per-channel weight scales."""
    pytest.importorskip("onnxruntime")
    import json
    import shutil

    import onnx

    from xlre.modeling import optimize

    model = tmp_path / "model"
    shutil.copytree(model_dir, model)
    monkeypatch.setattr(optimize, "int8_products_saturate", lambda: False)  # the full-range file
    saved = optimize.ONNX_INT8_RECIPE
    monkeypatch.setattr(optimize, "ONNX_INT8_RECIPE", {})  # ONNX Runtime's defaults
    Extractor.from_pretrained(model, device="cpu", optimize="onnx-int8")
    target = model / "onnx" / "encoder-int8.onnx"
    made = target.stat().st_mtime_ns
    assert json.loads((model / "onnx" / "encoder-int8.json").read_text())["recipe"] == {}
    monkeypatch.setattr(optimize, "ONNX_INT8_RECIPE", saved)
    Extractor.from_pretrained(model, device="cpu", optimize="onnx-int8")
    assert target.stat().st_mtime_ns != made  # made again
    graph = onnx.load(str(target)).graph
    scales = [t for t in graph.initializer if t.name.endswith("_scale")
              and any(n.op_type == "MatMulInteger" and t.name.replace("_scale", "_quantized") in n.input
                      for n in graph.node)]
    assert scales and all(len(t.dims) == 1 and t.dims[0] > 1 for t in scales), \
        "per-channel: one scale per output column of every quantised weight"
    assert not any(n.op_type == "Gather" and n.input[0].endswith("_quantized") for n in graph.node), \
        "the embedding tables stay in fp32"


def test_optimize_refuses_an_unknown_route_and_a_gpu(model_dir):
    from alignment.errors import UserError

    with pytest.raises(UserError, match="unknown optimisation 'fp8'; choose onnx-int8 or int8"):
        Extractor.from_pretrained(model_dir, device="cpu", optimize="fp8")
    with pytest.raises(ExtractError, match="runs on CPU, not cuda"):
        Extractor.from_pretrained(model_dir, device="cuda", optimize="int8")
