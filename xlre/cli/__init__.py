"""The ``xlre`` command line: a thin typer layer over importable functions.

One module per command group: :mod:`~xlre.cli.align` (align, align-eval),
:mod:`~xlre.cli.kb` (kb build),
:mod:`~xlre.cli.annotate` (annotate, runs, eval-projection), :mod:`~xlre.cli.model`
(init-model, train, evaluate), :mod:`~xlre.cli.extract` (extract, score),
:mod:`~xlre.cli.kg` (export, kg) and :mod:`~xlre.cli.demo`. Only this package prints
and draws progress bars; the libraries log.

Each command imports its stage when it runs: importing every stage (torch,
transformers, accelerate, datasets) takes about 8 s on 2 CPU cores, against 0.1 s for
typer and rich, and ``xlre --help`` or ``xlre align`` should not wait for that.
"""

# isort: off
# Commands register in import order, which is the order of `xlre --help`: the pipeline's.
from xlre.cli import align, kb, annotate, model, extract, kg, demo
from xlre.cli.common import app
# isort: on

__all__ = ["align", "annotate", "app", "demo", "extract", "kb", "kg", "model"]
