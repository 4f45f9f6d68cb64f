"""Chinese linking: matches cover whole jieba tokens; traditional and simplified are one."""

from __future__ import annotations

import json

import pytest

from alignment.script import make_tokenizer
from xlre.kb import EntityLinker, Gazetteer, KnowledgeBase, load_kb

ENTITIES = [
    {"id": "Q956", "type": "LOC", "labels": {"en": ["Beijing"], "zh": ["北京"]}},
    {"id": "Q148", "type": "LOC", "labels": {"en": ["China"], "zh": ["中国"]}},
    # one traditional-script alias, one simplified
    {"id": "Q865", "type": "LOC", "labels": {"en": ["Taiwan"], "zh": ["臺灣"]}},
    {"id": "Q1867", "type": "LOC", "labels": {"en": ["Taipei"], "zh": ["台北"]}},
    # aliases under Wikidata's variant tags count for zh
    {"id": "Q8646", "type": "LOC", "labels": {"en": ["Hong Kong"], "zh-hant": ["香港特別行政區"]}},
]


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    path = tmp_path_factory.mktemp("kb")
    (path / "entities.jsonl").write_text(
        "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in ENTITIES), encoding="utf-8")
    (path / "relations.jsonl").write_text('{"id": "P36", "labels": {"en": "capital"}}\n', encoding="utf-8")
    (path / "triples.tsv").write_text("Q148\tP36\tQ956\n", encoding="utf-8")
    return load_kb(path)


def link(kb: KnowledgeBase, text: str, zh_script: str = "fold") -> list[tuple[str, str]]:
    policy = {} if zh_script == "fold" else {"zh_script": zh_script}  # fold: the default
    linker = EntityLinker(kb, Gazetteer(kb, "zh", **policy))
    tok = make_tokenizer("zh", zh_script=zh_script)(text)
    ents = linker.link(tok)
    for e in ents:
        assert e.text == tok.text[e.span.char_start:e.span.char_end], "text is its offsets' slice"
    return [(e.text, e.kb_id) for e in ents]


def test_alias_inside_a_longer_jieba_token_is_no_match(kb: KnowledgeBase) -> None:
    text = "北京市是中国的首都。"  # jieba: 北京市 / 是 / 中国 / 的 / 首都 / 。
    assert make_tokenizer("zh")(text).tokens[0] == "北京市"
    assert link(kb, text) == [("中国", "Q148")], "北京 covers part of the token 北京市 only"
    assert link(kb, "我爱北京。") == [("北京", "Q956")]


def test_every_mention_text_is_its_offsets_slice(kb: KnowledgeBase) -> None:
    gaz = Gazetteer(kb, "zh")
    tok = make_tokenizer("zh")("北京市和北京都在中国。")
    for m in gaz.find(tok):
        assert m.text == tok.text[m.char_start:m.char_end]
        span = tok.span(m.tok_start, m.tok_end)
        assert (span.char_start, span.char_end) == (m.char_start, m.char_end)


def test_traditional_alias_links_in_simplified_text(kb: KnowledgeBase) -> None:
    assert link(kb, "台湾是一个岛。") == [("台湾", "Q865")]


def test_simplified_alias_links_in_traditional_text(kb: KnowledgeBase) -> None:
    assert link(kb, "臺北是臺灣的城市。") == [("臺北", "Q1867"), ("臺灣", "Q865")]


def test_variant_tag_aliases_are_used_for_zh(kb: KnowledgeBase) -> None:
    from xlre.kb import alias_languages

    assert "zh-hant" in alias_languages(kb, "zh")
    assert link(kb, "我在香港特别行政区。") == [("香港特别行政区", "Q8646")]


def test_keep_policy_compares_the_scripts_as_written(kb: KnowledgeBase) -> None:
    from xlre.kb import alias_languages

    assert link(kb, "台湾是一个岛。", zh_script="keep") == []
    assert alias_languages(kb, "zh", "keep") == ["zh"]
    with pytest.raises(ValueError, match="fold or keep"):
        Gazetteer(kb, "zh", zh_script="both")


def test_english_matching_is_unchanged_by_the_fold(kb: KnowledgeBase) -> None:
    linker = EntityLinker(kb, Gazetteer(kb, "en"))
    tok = make_tokenizer("en")("Taipei is in Taiwan, Beijingers live in Beijing.")
    assert [(e.text, e.kb_id) for e in linker.link(tok)] == [
        ("Taipei", "Q1867"), ("Taiwan", "Q865"), ("Beijing", "Q956")]
