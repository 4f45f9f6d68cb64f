"""Pharaoh word-alignment files: ``i-j`` (sure) and ``ipj`` (possible) links.

Predictions are written 0-indexed, one line per sentence pair (an empty line where a
pair has no links). Gold files may be 0- or 1-indexed; say which when reading.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alignment.errors import CorpusError
from alignment.textfile import strict_lines

_LINK = re.compile(r"^(\d+)([-p])(\d+)$")


@dataclass(frozen=True, slots=True)
class GoldAlignment:
    """Gold links of one pair. ``possible`` includes the sure links (as in Och & Ney)."""

    sure: frozenset[tuple[int, int]]
    possible: frozenset[tuple[int, int]]


def parse_line(line: str, path: Path | str, line_no: int, one_indexed: bool = False) -> GoldAlignment:
    """Parse one Pharaoh line; ``ipj`` marks a possible link, ``i-j`` a sure one."""
    sure: set[tuple[int, int]] = set()
    possible: set[tuple[int, int]] = set()
    offset = 1 if one_indexed else 0
    for item in line.split():
        m = _LINK.match(item)
        if m is None:
            raise CorpusError(
                path, line_no, f"{item!r} is not a Pharaoh link",
                "write links as `i-j` (sure) or `ipj` (possible), separated by spaces",
            )
        i, j = int(m.group(1)) - offset, int(m.group(3)) - offset
        if i < 0 or j < 0:
            raise CorpusError(
                path, line_no, f"link {item!r} has index 0 but the file was read as 1-indexed",
                "drop --gold-one-indexed if the file is 0-indexed",
            )
        possible.add((i, j))
        if m.group(2) == "-":
            sure.add((i, j))
    return GoldAlignment(frozenset(sure), frozenset(possible))


def read_pharaoh(path: Path | str, one_indexed: bool = False) -> Iterator[GoldAlignment]:
    """Stream the alignments of a Pharaoh file, one per line."""
    path = Path(path)
    for line_no, line in strict_lines(path):
        yield parse_line(line, path, line_no, one_indexed)
