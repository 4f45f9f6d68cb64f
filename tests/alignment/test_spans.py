"""tokens_from_spans rebuilds the tokens spans_text wrote, and refuses offsets that do not fit."""

from __future__ import annotations

import pytest

from alignment.spans import spans_text, tokens_from_spans
from alignment.tokenize import Tokenizer


def test_round_trip_of_real_tokens() -> None:
    fr = Tokenizer("fr")
    for text in ["L'été dernier, j'ai vu le musée d'Orsay\u00a0!", "Peut-être   demain.", "x"]:
        tok = fr(text)
        assert tokens_from_spans(text, spans_text(tok)) == tok
    assert tokens_from_spans("", "").tokens == ()


@pytest.mark.parametrize(("spans", "message"), [
    ("0-3 x-5", "is not a list of start-end token offsets"),
    ("0-3 4", "has an unpaired offset"),
    ("0-3 3-3", "token 3-3 is empty"),
    ("0-3 2-5", "token 2-5 is empty, overlaps the one before"),
    ("0-3 4-12", "token 4-12 is empty, overlaps the one before, or ends past the text's 9 characters"),
    ("5-7 0-3", "token 0-3 is empty, overlaps"),
])
def test_offsets_that_do_not_fit_are_named(spans: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tokens_from_spans("the cats.", spans)
