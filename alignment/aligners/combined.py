"""eflomal links plus the neural aligner's confident links.

Measured on the EN-FR Hansards gold with multilingual-e5-small (``scripts/
bench_align_combine.py``, BENCHMARKS.md): eflomal intersect alone has AER 0.076, the
neural aligner alone (word-level argmax, layer 7) 0.066, and eflomal intersect plus the
neural links whose similarity score is at least 0.8 reaches 0.058: eflomal is precise,
and the encoder adds links eflomal's sparse statistics miss.

The eflomal part streams as eflomal does (it learns from the whole corpus); the token
pairs are kept in a temporary file and read back in batches for the neural part, so
memory stays flat. Each link keeps eflomal's score when eflomal found it, else the
neural similarity.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from pathlib import Path

from alignment.aligners.base import WordAligner
from alignment.aligners.eflomal import EflomalAligner
from alignment.aligners.neural import NeuralAligner
from alignment.errors import SettingError
from alignment.records import Links


class CombinedAligner(WordAligner):
    """eflomal (``symmetrize_method``, default intersect) ∪ confident neural links."""

    name = "combined"

    def __init__(self, eflomal: EflomalAligner, neural: NeuralAligner,
                 confident: float = 0.8, batch_size: int = 256) -> None:
        if not 0 <= confident <= 1:
            raise SettingError(f"confident must lie in [0, 1], got {confident}")
        self.eflomal = eflomal
        self.neural = neural
        self.confident = confident
        self.batch_size = batch_size

    # eflomal's training text and priors pass through.
    @property
    def needs_whole_corpus(self) -> bool:
        return self.eflomal.needs_whole_corpus

    def add_training_text(self, src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]]) -> int:
        return self.eflomal.add_training_text(src, tgt)

    def save_priors(self, path: Path | str, workers: int | None = None) -> None:
        self.eflomal.save_priors(path, workers)

    def align(self, src: Sequence[Sequence[str]], tgt: Sequence[Sequence[str]]) -> list[Links]:
        self._check_lengths(src, tgt)
        return self._merge(self.eflomal.align(src, tgt), self.neural.align(src, tgt))

    def align_stream(self, pairs: Iterable[tuple[Sequence[str], Sequence[str]]]) -> Iterator[Links]:
        """Align a stream with flat memory (see the module docstring)."""
        tmp = tempfile.NamedTemporaryFile("w+", encoding="utf-8", suffix=".jsonl",  # noqa: SIM115
                                          prefix="xlre-combined-")

        def kept() -> Iterator[tuple[Sequence[str], Sequence[str]]]:
            for s, t in pairs:
                tmp.write(json.dumps([list(s), list(t)], ensure_ascii=False) + "\n")
                yield s, t

        base = self.eflomal.align_stream(kept())  # consumes the stream, aligns it
        tmp.flush()
        tmp.seek(0)
        return self._stream(base, tmp)

    def _stream(self, base: Iterator[Links], tmp) -> Iterator[Links]:
        try:
            lines = (json.loads(line) for line in tmp)
            while True:
                chunk = list(islice(lines, self.batch_size))
                if not chunk:
                    break
                neural = self.neural.align([c[0] for c in chunk], [c[1] for c in chunk])
                yield from self._merge(list(islice(base, len(chunk))), neural)
        finally:
            tmp.close()

    def _merge(self, base: list[Links], neural: list[Links]) -> list[Links]:
        if len(base) != len(neural):
            raise RuntimeError(f"eflomal gave {len(base)} alignments and the neural aligner "
                               f"{len(neural)} for the same pairs")
        out = []
        for b, n in zip(base, neural, strict=True):
            scores = {(k.src_tok, k.tgt_tok): k.score for k in n.links
                      if k.score is not None and k.score >= self.confident}
            scores.update({(k.src_tok, k.tgt_tok): k.score for k in b.links})
            out.append(Links.from_pairs(scores, {p: s for p, s in scores.items()
                                                 if s is not None}))
        return out
