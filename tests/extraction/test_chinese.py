"""Chinese end to end on a tiny model overfit to three hand-made EN/ZH pairs: language tags,
language detection, and relation names stored in the model (the KB deleted after training).
"""

from __future__ import annotations

import json
import logging
import shutil

import pytest
from typer.testing import CliRunner

from alignment.tokenize import Tokenizer
from tests.helpers.handmade import record
from tests.helpers.tiny_models import build_tiny_xlmr
from xlre.cli import app
from xlre.extraction import Document, ExtractError, Extractor, read_documents
from xlre.training import train
from xlre.training.settings import load_settings

SETTINGS = [
    "data.dev_fraction=0.0", "data.test_fraction=0.0", "data.max_seq_length=64",
    "train.learning_rate=1e-2", "train.head_learning_rate=1e-2", "train.batch_size=2",
    "train.warmup_ratio=0.0", "train.early_stopping_patience=0", "train.tracker='none'",
    "train.epochs=40", "model.head_dropout=0.0",
]
# (pair id, English, Chinese (written by hand), entities [(en surface, zh surface, kb id,
#  type)], the relation between the first and the second entity)
ZH_PAIRS = (
    ("zh-1", "Alice Martin was born in Paris .", "爱丽丝·马丁出生于巴黎。",
     [("Alice Martin", "爱丽丝·马丁", "X1", "PER"), ("Paris", "巴黎", "Q90", "LOC")], "P19"),
    ("zh-2", "Paris is a city in France .", "巴黎是法国的一座城市。",
     [("Paris", "巴黎", "Q90", "LOC"), ("France", "法国", "Q142", "LOC")], "P17"),
    ("zh-3", "Bob Stone works for Acme Corp .", "鲍勃·斯通在艾克米公司工作。",
     [("Bob Stone", "鲍勃·斯通", "X2", "PER"), ("Acme Corp", "艾克米公司", "X3", "ORG")], "P108"),
)
EXPECTED_ZH = {("爱丽丝·马丁", "P19", "巴黎"), ("巴黎", "P17", "法国"),
               ("鲍勃·斯通", "P108", "艾克米公司")}
NAMES = {"P19": ("place of birth", "出生地"), "P17": ("country", "国家"),
         "P108": ("employer", "雇主")}


def _zh_record(pair_id: str, line_no: int, text: str, ents, rel: str) -> dict:
    """A run record of Chinese ``text`` (no spaces), words from the zh tokenizer (jieba)."""
    tok = Tokenizer("zh")(text)
    rec = record(pair_id, line_no, "tgt", "zh", " ".join(tok.tokens), [], [])
    rec.update(text=text, tokens=list(tok.tokens), token_starts=list(tok.char_starts),
               token_ends=list(tok.char_ends))
    for _, surface, kb_id, typ in ents:
        start = text.index(surface)
        rec["entities"].append({
            "char_start": start, "char_end": start + len(surface), "text": surface,
            "tok_start": tok.char_starts.index(start),
            "tok_end": tok.char_ends.index(start + len(surface)) + 1,
            "kb_id": kb_id, "label": typ, "source": "projected"})
    rec["relations"] = [
        {"head": h, "tail": t, "relation": r, "source": "projected",
         "bag": f"{ents[h][2]}|{ents[t][2]}"} for h, t, r in ((0, 1, rel), (1, 0, "NA"))]
    return rec


def write_zh_run(run_dir, kb_dir) -> list[str]:
    """The run of :data:`ZH_PAIRS` (EN side distant, ZH side projected); returns its
    sentences, words space-separated, for the tokenizer of the tiny encoder."""
    (run_dir / "shards").mkdir(parents=True)
    lines = []
    for n, (pid, en, zh, ents, rel) in enumerate(ZH_PAIRS, start=1):
        words = en.split(" ")
        en_ents = []
        for surface, _, kb_id, typ in ents:
            first = words.index(surface.split(" ")[0])
            en_ents.append(((first, first + len(surface.split(" "))), kb_id, typ))
        lines.append(record(pid, n, "src", "en", en, en_ents, [(0, 1, rel), (1, 0, "NA")]))
        lines.append(_zh_record(pid, n, zh, ents, rel))
    (run_dir / "shards" / "shard-00000.jsonl").write_text(
        "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines), encoding="utf-8")
    (run_dir / "manifest.json").write_text(json.dumps({"config": {"kb": str(kb_dir)}}))
    return [" ".join(x["tokens"]) for x in lines]


def write_kb(kb):
    kb.mkdir()
    ents = {("X1", "PER"): ("Alice Martin", "爱丽丝·马丁"), ("Q90", "LOC"): ("Paris", "巴黎"),
            ("Q142", "LOC"): ("France", "法国"), ("X2", "PER"): ("Bob Stone", "鲍勃·斯通"),
            ("X3", "ORG"): ("Acme Corp", "艾克米公司")}
    (kb / "entities.jsonl").write_text("".join(
        json.dumps({"id": i, "type": t, "labels": {"en": [en], "zh": [zh]}}, ensure_ascii=False)
        + "\n" for (i, t), (en, zh) in ents.items()), encoding="utf-8")
    # One relation names Chinese under a script-tagged key, as Wikidata does.
    (kb / "relations.jsonl").write_text("".join(
        json.dumps({"id": r, "labels": {"en": en, "zh-hans" if r == "P108" else "zh": zh}},
                   ensure_ascii=False) + "\n" for r, (en, zh) in NAMES.items()),
        encoding="utf-8")
    (kb / "triples.tsv").write_text("X1\tP19\tQ90\nQ90\tP17\tQ142\nX2\tP108\tX3\n")


@pytest.fixture(scope="module")
def zh_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("zh")
    kb = root / "kb"
    write_kb(kb)
    corpus = write_zh_run(root / "run", kb)
    enc = build_tiny_xlmr(root / "enc", corpus=corpus * 3, vocab_size=200)
    train(root / "run", str(enc), root / "model", load_settings(None, SETTINGS))
    shutil.rmtree(kb)  # the model must name its relations without the KB
    return root / "model"


def _texts(triples):
    return {(t.subject.text, t.relation, t.object.text) for t in triples}


ZH_DOC = "".join(p[2] for p in ZH_PAIRS)


def test_model_records_training_languages_and_names(zh_model):
    ex = Extractor.from_pretrained(zh_model)
    assert ex.config.languages == ["en", "zh"]
    assert ex.config.relation_names["P108"] == {"en": "employer", "zh": "雇主"}


@pytest.mark.parametrize("tag", ["zh", "zh-Hans", "zh-CN", "zh_TW", "cmn"])
def test_relation_label_in_chinese_without_the_kb(zh_model, tag):
    triples = list(Extractor.from_pretrained(zh_model).extract([ZH_DOC], lang=tag))
    assert _texts(triples) == EXPECTED_ZH
    assert {t.evidence.lang for t in triples} == {"zh"}
    assert {t.relation: t.relation_label for t in triples} == {
        r: zh for r, (_, zh) in NAMES.items()}


def test_extraction_without_a_language_finds_what_zh_finds(zh_model):
    ex = Extractor.from_pretrained(zh_model)
    given = [(t.subject.text, t.relation, t.object.text, t.relation_label, t.evidence.lang,
              t.subject.char_start) for t in ex.extract([ZH_DOC], lang="zh")]
    detected = [(t.subject.text, t.relation, t.object.text, t.relation_label, t.evidence.lang,
                 t.subject.char_start) for t in ex.extract([ZH_DOC])]
    assert detected == given and len(given) == 3
    assert ex.languages.report.given == {"zh": 1}
    assert ex.languages.report.detected == {"zh": 1}
    # English without a language: detected too, names in English.
    en = list(ex.extract([ZH_PAIRS[0][1]]))
    assert [(t.relation, t.relation_label, t.evidence.lang) for t in en] == [
        ("P19", "place of birth", "en")]


def test_unseen_language_is_warned_once_and_counted(zh_model, caplog):
    ex = Extractor.from_pretrained(zh_model)
    with caplog.at_level(logging.WARNING, logger="xlre.extraction.langid"):
        list(ex.extract([Document("fr1", "Alice Martin est née à Paris.", "fr"),
                         Document("fr2", "Paris est une ville de France.", "fr-FR")]))
    warnings = [r.getMessage() for r in caplog.records if "not trained on" in r.getMessage()]
    assert len(warnings) == 1 and "'fr'" in warnings[0] and "en, zh" in warnings[0]
    assert ex.languages.report.not_trained_on == {"fr": 2}


def test_cli_detects_reports_and_normalises(zh_model, tmp_path):
    runner = CliRunner()
    txt = tmp_path / "zh.txt"
    txt.write_text(ZH_DOC + "\n" + ZH_PAIRS[1][1] + "\n", encoding="utf-8")

    def run(*extra):
        out = tmp_path / "out.jsonl"
        res = runner.invoke(app, ["extract", "--model", str(zh_model), str(txt), "--out",
                                  str(out), *extra])
        assert res.exit_code == 0, res.output
        triples = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
        return triples, res.stderr

    detected, stderr = run()
    summary = json.JSONDecoder().raw_decode(stderr[stderr.rindex('{\n  "triples"'):])[0]
    assert {(x["relation"], x["relation_label"], x["lang"]) for x in detected
            if x["doc_id"] == f"{txt}:1"} == {("P19", "出生地", "zh"), ("P17", "国家", "zh"),
                                             ("P108", "雇主", "zh")}
    assert summary["languages"] == {"given": {}, "detected": {"en": 1, "zh": 1},
                                    "detector": "py3langid", "trained_on": ["en", "zh"],
                                    "not_trained_on": {}}
    given, _ = run("--lang", "zh-Hans")
    assert [x for x in given if x["doc_id"] == f"{txt}:1"] == [
        x for x in detected if x["doc_id"] == f"{txt}:1"]
    # JSONL lang tags are normalised too.
    jsonl = tmp_path / "docs.jsonl"
    jsonl.write_text(json.dumps({"id": "a", "text": ZH_DOC, "lang": "zh_TW"}) + "\n")
    assert [d.lang for d in read_documents([str(jsonl)])] == ["zh"]
    bad = runner.invoke(app, ["extract", "--model", str(zh_model), "--lang", "nonsense",
                              str(txt)])
    assert bad.exit_code == 2
    assert "unknown language code 'nonsense'" in bad.output and "Fix:" in bad.output


def test_bad_language_tags_are_named(zh_model):
    ex = Extractor.from_pretrained(zh_model)
    with pytest.raises(ExtractError, match=r"unknown language code 'nonsense'.*Fix: "):
        list(ex.extract(["巴黎"], lang="nonsense"))
    with pytest.raises(ExtractError, match=r"document d: unknown language code 'jp'"):
        list(ex.extract([Document("d", "巴黎", "jp")]))
