"""Per-language tokenisation with character offsets.

Tokens come from spaCy's rule-based tokenizer for the language (``spacy.blank``), so
no model download is needed. Chinese is segmented with jieba and Japanese with
SudachiPy, both through spaCy (install ``xlre[cjk]``). The language may be any BCP 47 tag
(``zh-Hans``, ``zh_TW``, ``cmn``, ``EN``): :func:`alignment.languages.normalize_lang` turns
it into the base code the tokenizer is chosen by. Whitespace tokens are dropped:
a token holds a space only where a spaCy special case spans one (Spanish
``EE. UU.``), which eflomal's training line joins up.
With ``pretokenized=True`` the text is split on whitespace and tokens are kept as they
are.

spaCy's rule-based tokenizer (every language but Chinese, Japanese and the few others
with a segmenter of their own) tokenizes each space-separated chunk of a text on its
own, so :class:`ChunkCache` keeps each chunk's tokens and rebuilds a text from them
without making a spaCy ``Doc``: two to three times faster cold, and token for token the same
(the only rules that reach across a space, such as Spanish ``EE. UU.``, send the text
that holds one through spaCy itself).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any

from alignment import tokenizer_cache
from alignment.errors import UserError
from alignment.languages import LanguageError, normalize_lang
from alignment.records import TokenizedText

logger = logging.getLogger(__name__)

# spaCy's default Chinese segmenter splits into characters; jieba gives words.
_SPACY_CONFIG: dict[str, dict[str, Any]] = {
    "zh": {"nlp": {"tokenizer": {"segmenter": "jieba"}}},
}
_EXTRA_PACKAGES = {"zh": "jieba", "ja": "sudachipy and sudachidict_core"}


class TokenizerError(UserError, ValueError):
    """A language has no tokenizer here; the message says what to install or pass."""


@cache
def _spacy_tokenizer(lang: str) -> Any:
    """spaCy's tokenizer for ``lang``: the stored one where this machine has built it
    before (:mod:`alignment.tokenizer_cache`), else built by ``spacy.blank`` and stored."""
    from alignment.spacy_import import import_spacy

    spacy = import_spacy()
    config = _SPACY_CONFIG.get(lang, {})
    stored = tokenizer_cache.load(lang, config)
    if stored is not None:
        return stored
    try:
        nlp = spacy.blank(lang, config=config)
    except ImportError as err:
        if lang in _EXTRA_PACKAGES:
            raise TokenizerError(
                f"tokenizing language {lang!r} needs {_EXTRA_PACKAGES[lang]}: "
                f"install them with `pip install 'xlre[cjk]'` ({err})"
            ) from err
        raise TokenizerError(
            f"unknown language code {lang!r}: spaCy has no tokenizer for it. Fix: use an "
            "ISO 639-1 code spaCy knows (en, fr, de, es, zh, ja, ...), 'xx' for a "
            "language-neutral tokenizer, or --pretokenized for whitespace-tokenized text"
        ) from err
    tokenizer_cache.store(lang, config, nlp.tokenizer)
    return nlp.tokenizer


def whitespace_tokens(text: str) -> TokenizedText:
    """Split ``text`` on whitespace, keeping each token's character offsets."""
    tokens: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    for tok in text.split():
        start = text.index(tok, pos)
        pos = start + len(tok)
        tokens.append(tok)
        starts.append(start)
        ends.append(pos)
    return TokenizedText(text, tuple(tokens), tuple(starts), tuple(ends))


class Tokenizer:
    """Tokenizes text of one language into :class:`TokenizedText` records."""

    def __init__(self, lang: str, pretokenized: bool = False) -> None:
        try:
            #: The base language code (``zh`` for ``zh-Hans``; see alignment.languages).
            self.lang = normalize_lang(lang)
        except LanguageError as err:
            hint = "" if pretokenized else "; or pass --pretokenized for whitespace-tokenized text"
            raise TokenizerError(f"{err}{hint}") from None
        self.pretokenized = pretokenized
        self._spacy = None if pretokenized else _spacy_tokenizer(self.lang)
        self._chunks = ChunkCache.for_tokenizer(self._spacy) if self._spacy is not None else None

    def __call__(self, text: str) -> TokenizedText:
        return next(self.pipe([text]))

    def pipe(self, texts: Iterable[str], batch_size: int = 1000) -> Iterator[TokenizedText]:
        """Tokenize a stream of texts, in order."""
        if self._spacy is None:
            for text in texts:
                yield whitespace_tokens(text)
            return
        if self._chunks is not None:
            for text in texts:
                yield self._chunks.tokenize(text)
            return
        for text, doc in _pair_up(texts, self._spacy, batch_size):
            yield _doc_text(text, doc)


def _doc_tokens(doc: Any) -> tuple[list[str], list[int], list[int]]:
    """A spaCy doc's non-space tokens and their character offsets, each token read once
    (spaCy builds a token object per access). A space token is one whose text is all
    whitespace, spaCy's own ``is_space``, tested on the text: a stored tokenizer's
    vocabulary has no lexical attributes (:mod:`alignment.tokenizer_cache`)."""
    tokens: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for t in doc:
        word = t.text
        if not word.isspace():
            start = t.idx
            tokens.append(word)
            starts.append(start)
            ends.append(start + len(word))
    return tokens, starts, ends


def _doc_text(text: str, doc: Any) -> TokenizedText:
    """The :class:`TokenizedText` of ``text`` from spaCy's ``doc`` of it."""
    tokens, starts, ends = _doc_tokens(doc)
    return TokenizedText(text, tuple(tokens), tuple(starts), tuple(ends))


class ChunkCache:
    """spaCy's rule-based tokenizer applied chunk by chunk, each chunk's tokens cached.

    spaCy splits a text at each ``" "`` and tokenizes every chunk between them alone
    (its ``Tokenizer._tokenize_affixes``); a special case whose string holds a space is
    the one thing that looks across chunks, so a text that contains one of those is
    tokenized by spaCy whole. Holds at most :data:`MAX_CHUNKS` chunks, then starts
    again empty, so memory stays bounded on any corpus.
    """

    MAX_CHUNKS = 200_000

    def __init__(self, spacy_tok: Any, spanning_rules: tuple[str, ...]) -> None:
        self._spacy = spacy_tok
        self._spanning = spanning_rules
        self._cache: dict[str, tuple[tuple[str, int], ...]] = {}

    @classmethod
    def for_tokenizer(cls, spacy_tok: Any) -> ChunkCache | None:
        """A cache for ``spacy_tok`` if it is spaCy's rule-based tokenizer, else ``None``
        (a segmenter such as jieba looks at the whole text)."""
        from spacy.tokenizer import Tokenizer as RuleTokenizer

        if type(spacy_tok) is not RuleTokenizer:
            return None
        spanning = tuple(sorted(
            rule for rule in (spacy_tok.rules or {})
            if any(c.isspace() for c in rule) and not rule.isspace()
        ))
        return cls(spacy_tok, spanning)

    def tokenize(self, text: str) -> TokenizedText:
        """The tokens spaCy gives ``text``, whitespace tokens dropped."""
        if self._spanning and any(rule in text for rule in self._spanning):
            return _doc_text(text, self._spacy(text))
        cache = self._cache
        tokens, starts, ends = [], [], []
        pos = 0
        for chunk in text.split(" "):
            if chunk:
                done = cache.get(chunk)
                if done is None:
                    done = self._tokenize_chunk(chunk)
                for word, offset in done:
                    start = pos + offset
                    tokens.append(word)
                    starts.append(start)
                    ends.append(start + len(word))
            pos += len(chunk) + 1
        return TokenizedText(text, tuple(tokens), tuple(starts), tuple(ends))

    def _tokenize_chunk(self, chunk: str) -> tuple[tuple[str, int], ...]:
        words, starts, _ = _doc_tokens(self._spacy(chunk))
        done = tuple(zip(words, starts, strict=True))
        if len(self._cache) >= self.MAX_CHUNKS:
            self._cache.clear()
        self._cache[chunk] = done
        return done


def _pair_up(texts: Iterable[str], spacy_tok: Any, batch_size: int) -> Iterator[tuple[str, Any]]:
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) >= batch_size:
            yield from zip(batch, spacy_tok.pipe(batch, batch_size=batch_size), strict=True)
            batch = []
    if batch:
        yield from zip(batch, spacy_tok.pipe(batch, batch_size=batch_size), strict=True)
