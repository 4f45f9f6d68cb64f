"""Chinese annotation runs: script policy in the config, folded anchors, exact texts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alignment.script import make_tokenizer
from xlre.annotate import AnnotateConfig, Projector, RunError, annotate, iter_records
from xlre.annotate.rundir import check_resume
from xlre.kb import KnowledgeBase, load_kb
from xlre.records import Entity

ENTITIES = [
    {"id": "Q865", "type": "LOC", "labels": {"en": ["Taiwan"], "zh": ["台湾"]}},
    {"id": "Q1867", "type": "LOC", "labels": {"en": ["Taipei"], "zh": ["台北"]}},
    {"id": "Q956", "type": "LOC", "labels": {"en": ["Beijing"], "zh": ["北京"]}},
]


def write_kb(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "entities.jsonl").write_text(
        "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in ENTITIES), encoding="utf-8")
    (path / "relations.jsonl").write_text('{"id": "P131", "labels": {"en": "located in"}}\n',
                                          encoding="utf-8")
    (path / "triples.tsv").write_text("Q1867\tP131\tQ865\n", encoding="utf-8")
    return path


@pytest.fixture()
def kb(tmp_path: Path) -> KnowledgeBase:
    return load_kb(write_kb(tmp_path / "kb"))


def test_alias_anchor_in_the_other_script(kb: KnowledgeBase) -> None:
    en, zh = make_tokenizer("en"), make_tokenizer("zh")
    src, tgt = en("Taiwan is an island ."), zh("臺灣是一個島。")
    ent = Entity(src.span(0, 1), "LOC", "Q865", "kb", "Taiwan")
    [proj] = Projector("zh", kb).project([ent], src, tgt, set())  # no word links at all
    assert proj.outcome == "anchor" and tgt.text[proj.span.char_start:proj.span.char_end] == "臺灣"
    [kept] = Projector("zh", kb, zh_script="keep").project([ent], src, tgt, set())
    assert kept.outcome == "unaligned"


def test_identical_name_anchor_in_the_other_script() -> None:
    zh = make_tokenizer("zh")
    src, tgt = zh("台北很大。"), zh("臺北是城市。")
    ent = Entity(src.span(0, 1), "LOC", None, "gold", "台北")
    [proj] = Projector("zh", src_lang="zh").project([ent], src, tgt, set())
    assert proj.outcome == "anchor" and (proj.span.char_start, proj.span.char_end) == (0, 2)


def run_config(tmp_path: Path, **kw: object) -> AnnotateConfig:
    corpus = tmp_path / "corpus.tsv"
    lines = ["臺北在臺灣。\tTaipei is in Taiwan .", "北京市很大。\tBeijing city is big .",
             "我愛北京。\tI love Beijing .", "臺灣很美。\tTaiwan is beautiful ."] * 5
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return AnnotateConfig(corpus=str(corpus), src_lang="zh", tgt_lang="en",
                          kb=str(write_kb(tmp_path / "kb")), out=str(tmp_path / "run"), **kw)  # type: ignore[arg-type]


def test_run_links_traditional_text_and_records_the_policy(tmp_path: Path) -> None:
    annotate(run_config(tmp_path))
    assert json.loads((tmp_path / "run" / "config.json").read_text(encoding="utf-8"))["zh_script"] == "fold"
    recs = list(iter_records(tmp_path / "run"))
    for rec in recs:
        for e in rec["entities"]:
            assert e["text"] == rec["text"][e["char_start"]:e["char_end"]]
    zh = {r["text"]: r for r in recs if r["lang"] == "zh"}
    first = zh["臺北在臺灣。"]
    assert [(e["text"], e["kb_id"]) for e in first["entities"]] == [("臺北", "Q1867"), ("臺灣", "Q865")]
    assert [r["relation"] for r in first["relations"] if r["relation"] != "NA"] == ["P131"]
    assert zh["北京市很大。"]["entities"] == [], "北京 inside the token 北京市 is no match"
    assert [e["text"] for e in zh["我愛北京。"]["entities"]] == ["北京"]


def test_zh_script_is_validated_and_old_runs_resume(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="--zh-script"):
        run_config(tmp_path, zh_script="simplify").validate()
    cfg = run_config(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    old = json.loads(json.dumps(cfg.__dict__))
    del old["zh_script"]  # a config.json written before the field existed
    (run / "config.json").write_text(json.dumps(old), encoding="utf-8")
    check_resume(run, cfg, resume=True)  # a missing field counts as its default
    with pytest.raises(RunError, match="zh_script"):
        check_resume(run, run_config(tmp_path, zh_script="keep"), resume=True)


def test_link_only_spans_checked_against_the_target_names(tmp_path: Path) -> None:
    ents = [*ENTITIES, {"id": "Q30", "type": "LOC", "labels": {"en": ["U.S."], "zh": ["美国"]}},
            {"id": "Q145", "type": "LOC", "labels": {"en": ["British"], "zh-hant": ["英國"]}}]
    path = tmp_path / "kb2"
    path.mkdir()
    (path / "entities.jsonl").write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in ents),
                                         encoding="utf-8")
    (path / "relations.jsonl").write_text('{"id": "P131", "labels": {"en": "located in"}}\n', encoding="utf-8")
    (path / "triples.tsv").write_text("", encoding="utf-8")
    kb2 = load_kb(path)
    en, zh = make_tokenizer("en"), make_tokenizer("zh")
    src = en("U.S. would pick British rules")
    tgt = zh("美国会选择蛊惑规则")
    us = Entity(src.span(0, 1), "LOC", "Q30", "kb", "U.S.")
    gb = Entity(src.span(3, 4), "LOC", "Q145", "kb", "British")
    tok = {t: k for k, t in enumerate(tgt.tokens)}
    assert "美国会" in tok and "蛊惑" in tok  # jieba's tokens: the name is inside one
    links = {(0, tok["美国会"]), (3, tok["蛊惑"])}
    p_us, p_gb = Projector("zh", kb2).project([us, gb], src, tgt, links)
    # U.S. narrowed to its name inside the token; British (英國, folded 英国) shares no
    # character with 蛊惑: dropped.
    assert p_us.outcome == "narrowed" and tgt.text[p_us.span.char_start:p_us.span.char_end] == "美国"
    assert p_gb.outcome == "alias_mismatch" and p_gb.span is None
    # Without a KB, or with a French target, the spans stay as the links put them.
    plain = Projector("zh").project([us, gb], src, tgt, links)
    assert [p.outcome for p in plain] == ["projected", "projected"]
    # A span written like the source mention is kept whatever the names say.
    src2, tgt2 = en("British rules"), zh("British 规则")
    gb2 = Entity(src2.span(0, 1), "LOC", "Q145", "kb", "British")
    [p] = Projector("zh", kb2, use_identical=False).project([gb2], src2, tgt2, {(0, 0)})
    assert p.outcome == "projected"
