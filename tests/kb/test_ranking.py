"""The linker's ranking (a prior decides, a margin refuses, the sentence overrides the
prior) and its guards (common words, demonyms), on a hand-made KB."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alignment.tokenize import Tokenizer
from xlre.kb import EntityLinker, Gazetteer, KBError, LinkStats, load_kb
from xlre.kb.casing import CaseStats, count_casing

ENTITIES = [
    {"id": "Q84", "labels": {"en": ["London"]}, "popularity": 400},
    {"id": "Q92561", "labels": {"en": ["London"]}, "popularity": 40},  # London, Ontario
    {"id": "Q1904", "labels": {"en": ["Ontario"]}, "popularity": 90},
    {"id": "Q145", "labels": {"en": ["United Kingdom"]}, "popularity": 300},
    {"id": "Q1", "labels": {"en": ["Springfield"]}, "popularity": 30},
    {"id": "Q2", "labels": {"en": ["Springfield"]}, "popularity": 20},
    {"id": "Q212", "labels": {"en": ["Ukraine"]}},
    {"id": "Q8798", "labels": {"en": ["Ukrainian"]}},  # the language
    {"id": "Q7165850", "labels": {"en": ["People"]}},  # a TV series
    {"id": "Q148", "labels": {"en": ["People's Republic of China"]}},
    {"id": "Q865", "labels": {"en": ["Republic of China"]}},
    {"id": "Q7737", "labels": {"en": ["Russian"]}},  # the language
    {"id": "Q49542", "labels": {"en": ["Russian"]}},  # the people
    {"id": "Q159", "labels": {"en": ["Russia"]}},
]
TRIPLES = [("Q92561", "P131", "Q1904"), ("Q84", "P17", "Q145"), ("Q212", "P37", "Q8798"),
           ("Q159", "P37", "Q7737"), ("Q159", "P2936", "Q8798"),
           # the wrong way round, as real KBs have it: Ukraine stays no language
           ("Q8798", "P37", "Q212")]


@pytest.fixture()
def kb(tmp_path: Path):
    d = tmp_path / "kb"
    d.mkdir()
    (d / "entities.jsonl").write_text("".join(json.dumps(e) + "\n" for e in ENTITIES), encoding="utf-8")
    rels = [{"id": r, "labels": {"en": r}} for r in ("P131", "P17", "P37", "P2936")]
    (d / "relations.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rels), encoding="utf-8")
    (d / "triples.tsv").write_text("".join("\t".join(t) + "\n" for t in TRIPLES), encoding="utf-8")
    return load_kb(d)


def link(kb, text: str, **kw) -> tuple[list[tuple[str, str]], LinkStats]:
    stats = LinkStats()
    ents = EntityLinker(kb, Gazetteer(kb, "en"), **kw).link(Tokenizer("en")(text), stats)
    return [(e.text, e.kb_id) for e in ents], stats


def test_the_prior_decides(kb) -> None:
    ents, stats = link(kb, "She moved to London last year.")
    assert ents == [("London", "Q84")]
    assert stats.resolved_by_prior == 1 and stats.dropped["ambiguous"] == 0


def test_a_margin_refuses_a_close_call(kb) -> None:
    ents, stats = link(kb, "He grew up in Springfield.")  # 30 against 20: not twice
    assert ents == [] and stats.dropped["ambiguous"] == 1
    ents, _ = link(kb, "He grew up in Springfield.", margin=1.2)
    assert ents == [("Springfield", "Q1")]


def test_the_sentence_overrides_the_prior(kb) -> None:
    ents, stats = link(kb, "London is a city in Ontario.")
    assert ents == [("London", "Q92561"), ("Ontario", "Q1904")]
    assert stats.resolved_by_kb == 1 and stats.resolved_by_prior == 0


def test_strict_linking_keeps_the_old_rule(kb) -> None:
    ents, stats = link(kb, "She moved to London last year.", linking="strict")
    assert ents == [] and stats.dropped["ambiguous"] == 1


def test_a_language_used_as_an_adjective_is_no_mention_of_it(kb) -> None:
    ents, stats = link(kb, "Ukrainian forces entered the town.")
    assert ents == [] and stats.dropped["demonym"] == 1
    ents, _ = link(kb, "Many people in Ukraine speak Ukrainian.")
    assert ents == [("Ukraine", "Q212"), ("Ukrainian", "Q8798")]
    ents, _ = link(kb, "Ukrainian is spoken in Ukraine.")
    assert ents == [("Ukrainian", "Q8798"), ("Ukraine", "Q212")]
    # a second, non-language candidate does not let the adjective through
    ents, stats = link(kb, "A Russian fighter jet was shot down.")
    assert ents == [] and stats.dropped["demonym"] == 1
    ents, stats = link(kb, "Two Russian-built jets.")
    assert ents == [] and stats.dropped["demonym"] == 1


@pytest.mark.parametrize("text", [
    "Russian and Ukrainian officials met in Russia.",  # coordinated adjectives
    "Russian, Ukrainian and South African troops left Russia.",
    "The Russian side said Russia would respond.",  # a noun in spaCy's stop list
])
def test_coordinated_demonyms_are_no_languages(kb, text: str) -> None:
    ents, stats = link(kb, text)
    assert [e[1] for e in ents] == ["Q159"], ents
    assert stats.dropped["demonym"] >= 1


def test_after_an_article_a_name_loses_its_language_candidates(kb) -> None:
    # "Russian" has the language and the people: "the Russian" is the people
    ents, stats = link(kb, "The Russian, who lives in Russia, spoke.")
    assert ents == [("Russian", "Q49542"), ("Russia", "Q159")] and stats.dropped["demonym"] == 0
    # "Ukrainian" has only the language: dropped
    ents, stats = link(kb, "The Ukrainian, who lives in Ukraine, spoke.")
    assert ents == [("Ukraine", "Q212")] and stats.dropped["demonym"] == 1
    # without the article the language stays a candidate
    ents, _ = link(kb, "Russian, which is spoken in Russia, is hard.")
    assert ents[0] == ("Russian", "Q7737")


@pytest.mark.parametrize("text", [
    "He met two Ukrainian in Ukraine.", "Some 300 Ukrainian were in Ukraine.",
    "Overseas Ukrainian and many Ukrainian were in Ukraine.",
])
def test_after_a_numeral_or_quantifier_a_name_is_a_people(kb, text: str) -> None:
    ents, stats = link(kb, text)
    assert [e[1] for e in ents] == ["Q212"], ents
    assert stats.dropped["demonym"] >= 1


@pytest.mark.parametrize("text", [
    "He studied South Ukrainian in Ukraine.",  # the end of a longer name the KB lacks
    "They watched Muay Ukrainian, a sport of Ukraine.",
])
def test_a_language_name_ending_a_longer_name_is_dropped(kb, text: str) -> None:
    ents, stats = link(kb, text)
    assert [e[1] for e in ents] == ["Q212"], ents
    assert stats.dropped["demonym"] == 1


@pytest.mark.parametrize("text", [
    "Ukrainian is spoken in Ukraine.",  # the sentence's first word
    "Since 1991 Ukrainian is spoken in Ukraine.",  # a year, not a count
    "In Ukraine: Ukrainian is spoken.", "Ukraine | Ukrainian is spoken.",
])
def test_a_language_name_after_a_year_or_a_sentence_start_stays(kb, text: str) -> None:
    ents, stats = link(kb, text)
    assert "Q8798" in [e[1] for e in ents], ents
    assert stats.dropped["demonym"] == 0


@pytest.mark.parametrize("text,ids", [
    ("Russian and Ukrainian are spoken in Ukraine.", ["Q7737", "Q8798", "Q212"]),
    ("In Ukraine, people speak Ukrainian, Russian and others.", ["Q212", "Q8798", "Q7737"]),
    ("Ukrainian, Russian.", ["Q8798", "Q7737"]),
])
def test_coordinated_languages_stay_languages(kb, text: str, ids: list[str]) -> None:
    ents, stats = link(kb, text)
    assert [e[1] for e in ents] == ids, ents
    assert stats.dropped["demonym"] == 0


def test_a_language_is_the_value_of_language_facts_more_often_than_their_subject(kb) -> None:
    assert kb.is_language("Q8798") and kb.is_language("Q7737")
    assert not kb.is_language("Q212")  # one fact each way
    assert not kb.is_language("Q159")
    ents, stats = link(kb, "The Ukraine government met.")  # no demonym guard for Ukraine
    assert ents == [("Ukraine", "Q212")] and stats.dropped["demonym"] == 0


def test_a_curly_apostrophe_is_an_apostrophe(kb) -> None:
    for text in ("the founding of the People’s Republic of China.",
                 "the founding of the People's Republic of China."):
        ents, _ = link(kb, text)
        assert [e[1] for e in ents] == ["Q148"], text
        assert ents[0][0] == text[text.index("People"):-1]


def test_a_common_word_is_not_linked_when_the_corpus_writes_it_lowercase(kb) -> None:
    gaz = Gazetteer(kb, "en")
    assert {"people", "london", "ukrainian"} <= gaz.single_words
    corpus = ["Many people came.", "The people voted.", "People Found Dead In London",
              "We met in London today.", "It rained in London."]
    casing = count_casing(corpus, gaz.single_words)
    assert casing.lower["people"] == 2 and casing.capitalised["people"] == 0  # headline not counted
    assert casing.capitalised["london"] == 2 and casing.is_common("People")
    assert not casing.is_common("London")
    ents, stats = link(kb, "People said it was cold in London.", casing=casing)
    assert ents == [("London", "Q84")] and stats.dropped["common_word"] == 1
    ents, _ = link(kb, "People said it was cold in London.")  # no counts: no guard
    assert ("People", "Q7165850") in ents


def test_casing_counts_round_trip_and_bad_files_are_refused(tmp_path: Path) -> None:
    stats = count_casing(["the people", "a people", "in People today"], frozenset({"people"}))
    path = tmp_path / "casing.tsv"
    stats.write(path)
    again = CaseStats.read(path)
    assert again.lower == stats.lower and again.capitalised == stats.capitalised
    path.write_text("people\t2\n", encoding="utf-8")
    with pytest.raises(Exception, match=r"casing.tsv:1"):
        CaseStats.read(path)


def test_popularity_must_be_a_count(tmp_path: Path, kb) -> None:
    d = Path(kb.path)
    (d / "entities.jsonl").write_text('{"id": "Q1", "labels": {}, "popularity": "many"}\n', encoding="utf-8")
    with pytest.raises(KBError, match=r"entities.jsonl:1.*popularity"):
        load_kb(d)


def test_initials_in_capitals_survive_the_stop_word_guard_unless_the_text_shouts(tmp_path: Path) -> None:
    """``US`` and ``WHO`` are stop words casefolded, but each spells the initials of
    another name of its entity, so the gazetteer keeps them (matched only as written);
    ``AND`` (Andorra) spells no other name and is dropped. Next to another word in
    capitals the text shouts, and the mention is dropped as ``capitals``."""
    d = tmp_path / "kb"
    d.mkdir()
    ents = [{"id": "Q30", "labels": {"en": ["United States", "US"]}},
            {"id": "Q7817", "labels": {"en": ["World Health Organization", "WHO"]}},
            {"id": "Q228", "labels": {"en": ["Andorra", "AND"]}}]
    (d / "entities.jsonl").write_text("".join(json.dumps(e) + "\n" for e in ents), encoding="utf-8")
    (d / "relations.jsonl").write_text('{"id": "P17", "labels": {"en": "country"}}\n', encoding="utf-8")
    (d / "triples.tsv").write_text("", encoding="utf-8")
    small = load_kb(d)
    gaz = Gazetteer(small, "en")
    assert gaz.dropped["stop_word"] == 1  # AND
    ents_found, _ = link(small, "US officials and the WHO met in Andorra AND nowhere else.")
    assert ents_found == [("US", "Q30"), ("WHO", "Q7817"), ("Andorra", "Q228")]
    assert link(small, "They told us who came.")[0] == []
    found, stats = link(small, "I CAN SEE THE US FROM HERE, said the US envoy.")
    assert found == [("US", "Q30")] and stats.dropped["capitals"] == 1
    assert Gazetteer(small, "en", case="ignore").dropped["stop_word"] == 3  # us, who and and
