"""Fault injection for the Ray engine's tests: an annotator whose worker dies once.

The test pickles this module by value into the Ray workers, so the library itself has
no test hook.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from xlre.annotate import Annotator


class DyingAnnotator(Annotator):
    """Annotates as usual, but the worker process exits once, after annotating the shard
    that holds corpus line ``kill_at_line`` and before handing its records back;
    ``marker`` records that it did (so the retry lives)."""

    def __init__(self, config: Any, kb: Any, kill_at_line: int, marker: Path) -> None:
        super().__init__(config, kb)
        self.kill_at_line = kill_at_line
        self.marker = str(marker)

    def annotate_shard(self, items: list[Any], link_lines: list[str] | None,
                       span_lines: list[str] | None = None) -> Any:
        result = super().annotate_shard(items, link_lines, span_lines)
        if any(it.line_no == self.kill_at_line for it in items) and not os.path.exists(self.marker):
            Path(self.marker).write_text(f"killed worker {os.getpid()}\n", encoding="utf-8")
            os._exit(1)
        return result
