"""Word aligners behind one interface (:class:`~alignment.aligners.base.WordAligner`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alignment.aligners.base import AlignerError, WordAligner
from alignment.errors import SettingError

ALIGNERS: tuple[str, ...] = ("eflomal", "simalign", "combined")


def get_aligner(name: str, **options: Any) -> WordAligner:
    """Build the aligner called ``name`` with its keyword ``options``.

    ``eflomal`` takes the options of :class:`~alignment.aligners.eflomal.EflomalAligner`,
    ``simalign`` those of :class:`~alignment.aligners.neural.NeuralAligner`;
    ``combined`` takes ``eflomal`` and ``neural`` (dicts of those options) and
    ``confident`` (:class:`~alignment.aligners.combined.CombinedAligner`).
    """
    if name == "eflomal":
        from alignment.aligners.eflomal import EflomalAligner

        return EflomalAligner(**options)
    if name == "simalign":
        from alignment.aligners.neural import NeuralAligner

        return NeuralAligner(**options)
    if name == "combined":
        from alignment.aligners.combined import CombinedAligner
        from alignment.aligners.eflomal import EflomalAligner
        from alignment.aligners.neural import NeuralAligner

        return CombinedAligner(EflomalAligner(**options.get("eflomal", {})),
                               NeuralAligner(**options.get("neural", {})),
                               confident=options.get("confident", 0.8))
    raise SettingError(f"unknown aligner {name!r}; choose one of {', '.join(ALIGNERS)}")


def build_aligner(
    name: str,
    *,
    symmetrize: str = "intersect",
    priors: Path | str | None = None,
    stem_prefix: int = 4,
    model: str = "xlm-roberta-base",
    layer: int | None = None,
    method: str = "argmax",
    batch_size: int = 32,
    device: str | None = None,
    confident: float = 0.8,
    threshold: float | None = None,
) -> WordAligner:
    """The aligner called ``name`` from the options every aligning command shares.

    ``xlre align``, ``xlre annotate`` and ``xlre eval-projection`` all build their aligner
    here, so the same options give the same aligner: eflomal takes ``symmetrize``,
    ``priors`` and ``stem_prefix``; simalign takes ``model``, ``layer``, ``method``,
    ``batch_size``, ``device`` and (for ``method="softmax"``) ``threshold``; combined takes both, with word-level neural links of
    similarity at least ``confident``.
    """
    eflomal = {"symmetrize_method": symmetrize, "priors": priors, "prefix_len": stem_prefix}
    neural = {"model": model, "layer": layer, "method": method, "batch_size": batch_size,
              "device": device}
    if threshold is not None:
        neural["threshold"] = threshold
    if name == "eflomal":
        return get_aligner("eflomal", **eflomal)
    if name == "simalign":
        return get_aligner("simalign", **neural)
    if name == "combined":
        return get_aligner("combined", eflomal=eflomal, neural={**neural, "token_level": "word"},
                           confident=confident)
    raise SettingError(f"unknown aligner {name!r}; choose one of {', '.join(ALIGNERS)}")


__all__ = ["ALIGNERS", "AlignerError", "WordAligner", "build_aligner", "get_aligner"]
