"""Errors raised on bad input: they name the file, the line and the fix."""

from __future__ import annotations

from pathlib import Path


class CorpusError(ValueError):
    """A parallel corpus (or gold file) could not be read.

    ``str(err)`` reads ``FILE:LINE: what is wrong. Fix: what to do.``
    """

    def __init__(
        self, path: Path | str, line_no: int | None, problem: str, fix: str, reason: str = ""
    ) -> None:
        self.path = str(path)
        self.line_no = line_no
        self.problem = problem
        self.fix = fix
        self.reason = reason
        where = self.path if line_no is None else f"{self.path}:{line_no}"
        super().__init__(f"{where}: {problem}. Fix: {fix}")
