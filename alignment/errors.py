"""Errors raised on bad input: they name the file, the line and the fix.

Every error that blames the user's input, files or settings derives from
:class:`UserError`; the CLI prints such an error as one line and exits 2. Any other
exception reaching the CLI is a bug in xlre: it exits 1, with the traceback under
``-v``. The stage errors also keep a built-in base (``ValueError``, ``RuntimeError``)
for callers that catch those.
"""

from __future__ import annotations

from pathlib import Path


class UserError(Exception):
    """Bad input, files or settings; the message says what is wrong and the fix."""


class SettingError(UserError, ValueError):
    """An option or setting has a value that is not allowed; the message names the
    allowed values."""


class CorpusError(UserError, ValueError):
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

    def __reduce__(self):
        # Rebuilt from its parts, so it crosses a process boundary (a tokenizer worker) intact.
        return type(self), (self.path, self.line_no, self.problem, self.fix, self.reason)
