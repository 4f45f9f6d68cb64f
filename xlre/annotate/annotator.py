"""The per-pair annotator: link, label, align, project.

Per pair: tokenize both sides -> link source entities (gazetteer, optional spaCy NER) ->
distant labels (every ordered pair of linked entities gets its KB relations, or ``NA``,
sampled with ``na_ratio``) -> word links -> project each source entity
(:mod:`xlre.annotate.projection`) -> relations follow when both entities project.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from alignment.aligners import WordAligner
from alignment.corpus import BadLine
from alignment.pharaoh import parse_line
from alignment.records import SentencePair, TokenizedText
from alignment.script import make_tokenizer
from alignment.spans import tokens_from_spans
from xlre.annotate.config import AnnotateConfig, RunError, make_aligner
from xlre.annotate.ner import load_ner, ner_entities
from xlre.annotate.projection import Projector, projected_entities
from xlre.annotate.rundir import LINKS_FILE, SPANS_FILE, encode_records
from xlre.kb import EntityLinker, KnowledgeBase, LinkStats
from xlre.kb.index import KBIndex, make_gazetteer
from xlre.records import NA, Entity, RelationMention


def _entity_json(ent: Entity) -> dict[str, Any]:
    return {
        "char_start": ent.span.char_start, "char_end": ent.span.char_end,
        "tok_start": ent.span.tok_start, "tok_end": ent.span.tok_end,
        "text": ent.text, "kb_id": ent.kb_id, "label": ent.label, "source": ent.source,
    }


def _sentence_json(
    pair: SentencePair, side: str, lang: str, tok: TokenizedText,
    entities: list[Entity], relations: list[RelationMention],
) -> dict[str, Any]:
    return {
        "pair_id": pair.pair_id,
        "line_no": pair.line_no,
        "side": side,
        "lang": lang,
        "text": tok.text,
        "tokens": list(tok.tokens),
        "token_starts": list(tok.char_starts),
        "token_ends": list(tok.char_ends),
        "entities": [_entity_json(e) for e in entities],
        "relations": [
            {
                "head": r.head, "tail": r.tail, "relation": r.relation, "source": r.source,
                "bag": f"{entities[r.head].kb_id}|{entities[r.tail].kb_id}",
            }
            for r in relations
        ],
    }


def _pair_lines(items: list[SentencePair | BadLine], lines: list[str]) -> list[str]:
    """The lines of a file kept in step with ``items`` (one per item) that belong to the
    sentence pairs among them, in order: a bad line's line is dropped with it."""
    return [line for it, line in zip(items, lines, strict=True) if isinstance(it, SentencePair)]


# --------------------------------------------------------------------------- the worker
@dataclass
class ShardStats:
    """Counts of one shard (summed into the manifest)."""

    pairs: int = 0
    aligned_pairs: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    sentences: Counter[str] = field(default_factory=Counter)
    entities: Counter[str] = field(default_factory=Counter)
    relations: dict[str, Counter[str]] = field(default_factory=dict)
    na_sampled_out: int = 0
    linking: LinkStats = field(default_factory=LinkStats)
    projection: Counter[str] = field(default_factory=Counter)
    relations_dropped: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    #: Where the shard's time went: tokenize, word links (read or aligned), link (KB
    #: linking and NER), label, project, records (building them), encode (to JSON).
    step_seconds: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "pairs": self.pairs, "aligned_pairs": self.aligned_pairs,
            "skipped": dict(self.skipped), "sentences": dict(self.sentences),
            "entities": dict(self.entities),
            "relations": {lang: dict(c) for lang, c in self.relations.items()},
            "na_sampled_out": self.na_sampled_out, "linking": self.linking.as_dict(),
            "projection": dict(self.projection), "relations_dropped": dict(self.relations_dropped),
            "seconds": round(self.seconds, 3),
            "step_seconds": {k: round(v, 3) for k, v in self.step_seconds.items()},
        }




class Annotator:
    """Annotates sentence pairs; built once per run and shared by forked workers."""

    def __init__(self, config: AnnotateConfig, kb: KnowledgeBase | KBIndex) -> None:
        self.config = config
        self.kb = kb
        # Chinese under zh_script="fold" is segmented on its script-folded form
        self.src_tok = make_tokenizer(config.src_lang, zh_script=config.zh_script)
        self.tgt_tok = make_tokenizer(config.tgt_lang, zh_script=config.zh_script)
        self.linker = EntityLinker(
            kb, make_gazetteer(kb, config.src_lang, config.min_alias_chars, config.case,
                               config.zh_script),
            linking=config.linking, margin=config.link_margin,
        )
        self.ner = load_ner(config.ner)
        self.projector = Projector(config.tgt_lang, kb, self.ner.get(config.tgt_lang),
                                   config.min_alias_chars, config.case,
                                   zh_script=config.zh_script, src_lang=config.src_lang)
        self._shard_aligner: WordAligner | None = None

    # -- per pair -----------------------------------------------------------------------
    def _source_entities(self, tok: TokenizedText, stats: ShardStats) -> list[Entity]:
        ents = self.linker.link(tok, stats.linking)
        ner = ner_entities(self.ner.get(self.config.src_lang), tok)
        if not ner:
            return ents
        typed = []
        for e in ents:  # the KB gives identity, NER the type when the KB has none
            if e.label == "ENT":
                label = next((n.label for n in ner if n.span == e.span), None)
                e = Entity(e.span, label or e.label, e.kb_id, e.source, e.text)
            typed.append(e)
        taken = [(e.span.tok_start, e.span.tok_end) for e in typed]
        for n in ner:
            if all(n.span.tok_end <= s or n.span.tok_start >= t for s, t in taken):
                typed.append(n)
        return sorted(typed, key=lambda e: e.span.tok_start)

    def _keep_na(self, pair_id: str, head: str, tail: str) -> bool:
        if self.config.na_ratio >= 1.0:
            return True
        digest = hashlib.blake2b(f"{self.config.seed}|{pair_id}|{head}|{tail}".encode(), digest_size=8)
        return int.from_bytes(digest.digest(), "big") / 2**64 < self.config.na_ratio

    def distant_labels(self, pair_id: str, entities: list[Entity], stats: ShardStats) -> list[RelationMention]:
        """KB relations (or NA) for every ordered pair of distinct linked entities."""
        out = []
        for h, head in enumerate(entities):
            for t, tail in enumerate(entities):
                if h == t or head.kb_id is None or tail.kb_id is None or head.kb_id == tail.kb_id:
                    continue
                rels = self.kb.relations_between(head.kb_id, tail.kb_id)
                if rels:
                    out.extend(RelationMention(h, t, r) for r in rels)
                elif self._keep_na(pair_id, head.kb_id, tail.kb_id):
                    out.append(RelationMention(h, t, NA))
                else:
                    stats.na_sampled_out += 1
        return out

    def annotate_pair(
        self, pair: SentencePair, src: TokenizedText, tgt: TokenizedText,
        links: set[tuple[int, int]], stats: ShardStats,
    ) -> list[dict[str, Any]]:
        steps, t0 = stats.step_seconds, time.perf_counter()
        src_ents = self._source_entities(src, stats)
        t1 = time.perf_counter()
        src_rels = self.distant_labels(pair.pair_id, src_ents, stats)
        t2 = time.perf_counter()
        projections = self.projector.project(src_ents, src, tgt, links)
        t3 = time.perf_counter()
        steps["link"] += t1 - t0
        steps["label"] += t2 - t1
        steps["project"] += t3 - t2
        for proj in projections:
            stats.projection[proj.outcome] += 1
        tgt_ents, index = projected_entities(src_ents, projections, tgt)
        tgt_rels = []
        for r in src_rels:
            if r.head in index and r.tail in index:
                tgt_rels.append(RelationMention(index[r.head], index[r.tail], r.relation, "projected"))
            else:
                stats.relations_dropped["entity_not_projected"] += 1
        out = []
        for side, lang, tok, ents, rels in (
            ("src", self.config.src_lang, src, src_ents, src_rels),
            ("tgt", self.config.tgt_lang, tgt, tgt_ents, tgt_rels),
        ):
            stats.sentences[lang] += 1
            stats.entities[lang] += len(ents)
            counter = stats.relations.setdefault(lang, Counter())
            counter.update(r.relation for r in rels)
            out.append(_sentence_json(pair, side, lang, tok, ents, rels))
        steps["records"] += time.perf_counter() - t3
        return out

    # -- per shard ----------------------------------------------------------------------
    def shard_aligner(self) -> WordAligner:
        if self._shard_aligner is None:
            self._shard_aligner = make_aligner(self.config)
        return self._shard_aligner

    def _tokens(self, items: list[SentencePair | BadLine], pairs: list[SentencePair],
                span_lines: list[str] | None) -> tuple[list[TokenizedText], list[TokenizedText]]:
        """Both sides' tokens: rebuilt from the alignment stage's offsets where the run
        kept them (the very tokens it aligned), else tokenized here."""
        if span_lines is None:
            return (list(self.src_tok.pipe(p.src_text for p in pairs)),
                    list(self.tgt_tok.pipe(p.tgt_text for p in pairs)))
        src_toks, tgt_toks = [], []
        for p, line in zip(pairs, _pair_lines(items, span_lines), strict=True):
            sides = line.split("\t")
            try:
                if len(sides) != 2:
                    raise ValueError(f"{len(sides)} tab-separated sides, not 2")
                src_toks.append(tokens_from_spans(p.src_text, sides[0]))
                tgt_toks.append(tokens_from_spans(p.tgt_text, sides[1]))
            except ValueError as err:
                raise RunError(f"{SPANS_FILE}, line {p.line_no}: {err}, so it does not belong "
                               "to this corpus. Fix: start the run again in a new --out") from None
        return src_toks, tgt_toks

    def annotate_shard(
        self, items: list[SentencePair | BadLine], link_lines: list[str] | None,
        span_lines: list[str] | None = None,
    ) -> tuple[list[dict[str, Any]], ShardStats]:
        start = time.perf_counter()
        stats = ShardStats()
        pairs = [it for it in items if isinstance(it, SentencePair)]
        src_toks, tgt_toks = self._tokens(items, pairs, span_lines)
        t0 = time.perf_counter()
        stats.step_seconds["tokenize"] += t0 - start
        if link_lines is not None:
            links = [parse_line(line, LINKS_FILE, p.line_no).possible
                     for p, line in zip(pairs, _pair_lines(items, link_lines), strict=True)]
        else:
            aligned = self.shard_aligner().align([t.tokens for t in src_toks], [t.tokens for t in tgt_toks])
            links = [lk.pairs() for lk in aligned]
        stats.step_seconds["word_links"] += time.perf_counter() - t0
        records = []
        for item in items:
            stats.pairs += 1
            if isinstance(item, BadLine):
                stats.skipped[item.reason] += 1
        for pair, s, t, lk in zip(pairs, src_toks, tgt_toks, links, strict=True):
            stats.aligned_pairs += 1
            records.extend(self.annotate_pair(pair, s, t, set(lk), stats))
        stats.seconds = time.perf_counter() - start
        return records, stats

    def annotate_and_encode(self, items: list[SentencePair | BadLine], link_lines: list[str] | None,
                            span_lines: list[str] | None = None) -> tuple[bytes, ShardStats]:
        """:meth:`annotate_shard`, its records encoded as the shard file's bytes."""
        records, stats = self.annotate_shard(items, link_lines, span_lines)
        start = time.perf_counter()
        data = encode_records(records)
        stats.step_seconds["encode"] += time.perf_counter() - start
        stats.seconds += stats.step_seconds["encode"]
        return data, stats

