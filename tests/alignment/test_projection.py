from __future__ import annotations

from alignment.projection import identical_links, project_span, project_spans
from alignment.records import Span
from alignment.tokenize import whitespace_tokens

TGT = whitespace_tokens("L' université de Lyon , fondée en 1896 .")


def sp(a: int, b: int) -> Span:
    return TGT.span(a, b)


def test_projects_min_max_with_unlinked_gap_tokens() -> None:
    # "Lyon University" -> "université de Lyon": "de" is unlinked, so it is kept
    links = {(0, 3), (1, 1)}
    proj = project_span(Span(0, 2, 0, 15), links, TGT)
    assert proj.outcome == "projected" and (proj.span.tok_start, proj.span.tok_end) == (1, 4)


def test_gap_token_linked_elsewhere_is_discontiguous() -> None:
    links = {(0, 1), (1, 3), (5, 2)}  # target token 2 belongs to source token 5
    assert project_span(Span(0, 2, 0, 1), links, TGT).outcome == "discontiguous"
    # An anchor holding linked tokens wins over the stray link: the one holding most.
    proj = project_span(Span(0, 2, 0, 1), links, TGT, anchors=[sp(3, 4), sp(1, 4), sp(5, 6)])
    assert proj.outcome == "snapped" and proj.span == sp(1, 4)
    # An anchor holding none of them does not.
    proj = project_span(Span(0, 2, 0, 1), links, TGT, anchors=[sp(5, 6)])
    assert proj.outcome == "discontiguous"


def test_unaligned_and_single_anchor() -> None:
    assert project_span(Span(0, 1, 0, 1), {(3, 3)}, TGT).outcome == "unaligned"
    proj = project_span(Span(0, 1, 0, 1), {(3, 3)}, TGT, anchors=[sp(3, 4)])
    assert proj.outcome == "anchor" and proj.span == sp(3, 4)


def test_trailing_punctuation_is_trimmed_and_snapping() -> None:
    proj = project_span(Span(0, 1, 0, 1), {(0, 3), (0, 4)}, TGT)
    assert proj.span == sp(3, 4)
    proj = project_span(Span(0, 1, 0, 1), {(0, 2)}, TGT, anchors=[sp(6, 7), sp(1, 4)])
    assert proj.outcome == "snapped" and proj.span == sp(1, 4)


def test_overlapping_projections_are_both_dropped() -> None:
    out = project_spans([Span(0, 1, 0, 1), Span(1, 2, 2, 3), Span(2, 3, 4, 5)],
                        {(0, 3), (1, 3), (2, 6)}, TGT)
    assert [p.outcome for p in out] == ["overlap", "overlap", "projected"]


def test_identical_links_only_unique_names_and_numbers() -> None:
    src = whitespace_tokens("Lyon University , founded in 1896 in Lyon")
    links = identical_links(src, TGT)
    assert links == {(5, 7)}, "Lyon occurs twice in the source, so only 1896 links"
