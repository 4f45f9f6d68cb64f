"""alignment.aligners.priors counts eflomal's priors as eflomal does, on any number of processes."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pytest

from alignment.aligners import priors as priors_mod
from alignment.aligners.base import AlignerError
from alignment.aligners.priors import count_lines_priors, count_priors, write_priors

eflomal = pytest.importorskip("eflomal")


def _random_alignment(n: int, seed: int) -> tuple[list[str], list[str], list[str], list[str]]:
    """Text and link lines with repeats, ties on one position, empty lines and
    mixed case: the cases eflomal's counting has to get right."""
    rng = random.Random(seed)
    vocab = ["Le", "chat", "dog", "the", "a", "Ville", "x", "été", "ÉTÉ", "b"]
    src, tgt, fwd, rev = [], [], [], []
    for _ in range(n):
        ns, nt = rng.randint(1, 7), rng.randint(1, 7)
        src.append(" ".join(rng.choice(vocab) for _ in range(ns)) + "\n")
        tgt.append(" ".join(rng.choice(vocab) for _ in range(nt)) + "\n")
        for out in (fwd, rev):
            links = {(rng.randrange(ns), rng.randrange(nt)) for _ in range(rng.randint(0, 6))}
            order = list(links)
            rng.shuffle(order)  # eflomal's ties keep the line's order: so must ours
            out.append(" ".join(f"{i}-{j}" for i, j in order) + "\n")
    return src, tgt, fwd, rev


def _eflomal_text(lines: tuple[list[str], ...]) -> str:
    src, tgt, fwd, rev = lines
    got = eflomal.calculate_priors((s.lower() for s in src), (t.lower() for t in tgt), fwd, rev)
    buf = io.StringIO()
    eflomal.write_priors(buf, *got)
    return buf.getvalue()


def test_counts_equal_eflomals_own() -> None:
    lines = _random_alignment(3000, seed=7)
    mine = count_lines_priors(*lines)
    theirs = eflomal.calculate_priors((s.lower() for s in lines[0]), (t.lower() for t in lines[1]),
                                      lines[2], lines[3])
    assert mine == theirs
    buf = io.StringIO()
    write_priors(buf, mine)
    assert buf.getvalue() == _eflomal_text(lines)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_any_number_of_processes_gives_the_same_file(tmp_path: Path, monkeypatch, workers: int) -> None:
    lines = _random_alignment(2500, seed=workers)
    paths = []
    for name, content in zip(("s", "t", "f", "r"), lines, strict=True):
        path = tmp_path / name
        path.write_text("".join(content), encoding="utf-8")
        paths.append(path)
    monkeypatch.setattr(priors_mod, "SERIAL_BELOW", 100)  # use the pool on a small file
    got = count_priors(*paths, n_lines=len(lines[0]), workers=workers)
    buf = io.StringIO()
    write_priors(buf, got)
    assert buf.getvalue() == _eflomal_text(lines)


def test_a_link_past_the_sentence_names_the_line(tmp_path: Path, monkeypatch) -> None:
    src, tgt, fwd, rev = _random_alignment(400, seed=1)
    fwd[250] = f"{len(src[250].split())}-0\n"  # one past the last source word
    paths = []
    for name, content in zip(("s", "t", "f", "r"), (src, tgt, fwd, rev), strict=True):
        path = tmp_path / name
        path.write_text("".join(content), encoding="utf-8")
        paths.append(path)
    monkeypatch.setattr(priors_mod, "SERIAL_BELOW", 100)
    with pytest.raises(AlignerError, match=r"line 251: a link points past the end"):
        count_priors(*paths, n_lines=400, workers=2)


def test_damaged_link_files_are_refused_by_line() -> None:
    src, tgt, fwd, rev = _random_alignment(50, seed=2)
    with pytest.raises(AlignerError, match=r"line 50: the text and link files end at different lines"):
        count_lines_priors(src, tgt, fwd[:-1], rev)
    fwd[9] = "0-0 1:2\n"
    with pytest.raises(AlignerError, match=r"line 10: '1:2' is not an eflomal link"):
        count_lines_priors(src, tgt, fwd, rev)
