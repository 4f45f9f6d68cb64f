"""Word aligners behind one interface (:class:`~alignment.aligners.base.WordAligner`)."""

from __future__ import annotations

from typing import Any

from alignment.aligners.base import AlignerError, WordAligner

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
    raise ValueError(f"unknown aligner {name!r}; choose one of {', '.join(ALIGNERS)}")


__all__ = ["ALIGNERS", "AlignerError", "WordAligner", "get_aligner"]
