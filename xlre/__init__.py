"""xlre: cross-lingual distant-supervision relation extraction.

Builds on the :mod:`alignment` package (parallel corpora, tokens, word links).
"""

__version__ = "0.1.0"
