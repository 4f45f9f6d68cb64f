"""Source entities -> target entities: the projection of annotation runs, and of
``xlre eval-projection``, which so measures what runs do.

Word links (plus links between identical name-like tokens) carry each source entity's
span to the target sentence (:mod:`alignment.projection`). Target spans found by other
evidence anchor the result; for each source entity, in this order:

1. an alias of the same KB entity in the target sentence (target-language aliases);
2. a target span written exactly like the source mention (names, numbers);
3. only when neither exists, a target NER span (``--ner``).

A projection that overlaps an anchor is snapped to it; a span with no link but exactly
one anchor takes that anchor (the rules of :mod:`alignment.projection`).

Chinese scripts (``zh_script="fold"``, the default, when either language is Chinese):
the alias anchors come from a script-folding gazetteer (:mod:`xlre.kb.gazetteer`), and
"written exactly like" and the identical-token links compare texts folded from
traditional to simplified (:func:`alignment.script.fold_script`), so ``臺北`` anchors on
``台北``; the spans found keep the offsets of the original text.

Target names, for targets written in Han characters (Chinese, Japanese; the KB given).
A span found by the word links alone (outcome ``projected``: no alias, identical-name
or NER anchor confirmed it) is checked against the entity's KB names in the target
language (all Chinese tags under ``fold``), when it has any and the span is not written
like the source mention:

* **narrowed**: when the span holds one of those names, shorter than the span, exactly
  once, the entity is that name's characters, inside the segmenter's token (``美国`` in
  the jieba token ``美国会``, "US Congress", for the U.S.; ``湖北`` in ``湖北日报``). The
  alias gazetteer never matches inside a token (a name inside a longer word is not a
  mention of it on its own), but here the word links have already placed the entity
  there, so the name only trims the span;
* **alias_mismatch** (dropped): when the span shares no character with any of those
  names, the links landed on an unrelated word (``British`` on ``蛊惑``, ``Los Angeles``
  on ``山火救援`` in a sentence that does not name the city). A transliterated name the
  KB spells differently still shares characters in most cases.

Spans in scripts with an alphabet share letters with any name, so the check is not made
for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alignment.languages import normalize_lang
from alignment.projection import Pair, Projection, identical_links, project_spans
from alignment.records import Span, TokenizedText
from alignment.script import check_policy, fold_script, fold_tokenized, is_chinese
from alignment.spans import find_on_token_boundaries
from xlre.annotate.ner import ner_entities
from xlre.kb import KnowledgeBase, Mention, alias_languages
from xlre.kb.index import KBIndex, make_gazetteer
from xlre.records import Entity

#: Target languages whose projected spans are checked against the entity's names.
HAN_LANGUAGES = frozenset({"zh", "ja"})


class Projector:
    """Projects the entities of one source sentence onto its target sentence.

    ``kb`` (optional) gives the target-language alias anchors; ``ner`` (a spaCy pipeline
    for the target language, optional) the NER anchors; ``use_identical=False`` turns off
    identical-name links and anchors (for measuring what they bring). ``zh_script`` is
    the Chinese script policy (module docstring); ``src_lang``, when given, lets a
    Chinese source turn the fold on too.
    """

    def __init__(self, tgt_lang: str, kb: KnowledgeBase | KBIndex | None = None, ner: Any = None,
                 min_alias_chars: int = 2, case: str = "smart",
                 use_identical: bool = True, zh_script: str = "fold",
                 src_lang: str | None = None) -> None:
        self.tgt_lang = tgt_lang
        self.zh_script = check_policy(zh_script)
        #: Compare texts script-folded ("written exactly like", identical tokens).
        self.fold = zh_script == "fold" and (
            is_chinese(tgt_lang) or (src_lang is not None and is_chinese(src_lang)))
        # The KB's target-language aliases anchor projected spans; names written alike in
        # both languages are found by identical-name anchors instead.
        self.gazetteers = ([make_gazetteer(kb, tgt_lang, min_alias_chars, case, zh_script)]
                           if kb is not None else [])
        self.ner = ner
        self.use_identical = use_identical
        self.kb = kb
        self.min_alias_chars = min_alias_chars
        #: Check link-only spans against the entity's target names (module docstring).
        self.check_names = kb is not None and normalize_lang(tgt_lang) in HAN_LANGUAGES
        self._name_tags = alias_languages(kb, tgt_lang, zh_script) if kb is not None else []
        self._names: dict[str, tuple[str, ...]] = {}

    def anchors(self, ent: Entity, tgt: TokenizedText, tgt_aliases: Sequence[Mention],
                tgt_ner: Sequence[Entity]) -> list[Span]:
        """The target spans that anchor ``ent`` (the module's order)."""
        spans: dict[tuple[int, int], Span] = {}
        if ent.kb_id is not None:
            for m in tgt_aliases:
                if ent.kb_id in m.candidates:
                    spans[(m.tok_start, m.tok_end)] = tgt.span(m.tok_start, m.tok_end)
        if self.use_identical:
            tgt_c, text_c = (fold_tokenized(tgt), fold_script(ent.text)) if self.fold else (tgt, ent.text)
            for sp in find_on_token_boundaries(tgt_c, text_c):  # same offsets as tgt
                spans.setdefault((sp.tok_start, sp.tok_end), sp)
        if not spans:
            for n in tgt_ner:
                spans[(n.span.tok_start, n.span.tok_end)] = n.span
        return list(spans.values())

    def project(self, src_ents: Sequence[Entity], src: TokenizedText, tgt: TokenizedText,
                links: set[Pair]) -> list[Projection]:
        """One :class:`~alignment.projection.Projection` per source entity, in order."""
        if not src_ents:
            return []
        if self.use_identical:
            links = links | (identical_links(fold_tokenized(src), fold_tokenized(tgt))
                             if self.fold else identical_links(src, tgt))
        # target alias matches and NER are found once per sentence, not once per entity
        tgt_aliases = [m for gaz in self.gazetteers for m in gaz.find(tgt)]
        tgt_ner = ner_entities(self.ner, tgt)
        out = project_spans([e.span for e in src_ents], links, tgt,
                            [self.anchors(e, tgt, tgt_aliases, tgt_ner) for e in src_ents])
        if self.check_names:
            out = [self.check_name(e, p, tgt) for e, p in zip(src_ents, out, strict=True)]
        return out

    def target_names(self, kb_id: str) -> tuple[str, ...]:
        """The entity's KB names in the target language, casefolded and script-folded."""
        names = self._names.get(kb_id)
        if names is None:
            assert self.kb is not None
            found: set[str] = set()
            for tag in self._name_tags:
                found.update(self._fold(a.casefold()) for a in self.kb.names(kb_id, tag)
                             if len(a) >= self.min_alias_chars)
            names = self._names[kb_id] = tuple(sorted(found, key=len, reverse=True))
        return names

    def _fold(self, text: str) -> str:
        return fold_script(text) if self.fold else text

    def check_name(self, ent: Entity, proj: Projection, tgt: TokenizedText) -> Projection:
        """``proj`` narrowed to, or dropped for disagreeing with, the entity's target
        names (module docstring); unchanged when the rule does not apply."""
        span = proj.span
        if span is None or proj.outcome != "projected" or ent.kb_id is None:
            return proj
        names = self.target_names(ent.kb_id)
        text = self._fold(tgt.text[span.char_start:span.char_end].casefold())
        if not names or text == self._fold(ent.text.casefold()) or text in names:
            return proj
        # casefolding can lengthen a letter (ß → ss), which would shift the offsets below
        same_length = len(text) == span.char_end - span.char_start
        for name in names if same_length else ():  # longest first
            at = text.find(name)
            if at >= 0 and text.find(name, at + 1) < 0:
                start = span.char_start + at
                return Projection(Span(span.tok_start, span.tok_end, start, start + len(name)),
                                  "narrowed")
        chars = {c for c in text if c.isalnum()}
        if not any(chars & set(name) for name in names):
            return Projection(None, "alias_mismatch")
        return proj


def projected_entities(
    src_ents: Sequence[Entity], projections: Sequence[Projection], tgt: TokenizedText
) -> tuple[list[Entity], dict[int, int]]:
    """The target entities (``source="projected"``) in text order, and the index of each
    projected source entity among them."""
    kept = [k for k, proj in enumerate(projections) if proj.span is not None]
    kept.sort(key=lambda k: projections[k].span.tok_start)  # type: ignore[union-attr]
    out, index = [], {}
    for k in kept:
        span = projections[k].span
        assert span is not None
        ent = src_ents[k]
        index[k] = len(out)
        out.append(Entity(span, ent.label, ent.kb_id, "projected",
                          tgt.text[span.char_start:span.char_end]))
    return out, index
