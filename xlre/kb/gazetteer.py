"""The alias gazetteer: every KB label of one language, matched in tokenized text.

Matching. Every alias of the sentence's language is put into one Aho-Corasick
automaton (pyahocorasick, C), keyed by its casefolded form. Overlapping matches are
resolved longest first, then leftmost.

Token boundaries, in every language. A match counts only where it starts at the start
of a token and ends at the end of a token, also for languages written without spaces
(zh, ja, th), whose tokens come from a word segmenter (jieba, SudachiPy): an alias
inside a longer token is no match. So ``北京`` does not match inside the jieba token
``北京市`` (the KB's ``北京市`` alias does), nor ``英国`` inside ``英国队`` ("the
England team"), nor ``Co`` inside ``Corden``: measured on 4,000 sentences of the
EN-ZH news corpus with kb-wikidata-v2, such partial matches were 913 of 4,701 and
nearly all wrong, and widening them to whole tokens would link ``英国队`` to the UK.
Every :class:`Mention` therefore covers whole tokens, and its ``text`` is always
``sentence[char_start:char_end]``.

Chinese scripts (``zh_script="fold"``, the default, for a Chinese ``lang``): keys,
and the text matched against them, are folded from traditional to simplified
characters (:func:`alignment.script.fold_script`, one character to one, so offsets are
those of the original text), and the aliases of every Chinese KB language tag (``zh``,
``zh-hans``, ``zh-hant``, ``zh-cn``, ``zh-tw``, ...) are used: ``臺灣`` links in ``台湾``
and ``台湾`` in ``臺灣``. ``zh_script="keep"`` matches the scripts as written and uses
the aliases of ``lang`` alone.

Case policy (``case="smart"``, the default): aliases of at most 3 characters and
all-uppercase aliases (``CA``, ``UK``) match only exactly; other aliases match case-
insensitively, except that an alias starting with an uppercase letter needs an
uppercase letter in the text too (``Globe`` does not match ``globe``). ``case="exact"``
matches every alias exactly, ``case="ignore"`` ignores case altogether.

Guards against noisy aliases, each counted in :attr:`Gazetteer.dropped`:
aliases shorter than ``min_chars``; aliases that are stop words of the language
(``can``, ``the``), except, where case counts, one in capitals that spells the
initials of another of the entity's names (``US`` of United States, ``WHO`` of World
Health Organization: :func:`is_initials`), which matches only as written;
single-word all-lowercase aliases in cased scripts (``globe``), which name common nouns
far more often than entities; aliases with no letter (``⊕``, ``1``).
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import ahocorasick

from alignment.errors import SettingError
from alignment.records import TokenizedText
from alignment.script import check_policy, fold_script, is_chinese
from xlre.kb.knowledge_base import KnowledgeBase

logger = logging.getLogger(__name__)

UNSEGMENTED_SCRIPTS = frozenset({"zh", "ja", "th"})
CASE_POLICIES = ("smart", "exact", "ignore")


@cache
def stop_words(lang: str) -> frozenset[str]:
    """spaCy's stop-word list for ``lang``; empty, and logged, when spaCy has no such
    language. Any other failure is a bug and propagates: it must not switch the guard
    off silently.

    The list is read from the file ``spacy/lang/LANG/stop_words.py``, whose
    ``STOP_WORDS`` each language's ``Defaults.stop_words`` is, without importing the
    language package: importing French compiles its tokenizer's exception regex, about
    5 s. Without that file, the language's Defaults (or their absence) decide."""
    import importlib.util

    from alignment.spacy_import import import_spacy

    import_spacy()
    import spacy.lang
    from spacy.util import get_lang_class

    path = Path(spacy.lang.__file__).parent / lang / "stop_words.py"
    spec = importlib.util.spec_from_file_location(f"_xlre_spacy_stop_words_{lang}", path) if path.is_file() else None
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return frozenset(w.casefold() for w in module.STOP_WORDS)
    try:
        lang_class = get_lang_class(lang)
    except ImportError:  # spaCy's E048: no spacy.lang module for this code
        logger.info("spaCy has no language %r: no stop-word guard for its aliases", lang)
        return frozenset()
    return frozenset(w.casefold() for w in lang_class.Defaults.stop_words)


@dataclass(frozen=True, slots=True)
class Mention:
    """A gazetteer match: token and character span, surface text, candidate KB ids."""

    tok_start: int
    tok_end: int
    char_start: int
    char_end: int
    text: str
    candidates: tuple[str, ...]


def _alias_rule(alias: str, case: str) -> str:
    if case == "ignore":
        return "ignore"
    if case == "exact" or len(alias) <= 3 or (alias.isupper() and any(c.isalpha() for c in alias)):
        return "exact"
    return "cap" if alias[0].isupper() else "ignore"


def _accepts(rule: str, alias: str, surface: str) -> bool:
    if rule == "exact":
        return surface == alias
    if rule == "cap":
        return surface[0].isupper()
    return True


#: Typographic apostrophes read as the ASCII one, in aliases and text alike (one
#: character to one): "People’s Republic of China" is the alias "People's Republic of
#: China", not "Republic of China" after a curly apostrophe.
_QUOTES = str.maketrans("’‘ʼ＇", "''''")


def _fold_quotes(text: str) -> str:
    return text.translate(_QUOTES)


def _fold_script_and_quotes(text: str) -> str:
    return fold_script(text).translate(_QUOTES)


def alias_languages(kb: KnowledgeBase, lang: str, zh_script: str = "fold") -> list[str]:
    """The KB language tags whose aliases a gazetteer for ``lang`` uses: ``lang``, and
    with ``zh_script="fold"`` for a Chinese ``lang`` every Chinese tag of the KB."""
    if zh_script == "fold" and is_chinese(lang):
        return [lang, *sorted(t for t in kb.languages() if t != lang and is_chinese(t))]
    return [lang]


def fold_for(lang: str, zh_script: str) -> Callable[[str], str]:
    """The fold a gazetteer for ``lang`` applies to keys and matched text: apostrophes,
    and Chinese scripts under ``zh_script="fold"``; one character to one."""
    return _fold_script_and_quotes if zh_script == "fold" and is_chinese(lang) else _fold_quotes


#: One key's entries: (entity id, ((folded alias, rule), ...)) in KB order.
KeyEntries = tuple[tuple[str, tuple[tuple[str, str], ...]], ...]


@dataclass
class AliasTable:
    """The aliases a gazetteer matches, by key, after the guards (module docstring)."""

    entries: dict[str, KeyEntries]
    dropped: Counter[str]
    n_aliases: int
    single_words: frozenset[str]


def check_case(case: str) -> str:
    """``case`` when it is one of :data:`CASE_POLICIES`, else a :class:`SettingError`."""
    if case not in CASE_POLICIES:
        raise SettingError(f"unknown case policy {case!r}; choose one of {', '.join(CASE_POLICIES)}")
    return case


_WORD_BREAKS = re.compile(r"[\s\-]+")


def is_initials(alias: str, names: Iterable[str]) -> bool:
    """``alias`` is written in capitals (two letters or more) and spells the initials of
    one of ``names``: of all its words, or of its capitalised ones (``US``: United States;
    ``WHO``: World Health Organization; ``UP``: Universiteit van Pretoria)."""
    if len(alias) < 2 or not alias.isalpha() or not alias.isupper():
        return False
    want = alias.casefold()
    for name in names:
        words = [w for w in _WORD_BREAKS.split(name) if w[:1].isalpha()]
        if len(words) < 2:
            continue
        if "".join(w[0] for w in words).casefold() == want \
                or "".join(w[0] for w in words if w[0].isupper()).casefold() == want:
            return True
    return False


def alias_table(kb: KnowledgeBase, lang: str, min_chars: int = 2, case: str = "smart",
                zh_script: str = "fold") -> AliasTable:
    """The keys, entries and dropped counts of a gazetteer for ``lang`` over ``kb``: the
    one rule the in-memory :class:`Gazetteer` and the on-disk index
    (:mod:`xlre.kb.index`) both match by."""
    check_case(case)
    check_policy(zh_script)
    fold = fold_for(lang, zh_script)
    dropped: Counter[str] = Counter()
    n_aliases = 0
    stops = stop_words(lang)
    entries: dict[str, dict[str, list[tuple[str, str]]]] = {}
    seen: set[tuple[str, str]] = set()
    pairs = ((a, e, tag) for tag in alias_languages(kb, lang, zh_script) for a, e in kb.aliases(tag))
    for alias, ent_id, tag in pairs:
        if (alias, ent_id) in seen:  # the same alias under zh and zh-hans
            continue
        seen.add((alias, ent_id))
        key = fold(alias.casefold())
        reason = None
        if len(alias) < min_chars:
            reason = "too_short"
        elif not any(c.isalpha() for c in alias):
            reason = "no_letter"
        elif key in stops and not (case != "ignore" and is_initials(alias, kb.entities[ent_id].labels.get(tag, ()))):
            reason = "stop_word"
        elif (
            case != "exact" and lang not in UNSEGMENTED_SCRIPTS and alias.islower()
            and len(alias.split()) == 1
        ):
            reason = "lowercase_word"
        if reason:
            dropped[reason] += 1
            continue
        n_aliases += 1
        # forms are compared with the surface script-folded (_accepts), so fold them too
        entries.setdefault(key, {}).setdefault(ent_id, []).append((fold(alias), _alias_rule(alias, case)))
    # Keys that are one word of letters, in a cased script: the words whose casing in the
    # corpus tells a name from a common word (:mod:`xlre.kb.casing`).
    single_words = frozenset(
        k for k in entries if lang not in UNSEGMENTED_SCRIPTS and k.isalpha() and k != k.upper()
    )
    table = {key: tuple((eid, tuple(forms)) for eid, forms in by_entity.items())
             for key, by_entity in entries.items()}
    return AliasTable(table, dropped, n_aliases, single_words)


def fold_text(text: str, fold: Callable[[str], str]) -> str:
    """``text`` casefolded and folded, of the same length as ``text`` (offsets into it are
    offsets into ``text``): where casefolding changes lengths (ß -> ss), lowercased, or
    else as written."""
    folded = text.casefold()
    if len(folded) != len(text):
        folded = text.lower() if len(text.lower()) == len(text) else text
    return fold(folded)


def accepted(entries: KeyEntries, compared: str) -> tuple[str, ...]:
    """The entity ids of ``entries`` one of whose forms accepts the folded surface."""
    return tuple(eid for eid, forms in entries
                 if any(_accepts(rule, alias, compared) for alias, rule in forms))


def longest_first(found: list[Mention]) -> list[Mention]:
    """Non-overlapping matches, longest first then leftmost, in text order."""
    found.sort(key=lambda m: (-(m.char_end - m.char_start), m.char_start))
    taken: list[Mention] = []
    used: set[int] = set()
    for m in found:
        chars = set(range(m.char_start, m.char_end))
        if chars & used:
            continue
        used |= chars
        taken.append(m)
    taken.sort(key=lambda m: m.char_start)
    return taken


class Gazetteer:
    """All KB aliases of one language, matched on whole tokens (module docstring).

    ``zh_script`` (``fold`` or ``keep``) is the Chinese script policy of the module
    docstring; it applies only when ``lang`` is Chinese.
    """

    def __init__(self, kb: KnowledgeBase, lang: str, min_chars: int = 2, case: str = "smart",
                 zh_script: str = "fold") -> None:
        table = alias_table(kb, lang, min_chars, case, zh_script)
        self.lang = lang
        self.case = case
        self.zh_script = zh_script
        self.fold = fold_for(lang, zh_script)
        self.dropped = table.dropped
        self.n_aliases = table.n_aliases
        self.single_words = table.single_words
        self._automaton = ahocorasick.Automaton()
        for key, by_entity in table.entries.items():
            self._automaton.add_word(key, (len(key), by_entity))
        if table.entries:
            self._automaton.make_automaton()
        self._empty = not table.entries
        logger.info("gazetteer %s: %d aliases (%d keys), dropped %s",
                    lang, self.n_aliases, len(table.entries), dict(self.dropped))

    def find(self, tok: TokenizedText) -> list[Mention]:
        """Longest non-overlapping alias matches of ``tok`` that cover whole tokens."""
        if self._empty or not tok.tokens:
            return []
        text = tok.text
        folded = fold_text(text, self.fold)
        starts = {s: k for k, s in enumerate(tok.char_starts)}
        ends = {e: k for k, e in enumerate(tok.char_ends)}
        found = []
        for end_idx, (length, by_entity) in self._automaton.iter(folded):
            end = end_idx + 1
            start = end - length
            if start not in starts or end not in ends:
                continue  # starts or ends inside a token: no match (module docstring)
            surface = text[start:end]
            cands = accepted(by_entity, self.fold(surface))
            if cands:
                found.append(Mention(starts[start], ends[end] + 1, start, end, surface, cands))
        return longest_first(found)
