"""Raw text -> triples: documents, the :class:`Extractor`, the spaCy component.

Consumes a model directory written by ``xlre train`` and documents in any language;
produces :class:`xlre.records.Triple` records with offsets and provenance.
The spaCy component lives in :mod:`xlre.extraction.spacy_component` (imported by spaCy
through its entry point, so importing this package does not load it).
"""

from xlre.extraction.documents import (
    INPUT_FORMATS,
    MAX_CHARS,
    UNKNOWN_LANG,
    Document,
    ExtractError,
    InputReport,
    read_documents,
)
from xlre.extraction.extractor import Extractor, split_sentences
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
