"""Language tags are normalised wherever a language enters: BCP 47 -> the base code."""

from __future__ import annotations

import pytest

from alignment.languages import (
    LanguageError,
    by_base_language,
    normalize_lang,
    parse_lang,
)
from alignment.tokenize import Tokenizer, TokenizerError


@pytest.mark.parametrize(("tag", "base"), [
    ("zh", "zh"), ("zh-Hans", "zh"), ("zh-CN", "zh"), ("zh_TW", "zh"), ("cmn", "zh"),
    ("zho", "zh"), ("ZH-hant-tw", "zh"), ("en-US", "en"), ("EN", "en"), ("eng", "en"),
    ("fra", "fr"), ("fr_CA", "fr"), ("iw", "he"), ("pt_BR", "pt"), ("ja", "ja"),
    # spaCy's own codes win where they differ from the standard tag.
    ("fil", "tl"), ("tl", "tl"), ("no", "nb"), ("kmr", "kmr"),
    ("xx", "xx"), ("und", "und"), ("und-Latn", "und"),
])
def test_normalize_lang(tag, base):
    assert normalize_lang(tag) == base


def test_script_and_standard_tag_are_kept_as_information():
    assert parse_lang("zh-Hans").script == "Hans"
    assert parse_lang("zh_TW").script == "Hant" and parse_lang("zh_TW").tag == "zh-TW"
    assert parse_lang("cmn").tag == "zh"


@pytest.mark.parametrize("tag", ["nonsense", "jp", "qq", "", "x", "en-", "123", "English"])
def test_a_tag_that_is_none_is_a_one_line_error_naming_it_and_the_fix(tag):
    with pytest.raises(LanguageError) as err:
        normalize_lang(tag)
    message = str(err.value)
    assert f"unknown language code {tag!r}" in message and "Fix:" in message
    assert "\n" not in message


def test_tokenizer_takes_any_tag():
    tok = Tokenizer("zh-Hans")
    assert tok.lang == "zh"
    assert "巴黎" in tok("巴黎是法国的首都。").tokens
    assert Tokenizer("EN").lang == "en" and Tokenizer("zh_TW").lang == "zh"
    assert Tokenizer("cmn")("巴黎是法国的首都。").tokens == tok("巴黎是法国的首都。").tokens
    with pytest.raises(TokenizerError, match=r"unknown language code 'nonsense'.*Fix:"):
        Tokenizer("nonsense")


def test_by_base_language_prefers_the_base_key_then_the_usual_script():
    assert by_base_language({"zh-hant": "國籍", "zh": "国籍", "en-GB": "nationality"}) == {
        "zh": "国籍", "en": "nationality"}
    assert by_base_language({"zh-hant": "國籍", "zh-hans": "国籍"}) == {"zh": "国籍"}
    assert by_base_language({"zh-tw": "國籍", "bogus!": "x"}) == {"zh": "國籍"}


def test_marked_sources_and_annotation_configs_normalise(tmp_path):
    from xlre.annotate import AnnotateConfig
    from xlre.data.gold import GoldError, MarkedSource

    f = tmp_path / "m.txt"
    f.write_text("x\n")
    assert MarkedSource.parse(f"train:zh-Hans:{f}") == MarkedSource(f, "zh", "train")
    assert MarkedSource.parse(f"EN:{f}").lang == "en"
    with pytest.raises(GoldError, match="unknown language code 'nonsense'"):
        MarkedSource.parse(f"dev:nonsense:{f}")
    config = AnnotateConfig(corpus="c", src_lang="en-US", tgt_lang="zh_CN", kb="kb", out="o")
    config.validate()
    assert (config.src_lang, config.tgt_lang) == ("en", "zh")
    with pytest.raises(ValueError, match="unknown language code 'nonsense'"):
        AnnotateConfig(corpus="c", src_lang="en", tgt_lang="nonsense", kb="kb",
                       out="o").validate()
