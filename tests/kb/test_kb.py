"""KB loading and validation, the alias gazetteer and the entity linker."""

from __future__ import annotations

from pathlib import Path

import pytest

from alignment.tokenize import Tokenizer
from tests.helpers.handkb import write_kb
from xlre.kb import EntityLinker, Gazetteer, KBError, LinkStats, load_kb


@pytest.fixture()
def kb_dir(tmp_path: Path) -> Path:
    return write_kb(tmp_path / "kb")


# ---------------------------------------------------------------- KB validation
@pytest.mark.parametrize(
    ("file", "content", "needle"),
    [
        ("entities.jsonl", '{"id": "Q1", "labels": {}}\n{"id": "Q1", "labels": {}}\n',
         "entities.jsonl:2: duplicate id 'Q1' (first on line 1)"),
        ("entities.jsonl", '{"id": "Q1", "labels": {}}\n{"id": \n', "entities.jsonl:2: invalid JSON"),
        ("triples.tsv", "Q90\tP17\tQ999\n", "triples.tsv:1: unknown tail id 'Q999'"),
        ("triples.tsv", "Q90\tP17\n", "triples.tsv:1: expected 3 tab-separated fields"),
        ("relations.jsonl", '{"labels": {}}\n', 'relations.jsonl:1: missing or empty "id"'),
    ],
)
def test_kb_validation_names_file_and_line(kb_dir: Path, file: str, content: str, needle: str) -> None:
    (kb_dir / file).write_text(content, encoding="utf-8")
    with pytest.raises(KBError) as err:
        load_kb(kb_dir)
    assert needle in str(err.value) and "Fix:" in str(err.value)


def test_kb_loads_and_indexes_facts(kb_dir: Path) -> None:
    kb = load_kb(kb_dir)
    assert kb.relations_between("Q90", "Q142") == ("P17", "P1376")
    assert kb.relations_between("Q142", "Q90") == ()
    assert kb.connected("Q142", "Q90")


# ---------------------------------------------------------------- linking
def link(kb_dir: Path, text: str, linking: str = "rank") -> tuple[list, LinkStats]:
    kb = load_kb(kb_dir)
    linker = EntityLinker(kb, Gazetteer(kb, "en"), linking=linking)
    stats = LinkStats()
    return linker.link(Tokenizer("en")(text), stats), stats


def test_ambiguous_alias_resolved_by_kb_fact(kb_dir: Path) -> None:
    ents, stats = link(kb_dir, "Tbilisi is a city in Georgia.")
    assert [(e.text, e.kb_id) for e in ents] == [("Tbilisi", "Q994"), ("Georgia", "Q230")]
    assert stats.resolved_by_kb == 1


def test_strict_linking_drops_ambiguity_without_evidence(kb_dir: Path) -> None:
    ents, stats = link(kb_dir, "Georgia is lovely in spring.", linking="strict")
    assert ents == [] and stats.dropped["ambiguous"] == 1
    # ranked, the country (one KB fact) wins over the US state (none)
    ents, stats = link(kb_dir, "Georgia is lovely in spring.")
    assert [e.kb_id for e in ents] == ["Q230"] and stats.resolved_by_prior == 1


def test_noisy_aliases_are_guarded(kb_dir: Path) -> None:
    gaz = Gazetteer(load_kb(kb_dir), "en")
    assert gaz.dropped["stop_word"] == 1  # "can"
    ents, _ = link(kb_dir, "You can go to Paris, GA is short, ga is not.")
    assert [(e.text, e.kb_id) for e in ents] == [("Paris", "Q90"), ("GA", "Q1428")]
    ents, _ = link(kb_dir, "paris and Parisian")
    assert ents == [], "a capitalised alias needs a capital in the text; no match inside words"


def test_longest_match_on_token_boundaries(kb_dir: Path) -> None:
    ents, _ = link(kb_dir, "Anna Weber met Anna in Berlin.")
    assert [e.text for e in ents] == ["Anna Weber", "Berlin"]




def test_stop_words_are_empty_only_for_a_language_spacy_lacks(monkeypatch: pytest.MonkeyPatch) -> None:
    from xlre.kb import gazetteer

    assert "the" in gazetteer.stop_words("en")
    assert gazetteer.stop_words("qqq") == frozenset()

    def broken(lang: str) -> None:
        raise RuntimeError("a bug inside spaCy")

    monkeypatch.setattr("spacy.util.get_lang_class", broken)
    gazetteer.stop_words.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="a bug"):
            gazetteer.stop_words("xx")  # no stop-word file: the language class decides
    finally:
        gazetteer.stop_words.cache_clear()


@pytest.mark.parametrize("lang", ["en", "fr", "de", "es", "ru", "zh"])
def test_stop_words_read_from_the_file_are_the_languages_own(lang: str) -> None:
    from spacy.util import get_lang_class

    from xlre.kb import gazetteer

    gazetteer.stop_words.cache_clear()
    try:
        own = frozenset(w.casefold() for w in get_lang_class(lang).Defaults.stop_words)
        assert own and gazetteer.stop_words(lang) == own
    finally:
        gazetteer.stop_words.cache_clear()
