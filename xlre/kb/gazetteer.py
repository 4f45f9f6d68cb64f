"""The alias gazetteer: every KB label of one language, matched in tokenized text.

Matching. Every alias of the sentence's language is put into one Aho-Corasick
automaton (pyahocorasick, C), keyed by its casefolded form. A match counts only where it
starts and ends on token boundaries (for languages written without spaces, zh and ja,
any character position counts). Overlapping matches are resolved longest first, then
leftmost.

Case policy (``case="smart"``, the default): aliases of at most 3 characters and
all-uppercase aliases (``CA``, ``UK``) match only exactly; other aliases match case-
insensitively, except that an alias starting with an uppercase letter needs an
uppercase letter in the text too (``Globe`` does not match ``globe``). ``case="exact"``
matches every alias exactly, ``case="ignore"`` ignores case altogether.

Guards against noisy aliases, each counted in :attr:`Gazetteer.dropped`:
aliases shorter than ``min_chars``; aliases that are stop words of the language
(``can``, ``the``); single-word all-lowercase aliases in cased scripts (``globe``),
which name common nouns far more often than entities; aliases with no letter
(``⊕``, ``1``).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from functools import cache

import ahocorasick

from alignment.records import TokenizedText
from xlre.kb.knowledge_base import KnowledgeBase

logger = logging.getLogger(__name__)

UNSEGMENTED_SCRIPTS = frozenset({"zh", "ja", "th"})
CASE_POLICIES = ("smart", "exact", "ignore")


@cache
def stop_words(lang: str) -> frozenset[str]:
    """spaCy's stop-word list for ``lang`` (empty if spaCy has none)."""
    try:
        from spacy.util import get_lang_class

        return frozenset(w.casefold() for w in get_lang_class(lang).Defaults.stop_words)
    except Exception:
        return frozenset()


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


class Gazetteer:
    """All KB aliases of one language, matched on token boundaries (module docstring)."""

    def __init__(self, kb: KnowledgeBase, lang: str, min_chars: int = 2, case: str = "smart") -> None:
        if case not in CASE_POLICIES:
            raise ValueError(f"unknown case policy {case!r}; choose one of {', '.join(CASE_POLICIES)}")
        self.lang = lang
        self.case = case
        self.dropped: Counter[str] = Counter()
        self.n_aliases = 0
        stops = stop_words(lang)
        entries: dict[str, dict[str, list[tuple[str, str]]]] = {}
        for alias, ent_id in kb.aliases(lang):
            key = alias.casefold()
            reason = None
            if len(alias) < min_chars:
                reason = "too_short"
            elif not any(c.isalpha() for c in alias):
                reason = "no_letter"
            elif key in stops:
                reason = "stop_word"
            elif (
                case != "exact" and lang not in UNSEGMENTED_SCRIPTS and alias.islower()
                and len(alias.split()) == 1
            ):
                reason = "lowercase_word"
            if reason:
                self.dropped[reason] += 1
                continue
            self.n_aliases += 1
            entries.setdefault(key, {}).setdefault(ent_id, []).append((alias, _alias_rule(alias, case)))
        self._automaton = ahocorasick.Automaton()
        for key, by_entity in entries.items():
            value = (len(key), tuple((eid, tuple(forms)) for eid, forms in by_entity.items()))
            self._automaton.add_word(key, value)
        if entries:
            self._automaton.make_automaton()
        self._empty = not entries
        logger.info("gazetteer %s: %d aliases (%d keys), dropped %s",
                    lang, self.n_aliases, len(entries), dict(self.dropped))

    def find(self, tok: TokenizedText) -> list[Mention]:
        """Longest non-overlapping alias matches of ``tok`` on token boundaries."""
        if self._empty or not tok.tokens:
            return []
        text = tok.text
        folded = text.casefold()
        if len(folded) != len(text):  # casefolding changed lengths (ß -> ss): fall back
            folded = text.lower() if len(text.lower()) == len(text) else text
        any_position = self.lang in UNSEGMENTED_SCRIPTS
        starts = {s: k for k, s in enumerate(tok.char_starts)}
        ends = {e: k for k, e in enumerate(tok.char_ends)}
        found = []
        for end_idx, (length, by_entity) in self._automaton.iter(folded):
            end = end_idx + 1
            start = end - length
            if any_position:
                tok_start = _token_at(tok, start)
                tok_end = _token_at(tok, end - 1) + 1
            elif start in starts and end in ends:
                tok_start, tok_end = starts[start], ends[end] + 1
            else:
                continue
            surface = text[start:end]
            cands = tuple(
                eid for eid, forms in by_entity
                if any(_accepts(rule, alias, surface) for alias, rule in forms)
            )
            if cands:
                found.append(Mention(tok_start, tok_end, start, end, surface, cands))
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


def _token_at(tok: TokenizedText, char: int) -> int:
    for k, (s, e) in enumerate(zip(tok.char_starts, tok.char_ends, strict=True)):
        if s <= char < e:
            return k
    # a character between tokens (whitespace): the next token
    return next((k for k, s in enumerate(tok.char_starts) if s > char), len(tok.tokens) - 1)
