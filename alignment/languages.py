"""Language tags: one normalisation wherever a language is named.

Users, corpora, KBs and language identifiers name languages in many ways: ``zh``,
``zh-Hans``, ``zh-CN``, ``zh_TW``, ``cmn``, ``zho``, ``EN``, ``en-US``, ``fra``. What xlre
keys on (tokenizers, gazetteers, relation names, the languages a model was trained on)
is the base language code that spaCy, jieba and SudachiPy know: :func:`normalize_lang`
gives it. The rule, in order:

1. Case does not matter and ``_`` counts as ``-`` (``zh_TW`` is ``zh-TW``).
2. ``xx`` (spaCy's language-neutral pipeline) and ``und`` (BCP 47 "undetermined") are
   kept as they are.
3. The tag is standardised by langcodes (``standardize_tag(tag, macro=True)``):
   deprecated codes are replaced (``iw`` -> ``he``), three-letter codes become their
   two-letter ones (``fra`` -> ``fr``, ``zho`` -> ``zh``) and individual languages
   their macrolanguage (``cmn`` -> ``zh``, ``arb`` -> ``ar``). The base code is that
   tag's language subtag: region and script subtags are dropped (``zh-Hans``,
   ``zh-CN`` and ``zh-TW`` all give ``zh``; ``en-US`` gives ``en``).
4. Where spaCy names a language differently from that standard, spaCy's code wins:
   ``fil`` -> ``tl``, ``no`` -> ``nb``, and ``kmr`` stays ``kmr`` (not ``ku``).
5. A tag that is not BCP 47, or whose language subtag is not a registered language
   (``nonsense``, ``jp``, ``qq``), raises :class:`LanguageError` naming the tag and the
   fix. A registered code that no tokenizer knows (``haw``) passes here and is refused
   by the tokenizer.

:func:`parse_lang` also keeps the script (written or implied by the region:
``zh-TW`` is ``Hant``) and the standard tag, as information.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TypeVar

from alignment.errors import UserError

V = TypeVar("V")

UNDETERMINED = "und"
#: spaCy's language-neutral ("multi-language") code.
NEUTRAL = "xx"

# Step 4: spaCy's own codes where they differ from the standardised tag's language.
_SPACY_CODES = {"fil": "tl", "no": "nb"}
# Codes spaCy uses verbatim that the macrolanguage step would replace.
_KEEP_AS_IS = frozenset({"kmr"})


class LanguageError(UserError, ValueError):
    """A language tag is not one; the message names the tag and the fix."""


@dataclass(frozen=True)
class LanguageTag:
    """A parsed language tag: the base code xlre keys on, the script, the standard tag."""

    lang: str  # base code: zh, en, fr, ja, ...
    script: str | None  # ISO 15924 script, written or implied (zh-TW: Hant); None if unknown
    tag: str  # the standardised BCP 47 tag (zh-TW, zh-Hans, en-US, zh)


def _error(tag: str) -> LanguageError:
    return LanguageError(
        f"unknown language code {tag!r}: not a registered BCP 47 language tag. Fix: name the language "
        "by an ISO 639 code or BCP 47 tag such as en, fr, de, zh, zh-Hans, ja (or xx for "
        "a language-neutral tokenizer)")


@cache
def parse_lang(tag: str) -> LanguageTag:
    """The :class:`LanguageTag` of ``tag`` (see the module docstring for the rule)."""
    import langcodes

    if not isinstance(tag, str) or not tag.strip():
        raise _error(str(tag))
    text = tag.strip().replace("_", "-")
    primary = text.split("-", 1)[0].lower()
    if primary in (NEUTRAL, UNDETERMINED) and "-" not in text:
        return LanguageTag(primary, None, primary)
    try:
        std = langcodes.standardize_tag(text, macro=primary not in _KEEP_AS_IS)
        parsed = langcodes.Language.get(std)
    except (langcodes.LanguageTagError, ValueError):
        raise _error(tag) from None
    if parsed.language is None and primary == UNDETERMINED:  # und-Latn, ...
        return LanguageTag(UNDETERMINED, parsed.script, std)
    if not parsed.language or not langcodes.Language.make(language=parsed.language).is_valid():
        raise _error(tag)
    lang = _SPACY_CODES.get(parsed.language, parsed.language)
    script = parsed.script
    if script is None:
        try:
            script = parsed.maximize().script
        except (LookupError, ValueError):
            script = None
    return LanguageTag(lang, script, std)


def normalize_lang(tag: str) -> str:
    """The base language code of ``tag``: ``zh-Hans``, ``zh_TW``, ``cmn`` -> ``zh``;
    ``EN``, ``en-US`` -> ``en``. Raises :class:`LanguageError` for a tag that is none."""
    return parse_lang(tag).lang


def by_base_language(mapping: dict[str, V]) -> dict[str, V]:
    """``mapping`` (``{tag: value}``, e.g. a KB's names per language) keyed by base code.

    Keys that are not language tags are dropped. When several keys give one base code,
    the key that is the base code itself wins (``zh``), then one in the language's usual
    script (``zh-hans`` or ``zh-CN``, Hans, over ``zh-hant``), then the first in
    ``mapping``'s order.
    """
    out: dict[str, V] = {}
    rank: dict[str, int] = {}
    for tag, value in mapping.items():
        try:
            parsed = parse_lang(tag)
        except LanguageError:
            continue
        base = parsed.lang
        if tag.strip().lower() == base:
            r = 0
        elif parsed.script is not None and parsed.script == parse_lang(base).script:
            r = 1
        else:
            r = 2
        if base not in rank or r < rank[base]:
            out[base], rank[base] = value, r
    return out
