"""Projection quality on parallel gold: marked sentences in two languages.

Given the same records in a source and a target file (RELX style, paired by id), the
markers are stripped, both sides tokenized and word-aligned, the gold source entities
projected by the annotation runs' own projection (:class:`xlre.annotate.Projector`:
the same links, identical names and anchors, plus the KB's target aliases with ``kb``
and target NER spans with ``ner``) and compared with the gold target spans:

* ``entity_exact_f1``: a projected span counts when its characters equal the gold
  target entity's; precision over projected spans, recall over gold spans;
* ``entity_overlap_f1``: the same, counting any character overlap;
* ``pairs_fully_projected``: share of records where both entities projected;
* ``relation_preserved``: share of records where both projected exactly, so the
  relation label lands on the right target pair.

With ``kb``, a gold source entity gets the KB id that the runs' linker gives exactly
its span (none otherwise), so alias anchors apply as they do in a run.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignment.aligners import WordAligner
from alignment.corpus import ParallelCorpus
from alignment.errors import SettingError
from alignment.pharaoh import read_pharaoh
from alignment.pipeline import add_extra_corpora
from alignment.projection import Projection
from alignment.records import TokenizedText
from alignment.spans import char_to_token_span
from alignment.tokenize import Tokenizer
from xlre.annotate import Projector
from xlre.data import MarkedReport, MarkedSentence, read_marked
from xlre.kb import EntityLinker, Gazetteer, KnowledgeBase
from xlre.records import Entity

logger = logging.getLogger(__name__)


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def gold_entities(rec: MarkedSentence, tok: TokenizedText,
                  linker: EntityLinker | None = None) -> list[Entity]:
    """The two marked entities of ``rec`` as entities of ``tok`` (``e1`` then ``e2``).

    With ``linker``, each takes the KB id the linker gives exactly its token span.
    """
    linked = {}
    if linker is not None:
        linked = {(e.span.tok_start, e.span.tok_end): e for e in linker.link(tok)}
    out = []
    for name in ("e1", "e2"):
        start, end = getattr(rec, name)
        span = char_to_token_span(tok, start, end)
        assert span is not None, "a non-empty entity covers at least one token"
        match = linked.get((span.tok_start, span.tok_end))
        out.append(Entity(span, match.label if match else "ENT", match.kb_id if match else None,
                          "gold", rec.text[start:end]))
    return out


@dataclass(frozen=True)
class GoldProjection:
    """What :func:`project_gold` did: the paired record ids (source-file order), the
    records of each side by id, two projections per record (``e1``, ``e2``) and what
    reading skipped."""

    ids: list[str]
    src: dict[str, MarkedSentence]
    tgt: dict[str, MarkedSentence]
    projections: list[list[Projection]]
    skipped_records: dict[str, Any]


def project_gold(
    src_file: Path | str,
    tgt_file: Path | str,
    src_lang: str,
    tgt_lang: str,
    aligner: WordAligner | None,
    extra_corpora: Sequence[ParallelCorpus] = (),
    use_identical: bool = True,
    skip_bad: bool = True,
    progress: Callable[[str, int], None] | None = None,
    kb: KnowledgeBase | None = None,
    ner: Any = None,
    links_file: Path | str | None = None,
) -> GoldProjection:
    """Project the gold source entities of paired marked records onto the target side.

    Word links come from ``aligner`` or, with ``links_file``, from Pharaoh links (one line
    per paired record, in source-file order).
    """
    src_report, tgt_report = MarkedReport(), MarkedReport()
    src_recs = {r.sent_id: r for r in read_marked(src_file, skip_bad, src_report)}
    tgt_recs = {r.sent_id: r for r in read_marked(tgt_file, skip_bad, tgt_report)}
    ids = [i for i in src_recs if i in tgt_recs]
    unpaired = len(src_recs) + len(tgt_recs) - 2 * len(ids)
    src_tok, tgt_tok = Tokenizer(src_lang), Tokenizer(tgt_lang)
    src_toks = list(src_tok.pipe(src_recs[i].text for i in ids))
    tgt_toks = list(tgt_tok.pipe(tgt_recs[i].text for i in ids))
    if links_file is not None:
        links = [g.possible for g in read_pharaoh(links_file)]
        if len(links) != len(ids):
            raise SettingError(
                f"{links_file} has {len(links)} lines but {len(ids)} records are paired; give "
                "one line of links per paired record, in source-file order"
            )
    else:
        assert aligner is not None, "give an aligner or a links file"
        if extra_corpora:
            add_extra_corpora(aligner, extra_corpora, src_tok, tgt_tok, progress)
        links = [lk.pairs() for lk in aligner.align([t.tokens for t in src_toks],
                                                     [t.tokens for t in tgt_toks])]
    linker = EntityLinker(kb, Gazetteer(kb, src_lang)) if kb is not None else None
    projector = Projector(tgt_lang, kb, ner, use_identical=use_identical)
    projections = []
    for k, sid in enumerate(ids):
        ents = gold_entities(src_recs[sid], src_toks[k], linker)
        projections.append(projector.project(ents, src_toks[k], tgt_toks[k], set(links[k])))
    return GoldProjection(ids, src_recs, tgt_recs, projections,
                          {"src": src_report.as_dict(), "tgt": tgt_report.as_dict(),
                           "unpaired": unpaired})


def evaluate_projection(*args: Any, **kwargs: Any) -> dict[str, object]:
    """Project gold source entities onto the target side and score them (see module):
    :func:`project_gold`'s arguments, :func:`score_projection`'s result."""
    return score_projection(project_gold(*args, **kwargs))


def score_projection(done: GoldProjection) -> dict[str, object]:
    """The scores of the module docstring for what :func:`project_gold` returned."""
    counts: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for sid, projections in zip(done.ids, done.projections, strict=True):
        t_rec = done.tgt[sid]
        exact_both = True
        for proj, (g_start, g_end) in zip(projections, (t_rec.e1, t_rec.e2), strict=True):
            counts["gold"] += 1
            outcomes[proj.outcome] += 1
            if proj.span is None:
                exact_both = False
                continue
            counts["predicted"] += 1
            p_start, p_end = proj.span.char_start, proj.span.char_end
            if (p_start, p_end) == (g_start, g_end):
                counts["exact"] += 1
            else:
                exact_both = False
            if p_start < g_end and g_start < p_end:
                counts["overlap"] += 1
        if all(p.kept for p in projections):
            counts["pairs_full"] += 1
        if exact_both:
            counts["pairs_exact"] += 1
    n = len(done.ids)
    pred, gold = counts["predicted"], counts["gold"]
    p_ex = counts["exact"] / pred if pred else 0.0
    r_ex = counts["exact"] / gold if gold else 0.0
    p_ov = counts["overlap"] / pred if pred else 0.0
    r_ov = counts["overlap"] / gold if gold else 0.0
    return {
        "pairs": n,
        "entity_exact_f1": round(_f1(p_ex, r_ex), 4),
        "entity_exact_precision": round(p_ex, 4),
        "entity_exact_recall": round(r_ex, 4),
        "entity_overlap_f1": round(_f1(p_ov, r_ov), 4),
        "pairs_fully_projected": round(counts["pairs_full"] / n, 4) if n else 0.0,
        "relation_preserved": round(counts["pairs_exact"] / n, 4) if n else 0.0,
        "outcomes": dict(outcomes),
        "skipped_records": done.skipped_records,
    }
