from __future__ import annotations

import functools
from typing import Any

import pytest

from alignment.tokenize import Tokenizer, TokenizerError, whitespace_tokens


def check_offsets(tok) -> None:
    for token, start, end in zip(tok.tokens, tok.char_starts, tok.char_ends, strict=True):
        assert tok.text[start:end] == token


def test_english_offsets_and_punctuation() -> None:
    tok = Tokenizer("en")("Marie Curie worked in Paris, France.")
    assert tok.tokens == ("Marie", "Curie", "worked", "in", "Paris", ",", "France", ".")
    check_offsets(tok)
    assert tok.span(4, 5).char_start == 22


def test_french_elision_and_spaces_dropped() -> None:
    tok = Tokenizer("fr")("L'université  de Lyon\u00a0!")
    assert "L'" in tok.tokens and "université" in tok.tokens
    assert all(t.strip() for t in tok.tokens), "whitespace tokens are dropped"
    check_offsets(tok)


def test_chinese_is_segmented_into_words() -> None:
    pytest.importorskip("jieba", reason="Chinese segmentation needs `pip install 'xlre[cjk]'`")
    tok = Tokenizer("zh")("巴黎是法国的首都。")
    assert "巴黎" in tok.tokens and "法国" in tok.tokens
    check_offsets(tok)


def test_japanese_is_segmented_into_words() -> None:
    pytest.importorskip("sudachipy", reason="Japanese segmentation needs `pip install 'xlre[cjk]'`")
    tok = Tokenizer("ja")("東京は日本の首都です。")
    assert "東京" in tok.tokens and "日本" in tok.tokens
    check_offsets(tok)


def test_pretokenized_keeps_tokens() -> None:
    tok = Tokenizer("en", pretokenized=True)("don't  split , this")
    assert tok.tokens == ("don't", "split", ",", "this")
    check_offsets(tok)
    assert whitespace_tokens("") .tokens == ()


def test_pipe_keeps_order() -> None:
    texts = [f"Sentence number {i}." for i in range(2500)]
    got = list(Tokenizer("en").pipe(texts, batch_size=100))
    assert [t.text for t in got] == texts


def test_unknown_language_is_a_clear_error() -> None:
    with pytest.raises(TokenizerError, match=r"unknown language code 'qq'.*--pretokenized"):
        Tokenizer("qq")


# Texts that exercise every way spaCy splits: runs of spaces, tabs, newlines and
# no-break spaces, leading and trailing space, URLs, emoticons, elisions, abbreviations,
# and a chunk seen twice with different neighbours.
TRICKY = [
    "Marie Curie worked in Paris, France.",
    "  leading and trailing  ",
    "a\tb  c\u00a0d \n e\r\nf",
    "U.S.A. isn't e.g. (that's) \"quoted\"... :) :-( 10km $5.00 3rd",
    "see https://example.org/a?b=c or mail x@y.z, ok?",
    "L'homme qu'aujourd'hui l'université  de Lyon\u00a0! jusqu'à",
    "Paris, Paris. (Paris) Paris",
    "los EE. UU. y la U.E. en EE.UU.",
    "",
    " ",
    "\u3000x\u2003y\u2009z",
]


@functools.cache
def _fresh_spacy(lang: str) -> Any:
    import spacy

    return spacy.blank(lang).tokenizer


def _spacy_whole(lang: str, text: str) -> tuple:
    """spaCy's own tokens of the whole text, from a tokenizer fresh from ``spacy.blank``."""
    doc = _fresh_spacy(lang)(text)
    kept = [t for t in doc if not t.is_space]
    return tuple(t.text for t in kept), tuple(t.idx for t in kept), tuple(t.idx + len(t.text) for t in kept)


@pytest.mark.parametrize("lang", ["en", "fr", "es", "ru", "xx"])
def test_chunk_cache_gives_spacys_tokens_token_for_token(lang: str) -> None:
    tok = Tokenizer(lang)
    assert tok._chunks is not None, f"{lang} uses spaCy's rule-based tokenizer, so the cache"
    # Twice: the second pass is served from the cache.
    for _ in range(2):
        for text in TRICKY:
            got = tok(text)
            assert (got.tokens, got.char_starts, got.char_ends) == _spacy_whole(lang, text), text
            check_offsets(got)


def test_a_special_case_spanning_a_space_is_kept() -> None:
    # Spanish has "EE. UU." as one special case across a space: two chunks alone would
    # give other tokens, so a text holding it goes through spaCy whole.
    text = "viajó a EE. UU. ayer"
    assert Tokenizer("es")(text).tokens == _spacy_whole("es", text)[0]
    assert "EE. UU." in Tokenizer("es")._chunks._spanning


def test_chunk_cache_starts_again_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    from alignment.tokenize import ChunkCache

    monkeypatch.setattr(ChunkCache, "MAX_CHUNKS", 3)
    tok = Tokenizer("en")
    texts = [f"word{i} and, more{i}." for i in range(20)]
    for text in texts:
        got = tok(text)
        assert (got.tokens, got.char_starts, got.char_ends) == _spacy_whole("en", text)
    assert len(tok._chunks._cache) <= 3


def test_segmenters_are_not_cached() -> None:
    pytest.importorskip("jieba", reason="Chinese segmentation needs `pip install 'xlre[cjk]'`")
    assert Tokenizer("zh")._chunks is None


def test_a_stored_tokenizer_is_spacys_and_is_built_without_spacy(
        tmp_path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import spacy

    from alignment import tokenizer_cache
    from alignment.tokenize import _spacy_tokenizer

    monkeypatch.setenv("XLRE_CACHE_DIR", str(tmp_path))
    _spacy_tokenizer.cache_clear()
    try:
        Tokenizer("fr"), Tokenizer("es")  # built by spacy.blank, and stored
        stored = sorted(p.name.split("-")[0] for p in tokenizer_cache.cache_dir().iterdir())
        assert stored == ["es", "fr"]
        _spacy_tokenizer.cache_clear()

        def no_blank(*args: object, **kwargs: object) -> None:
            raise AssertionError("the stored tokenizer should be used")

        monkeypatch.setattr(spacy, "blank", no_blank)
        for lang in ("fr", "es"):
            tok = Tokenizer(lang)
            for text in [*TRICKY, "peut-être l'arc-en-ciel d'aujourd'hui", "entr'abat et faux-vampire"]:
                got = tok(text)
                assert (got.tokens, got.char_starts, got.char_ends) == _spacy_whole(lang, text), text
        monkeypatch.undo()
        monkeypatch.setenv("XLRE_CACHE_DIR", str(tmp_path))
        # A damaged store is said and built again.
        _spacy_tokenizer.cache_clear()
        path = next(tokenizer_cache.cache_dir().glob("es-*"))
        path.write_bytes(b"not msgpack")
        with caplog.at_level("WARNING"):
            assert Tokenizer("es")("EE. UU.").tokens == ("EE. UU.",)
        assert "cannot read the stored es tokenizer" in caplog.text
        assert path.stat().st_size > 1000, "stored again"
    finally:
        _spacy_tokenizer.cache_clear()
