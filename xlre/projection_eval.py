"""Projection quality on parallel gold: marked sentences in two languages.

Given the same records in a source and a target file (RELX style, paired by id), the
markers are stripped, both sides tokenized and word-aligned, the gold source entity
spans projected (:mod:`alignment.projection`) and compared with the gold target spans:

* ``entity_exact_f1``: a projected span counts when its characters equal the gold
  target entity's; precision over projected spans, recall over gold spans;
* ``entity_overlap_f1``: the same, counting any character overlap;
* ``pairs_fully_projected``: share of records where both entities projected;
* ``relation_preserved``: share of records where both projected exactly, so the
  relation label lands on the right target pair.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

from alignment.aligners.base import WordAligner
from alignment.corpus import ParallelCorpus
from alignment.pipeline import add_extra_corpora
from alignment.projection import identical_links, project_spans
from alignment.records import Span, TokenizedText
from alignment.spans import char_to_token_span, find_on_token_boundaries
from alignment.tokenize import Tokenizer
from xlre.marked import MarkedReport, read_marked

logger = logging.getLogger(__name__)


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r else 0.0


def anchors_for(src_text: str, tgt: TokenizedText) -> list[Span]:
    """Target spans written exactly like the source mention (names, numbers)."""
    return find_on_token_boundaries(tgt, src_text)


def evaluate_projection(
    src_file: Path | str,
    tgt_file: Path | str,
    src_lang: str,
    tgt_lang: str,
    aligner: WordAligner,
    extra_corpora: Sequence[ParallelCorpus] = (),
    use_identical: bool = True,
    skip_bad: bool = True,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, object]:
    """Project gold source entities onto the target side and score them (see module)."""
    src_report, tgt_report = MarkedReport(), MarkedReport()
    src_recs = {r.sent_id: r for r in read_marked(src_file, skip_bad, src_report)}
    tgt_recs = {r.sent_id: r for r in read_marked(tgt_file, skip_bad, tgt_report)}
    ids = [i for i in src_recs if i in tgt_recs]
    unpaired = len(src_recs) + len(tgt_recs) - 2 * len(ids)
    src_tok, tgt_tok = Tokenizer(src_lang), Tokenizer(tgt_lang)
    src_toks = list(src_tok.pipe(src_recs[i].text for i in ids))
    tgt_toks = list(tgt_tok.pipe(tgt_recs[i].text for i in ids))
    if extra_corpora:
        add_extra_corpora(aligner, extra_corpora, src_tok, tgt_tok, progress)
    links = aligner.align([t.tokens for t in src_toks], [t.tokens for t in tgt_toks])

    counts: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    for k, sid in enumerate(ids):
        s_rec, t_rec = src_recs[sid], tgt_recs[sid]
        s_tok, t_tok = src_toks[k], tgt_toks[k]
        pairs = links[k].pairs()
        if use_identical:
            pairs |= identical_links(s_tok, t_tok)
        spans, golds, anchors = [], [], []
        for name in ("e1", "e2"):
            sc, tc = getattr(s_rec, name), getattr(t_rec, name)
            span = char_to_token_span(s_tok, *sc)
            assert span is not None, "a non-empty entity covers at least one token"
            spans.append(span)
            golds.append(tc)
            anchors.append(anchors_for(s_rec.text[sc[0]:sc[1]], t_tok) if use_identical else [])
        projections = project_spans(spans, pairs, t_tok, anchors)
        exact_both = True
        for proj, (g_start, g_end) in zip(projections, golds, strict=True):
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
    n = len(ids)
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
        "skipped_records": {"src": src_report.as_dict(), "tgt": tgt_report.as_dict(),
                            "unpaired": unpaired},
    }
