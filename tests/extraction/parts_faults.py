"""Fault injection for the Ray extraction engine's tests: an Extractor whose actor dies
once, on its first attempt at one input's part.

The test pickles this module by value into the Ray workers, so the library has no test
hook: the engine's ``make_extractor`` argument builds this Extractor instead of its own.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xlre.extraction import Extractor
from xlre.extraction.partdir import PartSettings


class DyingExtractor(Extractor):
    """Extracts as usual, but its process exits once when handed the documents of input
    ``kill_input`` (their ids start with its path), leaving ``marker`` (so the retry lives)."""

    kill_input: str = ""
    marker: str = ""

    def extract(self, texts: Any, lang: str | None = None, chunk_docs: int = 256) -> Any:
        texts = list(texts)
        if any(d.doc_id.startswith(self.kill_input + ":") for d in texts) \
                and not os.path.exists(self.marker):
            Path(self.marker).write_text(f"killed actor {os.getpid()}\n", encoding="utf-8")
            os._exit(1)
        return super().extract(texts, lang, chunk_docs)


@dataclass(frozen=True)
class DyingFactory:
    """An ``ExtractorFactory`` building a :class:`DyingExtractor` from ``settings``."""

    settings: PartSettings
    kill_input: str
    marker: str

    def __call__(self, device: str | None) -> Extractor:
        s = self.settings
        ex = DyingExtractor.from_pretrained(s.model, threshold=s.threshold,
                                            batch_size=s.batch_size, kb=s.kb, device=device,
                                            optimize=s.optimize)
        ex.kill_input, ex.marker = self.kill_input, self.marker
        return ex
