"""Reading extracted triples: JSONL as ``xlre extract`` writes them, line by line."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from alignment.errors import CorpusError, UserError
from alignment.textfile import read_lines
from xlre.records import Triple

ProgressFn = Callable[[int], None]


class ExportError(UserError, ValueError):
    """Triples cannot be read or exported; the message names the file, line and fix."""


# --------------------------------------------------------------------------- reading
@dataclass
class ReadReport:
    """Triples read, and those skipped (with ``skip_bad``) by reason."""

    triples: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"triples": self.triples, "skipped": dict(sorted(self.skipped.items()))}


def read_triples(paths: Iterable[str | Path], skip_bad: bool = False,
                 report: ReadReport | None = None) -> Iterator[Triple]:
    """Triples from JSONL files (``"-"``: standard input), line by line.

    A bad line (empty, invalid JSON, a missing or mistyped field) raises
    :class:`ExportError` with the file and line, or with ``skip_bad`` is counted.
    """
    report = report if report is not None else ReadReport()

    def bad(name: str, line_no: int, reason: str, message: str) -> None:
        if not skip_bad:
            raise ExportError(f"{name}:{line_no}: {message}. Fix: give one triple a line as "
                              "xlre extract writes them (or pass --skip-bad)")
        report.skipped[reason] = report.skipped.get(reason, 0) + 1

    for path in paths:
        name = str(path)
        stream = sys.stdin.buffer if name == "-" else None
        for line_no, line in read_lines(name, skip_hint=False, stream=stream):
            if isinstance(line, CorpusError):
                bad(name, line_no, line.reason, f"{line.problem} ({line.fix})")
                continue
            if not line.strip():
                bad(name, line_no, "empty_line", "the line is empty")
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                bad(name, line_no, "invalid_json", f"invalid JSON ({exc.msg})")
                continue
            if not isinstance(obj, dict):
                bad(name, line_no, "not_an_object", "the line is not a JSON object")
                continue
            try:
                triple = Triple.from_json(obj)
            except KeyError as exc:
                bad(name, line_no, "missing_field", f"missing field {exc.args[0]!r}")
                continue
            except (TypeError, ValueError, AttributeError) as exc:
                bad(name, line_no, "bad_field", f"a field has the wrong type ({exc})")
                continue
            report.triples += 1
            yield triple


