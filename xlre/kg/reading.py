"""Reading extracted triples: JSONL as ``xlre extract`` writes them, line by line.

A path may also be a **directory of parts** (``xlre extract --out DIR/``): one JSONL part
per input file and a ``manifest.json`` that lists them. It reads as the concatenation of
its parts in the sorted order of their names, and only once the extraction has finished:
a directory with no manifest, or one whose manifest still lists unfinished parts, is
refused with the fix (``xlre extract ... --resume``).
"""

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

#: The manifest of a directory of parts, and the ``format`` it declares.
PARTS_MANIFEST = "manifest.json"
PARTS_FORMAT = "xlre-triples-parts"


class ExportError(UserError, ValueError):
    """Triples cannot be read or exported; the message names the file, line and fix."""


# --------------------------------------------------------------------------- parts
def read_parts_manifest(directory: str | Path) -> dict[str, Any] | None:
    """The manifest of a directory of parts, or ``None`` when it has none; raises
    :class:`ExportError` for a manifest that is damaged or belongs to something else."""
    path = Path(directory) / PARTS_MANIFEST
    if not path.is_file():
        return None
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: not valid JSON ({exc}). Fix: rerun the same `xlre "
                          "extract ... --resume` to rewrite it, or extract into a new --out") from None
    if not isinstance(obj, dict) or obj.get("format") != PARTS_FORMAT \
            or not isinstance(obj.get("parts"), dict):
        raise ExportError(f"{path}: not the manifest of a directory of extracted parts (no "
                          f'"format": "{PARTS_FORMAT}"). Fix: give a directory written by '
                          "`xlre extract --out DIR/`, or the triples files themselves")
    return obj


def part_files(directory: str | Path) -> list[Path]:
    """The parts of a finished directory of parts, sorted by name.

    Refuses (:class:`ExportError`, naming the directory and the fix) a directory with no
    manifest, and one whose extraction has not finished (parts unfinished or missing)."""
    directory = Path(directory)
    manifest = read_parts_manifest(directory)
    if manifest is None:
        raise ExportError(
            f"{directory}: is a directory with no {PARTS_MANIFEST}, so not a directory of "
            "extracted parts. Fix: give a triples file, or a directory written by `xlre "
            "extract --out DIR/` (its manifest is written as the extraction goes)")
    parts = manifest["parts"]
    waiting = sorted(name for name, part in parts.items()
                     if not part.get("finished") or not (directory / name).is_file())
    if waiting or not manifest.get("finished"):
        shown = ", ".join(waiting[:5]) + (f" and {len(waiting) - 5} more" if len(waiting) > 5 else "")
        what = (f"{len(waiting)} of {len(parts)} parts have no finished output ({shown})"
                if waiting else "its manifest is not marked finished")
        raise ExportError(
            f"{directory}: the extraction is unfinished: {what}. Fix: finish it with the "
            f"same `xlre extract ... --out {directory}/ --resume`, then read it again")
    return [directory / name for name in sorted(parts)]


def triple_files(paths: Iterable[str | Path]) -> list[str]:
    """``paths`` with every directory of parts replaced by its parts (:func:`part_files`)."""
    out: list[str] = []
    for path in paths:
        if str(path) != "-" and Path(path).is_dir():
            out.extend(str(p) for p in part_files(path))
        else:
            out.append(str(path))
    return out


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
    """Triples from JSONL files (``"-"``: standard input) and finished directories of
    parts (read part by part, sorted by name), line by line.

    A bad line (empty, invalid JSON, a missing or mistyped field) raises
    :class:`ExportError` with the file and line, or with ``skip_bad`` is counted.
    """
    report = report if report is not None else ReadReport()

    def bad(name: str, line_no: int, reason: str, message: str) -> None:
        if not skip_bad:
            raise ExportError(f"{name}:{line_no}: {message}. Fix: give one triple a line as "
                              "xlre extract writes them (or pass --skip-bad)")
        report.skipped[reason] = report.skipped.get(reason, 0) + 1

    for name in triple_files(paths):
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


