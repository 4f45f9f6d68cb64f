from __future__ import annotations

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
