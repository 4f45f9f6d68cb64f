"""Entity linking: gazetteer mentions -> single KB ids.

``linking="rank"`` (the default). Each mention is first checked by three guards, then its
candidates are ranked:

* **common_word** (dropped): a one-word capitalised mention that the corpus writes in
  lowercase more often than capitalised on its own (:mod:`xlre.kb.casing`; only when
  such counts are given): ``Found`` in a headline, ``Police`` in "Baton Rouge Police
  Department", ``Union`` in "Eurasian Economic Union", each an alias of some obscure
  KB entity.
* **demonym** (dropped): in a script with capitals, a mention one of whose candidates
  is a language (:meth:`~xlre.kb.knowledge_base.KnowledgeBase.is_language`) and
  that is followed by a word that is not a stop word, past any coordinated names:
  "Ukrainian forces", "Chinese consulate", "Chinese-funded", "French and British
  officials", "the Thai side" use the adjective of a people or country, not the
  language. "English is spoken", "in English.", "English and French are spoken" keep
  the language. In English, a mention after an article ("the French", "the EU") loses
  its language candidates, since a language's name takes none, and is dropped only when
  no other candidate is left; so after a numeral or a quantifier ("two Chinese", "overseas
  Chinese"). A language-named mention that ends a longer capitalised name the KB lacks
  ("South Korean", "Muay Thai") is dropped too.
* **capitals** (dropped): a one-word mention that is a stop word written in capitals
  (the gazetteer keeps ``US`` and ``WHO`` as initials of a name) next to another word in
  capitals, where the text shouts: "WE WILL MAKE THE US PROUD".
* **ranking**: a candidate's *context* is the number of the sentence's other mentions
  with a candidate it has a KB fact with. The candidates of highest context, when it is
  above zero, go on (one alone: ``resolved_by_kb``); then the one of highest prior
  (:meth:`~xlre.kb.knowledge_base.KnowledgeBase.prior`: the entity's popularity, such
  as Wikidata sitelinks, where the KB gives it, else its number of KB facts) is kept
  when its prior is at least ``margin`` times the runner-up's (``resolved_by_prior``).
  Otherwise the mention is dropped and counted (``ambiguous``). So ``London`` links to
  the UK capital (411 facts) over London, Ontario, unless the sentence names Ontario.

``linking="strict"``, the rule of runs made before ranking: no guards; a mention with
several candidates is kept only when exactly one candidate has a KB fact with another
mention's candidate, and dropped as ``ambiguous`` otherwise.

An entity's ``text`` is always ``sentence[char_start:char_end]`` of its span.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from alignment.errors import SettingError
from alignment.records import TokenizedText
from xlre.kb.casing import CaseStats
from xlre.kb.gazetteer import UNSEGMENTED_SCRIPTS, Gazetteer, Mention, stop_words
from xlre.kb.knowledge_base import KnowledgeBase
from xlre.records import Entity

LINKING_RULES = ("rank", "strict")
#: A candidate's prior must be at least this many times the runner-up's.
DEFAULT_MARGIN = 2.0
#: Marks that join the items of a list of names ("Chinese, Japanese and Korean troops").
LIST_MARKS = frozenset({",", "/", "&"})
#: Tokens that end a sentence or a headline: the word after one starts anew.
SENTENCE_ENDS = frozenset({".", "!", "?", ":", ";", "|", "-", "\u2013", "\u2014"})
#: Per language, the words that coordinate names ("French and British officials"); a
#: language not listed is walked past commas alone.
COORDINATORS: dict[str, frozenset[str]] = {
    "en": frozenset({"and", "or"}), "fr": frozenset({"et", "ou"}),
    "de": frozenset({"und", "oder"}), "es": frozenset({"y", "e", "o", "u"}),
    "it": frozenset({"e", "ed", "o"}), "pt": frozenset({"e", "ou"}), "nl": frozenset({"en", "of"}),
}
#: Per language, words of spaCy's stop list that are nouns able to follow an adjective
#: of nationality ("the Thai side", "the Chinese move"): after a language name they mark
#: the adjective all the same.
CONTENT_STOP_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset({"side", "part", "front", "back", "top", "bottom", "name", "amount",
                     "whole", "move", "show", "call"}),
}
#: Per language, articles and quantifiers that a language's name does not take: in
#: English "the French" are a people, "a Chinese" a person, "two Chinese", "many
#: Chinese", "overseas Chinese" people, while French says "le français" of the language
#: itself, so French has none. A numeral (digits, or a word of :data:`NUMBER_WORDS`)
#: counts as well.
PEOPLE_ARTICLES: dict[str, frozenset[str]] = {
    "en": frozenset({"the", "a", "an", "many", "several", "most", "ethnic", "overseas",
                     "fellow"}),
}
NUMBER_WORDS: dict[str, frozenset[str]] = {
    "en": frozenset({"two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                     "dozens", "hundreds", "thousands", "millions"}),
}


@dataclass
class LinkStats:
    """Counts of what linking did, summed over sentences."""

    mentions: int = 0
    linked: int = 0
    resolved_by_kb: int = 0
    resolved_by_prior: int = 0
    dropped: Counter[str] = field(default_factory=Counter)

    def merge(self, other: LinkStats) -> None:
        self.mentions += other.mentions
        self.linked += other.linked
        self.resolved_by_kb += other.resolved_by_kb
        self.resolved_by_prior += other.resolved_by_prior
        self.dropped.update(other.dropped)

    def as_dict(self) -> dict[str, object]:
        return {"mentions": self.mentions, "linked": self.linked,
                "resolved_by_kb": self.resolved_by_kb, "resolved_by_prior": self.resolved_by_prior,
                "dropped": dict(self.dropped)}


class EntityLinker:
    """Links gazetteer mentions to single KB ids (module docstring).

    ``casing``: the corpus's word counts for the ``common_word`` guard (None: no guard).
    """

    def __init__(self, kb: KnowledgeBase, gazetteer: Gazetteer, linking: str = "rank",
                 margin: float = DEFAULT_MARGIN, casing: CaseStats | None = None) -> None:
        if linking not in LINKING_RULES:
            raise SettingError(f"unknown linking rule {linking!r}; choose {' or '.join(LINKING_RULES)}")
        if margin < 1.0:
            raise SettingError(f"the linking margin must be at least 1, got {margin}")
        self.kb = kb
        self.gazetteer = gazetteer
        self.linking = linking
        self.margin = margin
        self.casing = casing
        cased = gazetteer.lang not in UNSEGMENTED_SCRIPTS
        #: The demonym guard applies (rank linking, a script with capitals).
        self._check_languages = linking == "rank" and cased
        self._stops = stop_words(gazetteer.lang)
        self._coordinators = COORDINATORS.get(gazetteer.lang, frozenset())
        self._content_stops = CONTENT_STOP_WORDS.get(gazetteer.lang, frozenset())
        self._articles = PEOPLE_ARTICLES.get(gazetteer.lang, frozenset())
        self._numbers = NUMBER_WORDS.get(gazetteer.lang, frozenset())

    def link(self, tok: TokenizedText, stats: LinkStats | None = None) -> list[Entity]:
        """Entities (``source="kb"``) of one tokenized sentence, in text order."""
        stats = stats if stats is not None else LinkStats()
        mentions = self.gazetteer.find(tok)
        stats.mentions += len(mentions)
        if self.linking == "rank":
            kept = []
            for m in mentions:
                reason = self._guard(m, tok)
                if reason is None and self._after_article(m, tok):
                    # "the French", "the EU": a people or another name, not a language
                    cands = tuple(c for c in m.candidates if not self.kb.is_language(c))
                    if cands:
                        m = replace(m, candidates=cands)
                    else:
                        reason = "demonym"
                if reason:
                    stats.dropped[reason] += 1
                else:
                    kept.append(m)
            mentions = kept
        chosen = [self._choose(k, mentions, stats) for k in range(len(mentions))]
        entities = []
        for m, kb_id in zip(mentions, chosen, strict=True):
            if kb_id is None:
                continue
            span = tok.span(m.tok_start, m.tok_end)
            # the text is always the sentence's slice at the entity's offsets
            entities.append(Entity(span, self.kb.entity_type(kb_id) or "ENT", kb_id, "kb",
                                   tok.text[span.char_start:span.char_end]))
        stats.linked += len(entities)
        return entities

    def _guard(self, m: Mention, tok: TokenizedText) -> str | None:
        """The reason to drop ``m`` before ranking, if any (module docstring)."""
        if m.tok_end - m.tok_start == 1 and m.text.isupper() and m.text.casefold() in self._stops \
                and self._in_capitals(m, tok):
            return "capitals"
        if (self.casing is not None and m.tok_end - m.tok_start == 1 and m.text[:1].isupper()
                and not m.text.isupper() and self.casing.is_common(m.text)):
            return "common_word"
        if self._check_languages and any(self.kb.is_language(c) for c in m.candidates) \
                and (self._adjective_use(m, tok) or self._inside_name(m, tok)):
            return "demonym"
        return None

    @staticmethod
    def _in_capitals(m: Mention, tok: TokenizedText) -> bool:
        """A word next to ``m`` is written in capitals too: the text shouts ("I CAN BEAT
        HIM"), and a stop word in it is not an acronym."""
        near = [tok.tokens[k] for k in (m.tok_start - 1, m.tok_end) if 0 <= k < len(tok.tokens)]
        return any(w.isalpha() and w.isupper() for w in near)

    def _adjective_use(self, m: Mention, tok: TokenizedText) -> bool:
        """A language-named mention is used as an adjective (module docstring): the word
        after it, past coordinated names ("French and British officials", "Chinese,
        Japanese and Korean troops"), is a content word, or a hyphen joins it to one."""
        tokens, i = tok.tokens, m.tok_end
        while i < len(tokens):
            j = i + 1 if tokens[i] in LIST_MARKS else i
            if j < len(tokens) and tokens[j].casefold() in self._coordinators:
                j += 1
            if j == i or j >= len(tokens) or not tokens[j][:1].isupper():
                break
            while j < len(tokens) and tokens[j][:1].isupper():
                j += 1
            i = j
        if i >= len(tokens):
            return False
        nxt = tokens[i]
        if any(c.isalpha() for c in nxt) and (nxt.casefold() not in self._stops
                                             or nxt.casefold() in self._content_stops):
            return True
        after = tokens[i + 1] if i + 1 < len(tokens) else ""
        return nxt == "-" and after[:1].islower()  # "Chinese-funded", "Iranian-produced"

    def _after_article(self, m: Mention, tok: TokenizedText) -> bool:
        """An article that a language's name does not take comes before ``m``
        (:data:`PEOPLE_ARTICLES`), and ``m`` has a language among its candidates."""
        if not (self._check_languages and self._articles and m.tok_start > 0):
            return False
        before = tok.tokens[m.tok_start - 1].casefold()
        digits = before.replace(",", "")
        # a count, not a year: "since 1990 Russian has been taught"
        count = digits.isdigit() and not (len(digits) == 4 and 1000 <= int(digits) <= 2100)
        return ((before in self._articles or before in self._numbers or count)
                and any(self.kb.is_language(c) for c in m.candidates))

    def _inside_name(self, m: Mention, tok: TokenizedText) -> bool:
        """``m`` ends a longer capitalised name the KB does not hold: the word before it is
        capitalised and is not the sentence's first ("South Korean", "Muay Thai")."""
        k = m.tok_start - 1
        if k < 1:
            return False
        before, start = tok.tokens[k], tok.tokens[k - 1]
        return (before[:1].isupper() and before.isalpha()
                and not (start in SENTENCE_ENDS or start in ('"', "“", "'", "(")))

    def _choose(self, k: int, mentions: Sequence[Mention], stats: LinkStats) -> str | None:
        cands = mentions[k].candidates
        if len(cands) == 1:
            return cands[0]
        others = [o.candidates for j, o in enumerate(mentions) if j != k]
        if self.linking == "strict":
            pooled = {c for o in others for c in o}
            backed = [c for c in cands if any(self.kb.connected(c, o) for o in pooled if o != c)]
            if len(backed) == 1:
                stats.resolved_by_kb += 1
                return backed[0]
            stats.dropped["ambiguous"] += 1
            return None
        context = {c: sum(any(x != c and self.kb.connected(c, x) for x in o) for o in others)
                   for c in cands}
        best = max(context.values())
        pool = [c for c in cands if context[c] == best] if best > 0 else list(cands)
        if len(pool) == 1:
            stats.resolved_by_kb += 1
            return pool[0]
        ranked = sorted(pool, key=lambda c: (-self.kb.prior(c), c))
        first, second = self.kb.prior(ranked[0]), self.kb.prior(ranked[1])
        if first > 0 and first >= self.margin * second and first > second:
            stats.resolved_by_prior += 1
            return ranked[0]
        stats.dropped["ambiguous"] += 1
        return None
