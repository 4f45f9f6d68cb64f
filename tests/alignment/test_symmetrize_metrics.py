from __future__ import annotations

from pathlib import Path

import pytest

from alignment.errors import CorpusError
from alignment.metrics import alignment_error_rate
from alignment.pharaoh import GoldAlignment, read_pharaoh
from alignment.symmetrize import symmetrize

FWD = {(0, 0), (1, 1), (2, 1)}
REV = {(0, 0), (1, 1), (1, 2), (3, 3), (4, 0)}


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("intersect", {(0, 0), (1, 1)}),
        ("union", {(0, 0), (1, 1), (2, 1), (1, 2), (3, 3), (4, 0)}),
        # grows from the intersection to neighbours that cover an unaligned word
        ("grow-diag", {(0, 0), (1, 1), (2, 1), (1, 2)}),
        # (4, 0): source 4 is free but target 0 is not -> only "final" adds it
        ("grow-diag-final", {(0, 0), (1, 1), (2, 1), (1, 2), (3, 3), (4, 0)}),
        ("grow-diag-final-and", {(0, 0), (1, 1), (2, 1), (1, 2), (3, 3)}),
    ],
)
def test_symmetrize_known_answers(method: str, expected: set[tuple[int, int]]) -> None:
    assert symmetrize(FWD, REV, method) == expected


def test_grow_diag_needs_adjacency() -> None:
    # (2, 2) is diagonal to (1, 1); (3, 0) touches nothing in the intersection.
    fwd = {(0, 0), (1, 1), (2, 2)}
    rev = {(0, 0), (1, 1), (3, 0)}
    assert symmetrize(fwd, rev, "grow-diag") == {(0, 0), (1, 1), (2, 2)}


def test_symmetrize_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="grow-diag-final-and"):
        symmetrize(FWD, REV, "grow")


def test_aer_on_hand_made_gold() -> None:
    gold = [
        GoldAlignment(frozenset({(0, 0)}), frozenset({(0, 0), (1, 1)})),
        GoldAlignment(frozenset({(0, 1), (1, 0)}), frozenset({(0, 1), (1, 0)})),
    ]
    pred = [{(0, 0), (1, 1), (2, 2)}, {(0, 1)}]
    # |A| = 4, |S| = 3, |A&S| = 2, |A&P| = 3
    scores = alignment_error_rate(gold, pred)
    assert scores.aer == pytest.approx(1 - 5 / 7)
    assert scores.precision == pytest.approx(3 / 4)
    assert scores.recall == pytest.approx(2 / 3)
    assert scores.pairs == 2


def test_aer_perfect_and_mismatched_lengths() -> None:
    gold = [GoldAlignment(frozenset({(0, 0)}), frozenset({(0, 0)}))]
    assert alignment_error_rate(gold, [{(0, 0)}]).aer == 0.0
    with pytest.raises(ValueError):
        alignment_error_rate(gold, [{(0, 0)}, set()])


def test_read_pharaoh_sure_possible_one_indexed(tmp_path: Path) -> None:
    path = tmp_path / "g.txt"
    path.write_text("1-1 2p3\n\n3-1\n", encoding="utf-8")
    gold = list(read_pharaoh(path, one_indexed=True))
    assert gold[0].sure == {(0, 0)} and gold[0].possible == {(0, 0), (1, 2)}
    assert gold[1].sure == frozenset() and gold[2].sure == {(2, 0)}
    with pytest.raises(CorpusError, match="1-indexed"):
        list(read_pharaoh(_write(tmp_path / "z.txt", "0-0\n"), one_indexed=True))
    with pytest.raises(CorpusError, match=r"z2.txt:1: 'a-b' is not a Pharaoh link"):
        list(read_pharaoh(_write(tmp_path / "z2.txt", "a-b\n")))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
