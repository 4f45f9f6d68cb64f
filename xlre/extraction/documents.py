"""Extraction input: documents, and reading them from text or JSONL files.

A text file holds one document a line (id ``PATH:LINE``, the path as given, so ids are
unique across files; ``stdin:LINE`` on standard input); a JSONL file one
``{"id", "text", "lang", "group"}`` object a line (``group`` optional: documents that
translate one another share it, and the graph counts them as one piece of evidence). Bad lines stop with ``FILE:LINE`` and the
fix, or with ``skip_bad`` are counted by reason. Languages are BCP 47 tags, normalised to
their base code (:func:`alignment.languages.normalize_lang`: ``zh-Hans``, ``zh_TW``,
``cmn`` -> ``zh``; ``EN``, ``en-US`` -> ``en``); ``und`` and a missing one mean unknown,
and the :class:`~xlre.extraction.Extractor` then detects it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from alignment.errors import CorpusError, UserError
from alignment.languages import LanguageError, normalize_lang
from alignment.textfile import read_lines

UNKNOWN_LANG = "und"  # BCP 47 "undetermined"
#: Longest document accepted, in characters (spaCy's own default limit).
MAX_CHARS = 1_000_000


class ExtractError(UserError, ValueError):
    """Extraction cannot run on this input; the message says why and the fix."""


@dataclass(frozen=True)
class Document:
    """A text to extract from; ``lang`` ``None`` means unknown (the Extractor detects it).

    ``detected`` is true when ``lang`` came from language identification, not the input.
    """

    doc_id: str
    text: str
    lang: str | None = None
    detected: bool = False
    #: Documents sharing a group (a sentence and its translations) count as one piece of
    #: evidence when triples are aggregated (:mod:`xlre.kg.aggregate`).
    group: str | None = None


def document_lang(lang: str | None) -> str | None:
    """``lang`` as a base code (``None`` and ``und`` mean unknown); raises
    :class:`ExtractError` naming a tag that is no language tag, and the fix."""
    if lang is None:
        return None
    try:
        code = normalize_lang(lang)
    except LanguageError as exc:
        raise ExtractError(str(exc)) from None
    return None if code == UNKNOWN_LANG else code


def sentencizer(lang: str) -> Any:
    """A blank spaCy pipeline for ``lang`` (a BCP 47 tag) with the rule-based sentencizer."""
    code = document_lang(lang)
    return _sentencizer(code if code is not None else "xx")


@cache
def _sentencizer(lang: str) -> Any:
    import spacy

    try:
        nlp = spacy.blank(lang)
    except ImportError as exc:
        raise ExtractError(
            f"unknown language code {lang!r}: spaCy has no pipeline for it. Fix: give a "
            "language spaCy knows (en, fr, de, zh, ja, ...) or leave it out to have it detected"
        ) from exc
    nlp.add_pipe("sentencizer")
    nlp.max_length = MAX_CHARS + 1
    return nlp


def split_sentences(text: str, lang: str) -> list[tuple[int, str]]:
    """``(offset, sentence)`` pairs of ``text`` (rule-based, by the language's rules)."""
    doc = sentencizer(lang)(text)
    out = []
    for sent in doc.sents:
        chunk = sent.text
        stripped = chunk.strip()
        if stripped:
            out.append((sent.start_char + chunk.index(stripped), stripped))
    return out


INPUT_FORMATS = ("auto", "text", "jsonl")


@dataclass
class InputReport:
    """What reading the inputs skipped (with ``skip_bad``), by reason."""

    documents: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def as_dict(self) -> dict[str, Any]:
        return {"documents": self.documents, "skipped": dict(sorted(self.skipped.items()))}


def read_documents(
    paths: list[str],
    fmt: str = "auto",
    lang: str | None = None,
    skip_bad: bool = False,
    report: InputReport | None = None,
) -> Iterator[Document]:
    """Documents from text files (one a line) or JSONL (``{"id", "text", "lang"}``).

    ``"-"`` is standard input. ``auto`` reads ``*.jsonl`` files as JSONL and other files
    as text; on standard input, a first line starting with ``{`` means JSONL. Bad lines
    (invalid JSON, a missing or non-string ``text``, an empty line, an unknown language,
    a text over :data:`MAX_CHARS`) raise :class:`ExtractError` naming the file and line,
    or with ``skip_bad`` are counted in ``report``. ``lang`` applies to documents that name
    none (or ``und``); all languages come out as base codes (see the module docstring), and
    documents with none are left ``None`` for the Extractor to detect.
    """
    if fmt not in INPUT_FORMATS:
        raise ExtractError(f"input format {fmt!r} is not one of {', '.join(INPUT_FORMATS)}")
    report = report if report is not None else InputReport()
    lang = document_lang(lang)
    known_langs: dict[str, bool] = {}

    def lang_ok(code: str) -> bool:
        if code not in known_langs:
            try:
                sentencizer(code)
                known_langs[code] = True
            except ExtractError:
                known_langs[code] = False
        return known_langs[code]

    def bad(name: str, line_no: int, reason: str, message: str, fix: str) -> None:
        if not skip_bad:
            raise ExtractError(f"{name}:{line_no}: {message}. Fix: {fix} (or pass --skip-bad)")
        report.skip(reason)

    for path in paths:
        name = "<stdin>" if path == "-" else path
        mode = fmt
        if mode == "auto" and path != "-":
            mode = "jsonl" if path.endswith((".jsonl", ".jsonl.gz")) else "text"
        # The path as given, not its basename: a/docs.txt and b/docs.txt never share ids.
        stem = "stdin" if path == "-" else str(path)
        stream = sys.stdin.buffer if path == "-" else None
        for line_no, line in read_lines(name, skip_hint=False, stream=stream):
            if isinstance(line, CorpusError):
                bad(name, line_no, line.reason, line.problem, line.fix)
                continue
            if mode == "auto":
                mode = "jsonl" if line.lstrip().startswith("{") else "text"
            if not line.strip():
                bad(name, line_no, "empty_line", "the line is empty",
                    "remove empty lines; every line is one document")
                continue
            doc_id, text, doc_lang, group = f"{stem}:{line_no}", line, lang, None
            if mode == "jsonl":
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    bad(name, line_no, "invalid_json", f"invalid JSON ({exc.msg} at column "
                        f"{exc.colno})", 'write one JSON object a line: {"id": ..., '
                        '"text": ...}')
                    continue
                if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                    bad(name, line_no, "missing_text", 'no "text" string field',
                        'give every object a "text" field holding a string')
                    continue
                text = obj["text"]
                if not text.strip():
                    bad(name, line_no, "empty_text", 'the "text" field is empty',
                        "remove documents with no text")
                    continue
                doc_id = str(obj["id"]) if obj.get("id") is not None else doc_id
                if obj.get("group") is not None:
                    if not isinstance(obj["group"], (str, int)) or isinstance(obj["group"], bool):
                        bad(name, line_no, "bad_group", f'"group" is {obj["group"]!r}',
                            'give "group" as a string (or integer) shared by the documents '
                            "that translate one another, or leave it out")
                        continue
                    group = str(obj["group"])
                if obj.get("lang"):
                    try:
                        doc_lang = document_lang(str(obj["lang"])) or lang
                    except ExtractError:
                        bad(name, line_no, "unknown_language",
                            f"unknown language code {obj['lang']!r}", "use a BCP 47 tag "
                            "or ISO 639 code (en, fr, zh, zh-Hans, ...) or leave it out")
                        continue
            if doc_lang is not None and not lang_ok(doc_lang):
                bad(name, line_no, "unknown_language", f"unknown language code {doc_lang!r}",
                    "use a language code spaCy knows (en, fr, de, zh, ...) or leave it "
                    "out to have it detected")
                continue
            if len(text) > MAX_CHARS:
                bad(name, line_no, "too_long", f"{len(text):,} characters is over the "
                    f"limit of {MAX_CHARS:,}", "split the document into several lines")
                continue
            report.documents += 1
            yield Document(doc_id, text, doc_lang, group=group)
