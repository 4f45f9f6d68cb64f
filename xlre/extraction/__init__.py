"""Raw text -> triples: documents, the :class:`Extractor`, the spaCy component.

Consumes a model directory written by ``xlre train`` and documents in any language;
produces :class:`xlre.records.Triple` records with offsets and provenance.
The spaCy component lives in :mod:`xlre.extraction.spacy_component` (imported by spaCy
through its entry point, so importing this package does not load it).

``Extractor`` and ``split_sentences`` are imported on first use: spaCy loads every
``spacy_factories`` entry point whenever it makes a pipeline, so a package that imported
torch and transformers here would add seconds to every ``spacy.blank`` (each
tokenizer of ``xlre align`` and ``xlre annotate``).
"""

from typing import Any

from xlre.extraction.documents import (
    INPUT_FORMATS,
    MAX_CHARS,
    UNKNOWN_LANG,
    Document,
    ExtractError,
    InputReport,
    read_documents,
)
from xlre.extraction.langid import LanguageReport, detect_language

__all__ = [
    "INPUT_FORMATS",
    "MAX_CHARS",
    "UNKNOWN_LANG",
    "Document",
    "ExtractError",
    "Extractor",
    "InputReport",
    "LanguageReport",
    "detect_language",
    "read_documents",
    "split_sentences",
]


def __getattr__(name: str) -> Any:
    if name in ("Extractor", "split_sentences"):
        from xlre.extraction import extractor

        return getattr(extractor, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
