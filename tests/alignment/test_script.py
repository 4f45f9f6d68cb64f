"""The Chinese script fold: one character to one, idempotent, offsets kept."""

from __future__ import annotations

import pytest

from alignment.script import (
    FoldingTokenizer,
    check_policy,
    fold_script,
    fold_table,
    fold_tokenized,
    is_chinese,
    make_tokenizer,
)
from alignment.tokenize import Tokenizer


def test_fold_maps_traditional_to_simplified_keeping_length() -> None:
    assert fold_script("臺灣的頭髮") == "台湾的头发"
    assert fold_script("台湾") == "台湾"
    assert fold_script("Straße, 東京 3") == "Straße, 东京 3"  # only Han characters change
    table = fold_table()
    assert len(table) > 3000
    for code, out in table.items():
        assert len(out) == 1 and out != chr(code)
        assert fold_script(out) == out, "folding twice changes nothing"


def test_fold_tokenized_keeps_offsets() -> None:
    tok = Tokenizer("zh", pretokenized=True)("臺灣 是 島")
    folded = fold_tokenized(tok)
    assert folded.tokens == ("台湾", "是", "岛")
    assert (folded.char_starts, folded.char_ends) == (tok.char_starts, tok.char_ends)


def test_folding_tokenizer_segments_traditional_text_like_simplified() -> None:
    tok = make_tokenizer("zh")
    assert isinstance(tok, FoldingTokenizer)
    trad, simp = tok.pipe(["臺灣是一個島。", "台湾是一个岛。"])
    assert trad.tokens == ("臺灣", "是", "一個", "島", "。")
    assert (trad.char_starts, trad.char_ends) == (simp.char_starts, simp.char_ends)
    assert all(trad.text[s:e] == t for t, s, e in zip(trad.tokens, trad.char_starts, trad.char_ends, strict=True))
    assert not isinstance(make_tokenizer("zh", zh_script="keep"), FoldingTokenizer)
    assert not isinstance(make_tokenizer("en"), FoldingTokenizer)


def test_language_tags_and_policies() -> None:
    assert is_chinese("zh") and is_chinese("zh-Hant") and is_chinese("zh_TW")
    assert not is_chinese("ja") and not is_chinese("en")
    assert check_policy("keep") == "keep"
    with pytest.raises(ValueError, match="fold or keep"):
        check_policy("simplify")
