"""Marked-sentence files (RELX, KBP37, SemEval 2010 task 8 style).

Each record is a line ``ID<TAB>"sentence with <e1> … </e1> and <e2> … </e2>"`` (the id
and quotes are optional), then the relation label on the next line (``per:employee_of
(e1,e2)``, ``no_relation``), then optional comment and blank lines. Markers are removed
together with the one space each has on its inner side, so ``The <e1> Sacramento
Heatwave </e1> is`` becomes ``The Sacramento Heatwave is`` and the entity offsets point
at ``Sacramento Heatwave`` exactly.

Dirty records (a missing or empty marker, markers out of order) raise
:class:`~alignment.errors.CorpusError` naming the line, or with ``skip_bad`` are counted
in the returned report and left out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from alignment.errors import CorpusError
from alignment.textfile import read_lines

_MARKER = re.compile(r"<(/?)(e[12])>")


@dataclass(frozen=True, slots=True)
class MarkedSentence:
    """A sentence with two marked entities; offsets index ``text``, ends exclusive."""

    sent_id: str
    text: str
    e1: tuple[int, int]
    e2: tuple[int, int]
    label: str
    line_no: int

    def entity_text(self, which: str) -> str:
        start, end = self.e1 if which == "e1" else self.e2
        return self.text[start:end]


@dataclass
class MarkedReport:
    read: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, object]:
        return {"read": self.read, "skipped": dict(self.skipped)}


def reason_slug(problem: str) -> str:
    """A problem as a count key: ``"empty e1"`` -> ``"empty_e1"``."""
    return re.sub(r"[^a-z0-9]+", "_", problem.lower()).strip("_")


def strip_markers(marked: str) -> tuple[str, dict[str, tuple[int, int]]]:
    """Remove ``<e1>``-style markers; return the plain text and each entity's offsets.

    Raises ValueError (with a reason) for a missing, empty or unbalanced entity.
    """
    out: list[str] = []
    pos = 0
    length = 0
    opened: dict[str, int] = {}
    spans: dict[str, tuple[int, int]] = {}
    for m in _MARKER.finditer(marked):
        chunk = marked[pos:m.start()]
        closing, name = m.group(1) == "/", m.group(2)
        if closing and chunk.endswith(" "):
            chunk = chunk[:-1]
        out.append(chunk)
        length += len(chunk)
        pos = m.end()
        if closing:
            if name not in opened:
                raise ValueError(f"</{name}> without <{name}>")
            start = opened.pop(name)
            if length <= start:
                raise ValueError(f"empty {name}")
            spans[name] = (start, length)
        else:
            if name in opened or name in spans:
                raise ValueError(f"<{name}> appears twice")
            if marked.startswith(" ", pos):
                pos += 1
            opened[name] = length
    out.append(marked[pos:])
    if opened:
        raise ValueError(f"<{next(iter(opened))}> is never closed")
    for name in ("e1", "e2"):
        if name not in spans:
            raise ValueError(f"no <{name}> marker")
    text = "".join(out)
    # Offsets must survive stripping of surrounding whitespace.
    lead = len(text) - len(text.lstrip())
    text = text.strip()
    spans = {k: (s - lead, e - lead) for k, (s, e) in spans.items()}
    for name, (s, e) in list(spans.items()):
        # Extra spaces inside a marker (``<e1>  X </e1>``) are not part of the entity.
        s += len(text[s:e]) - len(text[s:e].lstrip())
        e -= len(text[s:e]) - len(text[s:e].rstrip())
        if e <= s:
            raise ValueError(f"empty {name}")
        spans[name] = (s, e)
    return text, spans


def read_marked(
    path: Path | str, skip_bad: bool = False, report: MarkedReport | None = None
) -> Iterator[MarkedSentence]:
    """Stream the records of a marked-sentence file."""
    path = Path(path)
    report = report if report is not None else MarkedReport()
    lines = read_lines(path)
    for line_no, line in lines:
        if isinstance(line, CorpusError):
            if not skip_bad:
                raise line
            report.skipped[line.reason] += 1
            next(lines, None)  # the record's label line goes with it
            continue
        if not line.strip() or line.startswith("Comment:"):
            continue
        if "<e1>" not in line and "<e2>" not in line:
            err = CorpusError(path, line_no, "expected a sentence with <e1> and <e2> markers",
                              "check that each record is a sentence line then a label line",
                              reason="no_markers")
            if not skip_bad:
                raise err
            report.skipped[err.reason] += 1
            continue
        sent_id, _, marked = line.partition("\t") if "\t" in line else ("", "", line)
        marked = marked.strip()
        if len(marked) >= 2 and marked[0] == '"' and marked[-1] == '"':
            marked = marked[1:-1]
        label_line = next(lines, None)
        if label_line is not None and isinstance(label_line[1], CorpusError):
            if not skip_bad:
                raise label_line[1]
            report.skipped[label_line[1].reason] += 1
            continue
        label = label_line[1].strip() if label_line else ""
        try:
            if not label:
                raise ValueError("no relation label on the next line")
            text, spans = strip_markers(marked)
        except ValueError as err:
            reason = str(err)
            cerr = CorpusError(path, line_no, f"bad marked sentence: {reason}",
                               "repair the record, or pass --skip-bad to leave it out (counted)",
                               reason=reason_slug(reason))
            if not skip_bad:
                raise cerr from None
            report.skipped[cerr.reason] += 1
            continue
        report.read += 1
        yield MarkedSentence(sent_id.strip() or str(line_no), text, spans["e1"], spans["e2"], label, line_no)
